//! Each workload's own loopback network. A guest that binds `127.0.0.1:7070` (or any loopback
//! address, `[::1]`, or the unspecified address) gets a real socket on an ephemeral loopback
//! port, recorded in its workload's table under the address the guest asked for; a guest of the
//! same workload that connects to that address reaches it, and nothing else: another workload's
//! listeners, the host's own ports and the outside are refused. So two workloads can both
//! listen on 7070, and a service cannot listen on the host's external addresses.
//!
//! wasmtime-wasi's `wasi:sockets/tcp` is kept for everything; this layer, linked over it,
//! only translates addresses in `start-bind`, `start-connect`, `accept` and the address getters.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p2::bindings::sockets::network::{
    self, ErrorCode, IpAddressFamily, IpSocketAddress, Network,
};
use wasmtime_wasi::p2::bindings::sockets::tcp::{self, HostTcpSocket, ShutdownType};
use wasmtime_wasi::p2::{
    DynInputStream, DynOutputStream, DynPollable, SocketError, SocketResult, TcpSocket,
};
use wasmtime_wasi::sockets::{SocketAddrUse, WasiSocketsCtxView};

use crate::instance::Role;
use crate::store::Ctx;

/// A workload's listeners: the address a guest bound → the real socket behind it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Loopback(Arc<Mutex<HashMap<SocketAddr, SocketAddr>>>);

impl Loopback {
    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, SocketAddr>> {
        self.0.lock().expect("loopback table lock")
    }

    /// The real address behind a guest's `addr`: a listener on exactly it, or on the
    /// unspecified address of its family at that port.
    fn resolve(&self, addr: SocketAddr) -> Option<SocketAddr> {
        let table = self.table();
        table
            .get(&addr)
            .or_else(|| table.get(&SocketAddr::new(unspecified(addr.ip()), addr.port())))
            .copied()
    }

    /// Whether a guest bind of `addr` clashes with a listener already there.
    fn in_use(&self, addr: SocketAddr) -> bool {
        self.table().keys().any(|bound| {
            bound.port() == addr.port()
                && bound.is_ipv4() == addr.is_ipv4()
                && (bound.ip() == addr.ip()
                    || bound.ip().is_unspecified()
                    || addr.ip().is_unspecified())
        })
    }

    fn is_real(&self, addr: SocketAddr) -> bool {
        self.table().values().any(|real| *real == addr)
    }

    /// Lets WASI's own socket checks see only what this layer hands them: real loopback
    /// addresses of this workload's listeners.
    pub(crate) fn apply(&self, builder: &mut WasiCtxBuilder) {
        let loopback = self.clone();
        builder
            .allow_tcp(true)
            .allow_udp(false)
            .socket_addr_check(move |addr, usage| {
                let allowed = match usage {
                    SocketAddrUse::TcpBind => {
                        addr.port() == 0 && (addr.ip().is_loopback() || addr.ip().is_unspecified())
                    }
                    SocketAddrUse::TcpListen => addr.ip().is_loopback(),
                    SocketAddrUse::TcpAccept => true,
                    SocketAddrUse::TcpConnect => addr.ip().is_loopback() && loopback.is_real(addr),
                    _ => false,
                };
                Box::pin(async move { allowed })
            });
    }
}

fn unspecified(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        IpAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    }
}

fn real_loopback(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
        IpAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
    }
}

/// One store's view of the workload's network: the guest-visible addresses of its sockets and
/// the listeners it registered (unregistered when the socket or the store goes).
pub(crate) struct NetState {
    loopback: Loopback,
    role: Role,
    local: HashMap<u32, SocketAddr>,
    remote: HashMap<u32, SocketAddr>,
    bound: HashMap<u32, SocketAddr>,
}

impl NetState {
    pub(crate) fn new(loopback: Loopback, role: Role) -> Self {
        Self {
            loopback,
            role,
            local: HashMap::new(),
            remote: HashMap::new(),
            bound: HashMap::new(),
        }
    }
}

impl Drop for NetState {
    fn drop(&mut self) {
        let mut table = self.loopback.table();
        for addr in self.bound.values() {
            table.remove(addr);
        }
    }
}

/// Links the translating `wasi:sockets/tcp` over wasmtime-wasi's (call after
/// `wasmtime_wasi::p2::add_to_linker_async`).
pub(crate) fn add_to_linker(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let added = tcp::add_to_linker::<Ctx, VirtualTcpData>(linker, view);
    linker.allow_shadowing(false);
    added
}

struct VirtualTcpData;

impl HasData for VirtualTcpData {
    type Data<'a> = VirtualTcp<'a>;
}

fn view(ctx: &mut Ctx) -> VirtualTcp<'_> {
    VirtualTcp {
        inner: WasiSocketsCtxView {
            ctx: ctx.wasi.sockets(),
            table: &mut ctx.table,
        },
        net: &mut ctx.net,
    }
}

struct VirtualTcp<'a> {
    inner: WasiSocketsCtxView<'a>,
    net: &'a mut NetState,
}

fn borrow(socket: &Resource<TcpSocket>) -> Resource<TcpSocket> {
    Resource::new_borrow(socket.rep())
}

fn refuse<T>(code: ErrorCode, why: &str, addr: SocketAddr) -> SocketResult<T> {
    tracing::debug!(%addr, "socket use refused: {why}");
    Err(code.into())
}

impl tcp::Host for VirtualTcp<'_> {}

// The tcp interface reports errors through the network interface's conversion.
impl network::Host for VirtualTcp<'_> {
    fn convert_error_code(&mut self, error: SocketError) -> wasmtime::Result<ErrorCode> {
        self.inner.convert_error_code(error)
    }

    fn network_error_code(
        &mut self,
        err: Resource<wasmtime_wasi::p2::bindings::io::error::Error>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        self.inner.network_error_code(err)
    }
}

impl network::HostNetwork for VirtualTcp<'_> {
    fn drop(&mut self, this: Resource<Network>) -> wasmtime::Result<()> {
        network::HostNetwork::drop(&mut self.inner, this)
    }
}

impl HostTcpSocket for VirtualTcp<'_> {
    async fn start_bind(
        &mut self,
        this: Resource<TcpSocket>,
        network: Resource<Network>,
        local_address: IpSocketAddress,
    ) -> SocketResult<()> {
        let wanted: SocketAddr = local_address.into();
        if self.net.role != Role::Service {
            return refuse(
                ErrorCode::AccessDenied,
                "only a workload's service may listen",
                wanted,
            );
        }
        if !(wanted.ip().is_loopback() || wanted.ip().is_unspecified()) {
            return refuse(
                ErrorCode::AccessDenied,
                "a service listens only on its workload's loopback",
                wanted,
            );
        }
        if wanted.port() != 0 && self.net.loopback.in_use(wanted) {
            return Err(ErrorCode::AddressInUse.into());
        }
        let real = SocketAddr::new(real_loopback(wanted.ip()), 0);
        self.inner
            .start_bind(borrow(&this), network, real.into())
            .await?;
        let real: SocketAddr = self.inner.local_address(borrow(&this))?.into();
        let port = if wanted.port() == 0 {
            real.port()
        } else {
            wanted.port()
        };
        let virtual_addr = SocketAddr::new(wanted.ip(), port);
        self.net.loopback.table().insert(virtual_addr, real);
        self.net.bound.insert(this.rep(), virtual_addr);
        self.net.local.insert(this.rep(), virtual_addr);
        Ok(())
    }

    fn finish_bind(&mut self, this: Resource<TcpSocket>) -> SocketResult<()> {
        self.inner.finish_bind(this)
    }

    fn start_connect(
        &mut self,
        this: Resource<TcpSocket>,
        network: Resource<Network>,
        remote_address: IpSocketAddress,
    ) -> SocketResult<()> {
        let wanted: SocketAddr = remote_address.into();
        if !wanted.ip().is_loopback() {
            return refuse(
                ErrorCode::AccessDenied,
                "sockets reach only the workload's own loopback",
                wanted,
            );
        }
        let Some(real) = self.net.loopback.resolve(wanted) else {
            return refuse(
                ErrorCode::ConnectionRefused,
                "no listener of this workload there",
                wanted,
            );
        };
        self.inner
            .start_connect(borrow(&this), network, real.into())?;
        self.net.remote.insert(this.rep(), wanted);
        Ok(())
    }

    fn finish_connect(
        &mut self,
        this: Resource<TcpSocket>,
    ) -> SocketResult<(Resource<DynInputStream>, Resource<DynOutputStream>)> {
        self.inner.finish_connect(this)
    }

    async fn start_listen(&mut self, this: Resource<TcpSocket>) -> SocketResult<()> {
        self.inner.start_listen(this).await
    }

    fn finish_listen(&mut self, this: Resource<TcpSocket>) -> SocketResult<()> {
        self.inner.finish_listen(this)
    }

    fn accept(
        &mut self,
        this: Resource<TcpSocket>,
    ) -> SocketResult<(
        Resource<TcpSocket>,
        Resource<DynInputStream>,
        Resource<DynOutputStream>,
    )> {
        let listener = self.net.local.get(&this.rep()).copied();
        let accepted = self.inner.accept(this)?;
        if let Some(listener) = listener {
            // Behind a wildcard listener the address dialled is unknown: say loopback.
            let local = if listener.ip().is_unspecified() {
                SocketAddr::new(real_loopback(listener.ip()), listener.port())
            } else {
                listener
            };
            self.net.local.insert(accepted.0.rep(), local);
        }
        Ok(accepted)
    }

    fn local_address(&mut self, this: Resource<TcpSocket>) -> SocketResult<IpSocketAddress> {
        match self.net.local.get(&this.rep()) {
            Some(addr) => Ok((*addr).into()),
            None => self.inner.local_address(this),
        }
    }

    fn remote_address(&mut self, this: Resource<TcpSocket>) -> SocketResult<IpSocketAddress> {
        match self.net.remote.get(&this.rep()) {
            Some(addr) => Ok((*addr).into()),
            None => self.inner.remote_address(this),
        }
    }

    fn is_listening(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<bool> {
        self.inner.is_listening(this)
    }

    fn address_family(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<IpAddressFamily> {
        self.inner.address_family(this)
    }

    fn set_listen_backlog_size(
        &mut self,
        this: Resource<TcpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        self.inner.set_listen_backlog_size(this, value)
    }

    fn keep_alive_enabled(&mut self, this: Resource<TcpSocket>) -> SocketResult<bool> {
        self.inner.keep_alive_enabled(this)
    }

    fn set_keep_alive_enabled(
        &mut self,
        this: Resource<TcpSocket>,
        value: bool,
    ) -> SocketResult<()> {
        self.inner.set_keep_alive_enabled(this, value)
    }

    fn keep_alive_idle_time(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64> {
        self.inner.keep_alive_idle_time(this)
    }

    fn set_keep_alive_idle_time(
        &mut self,
        this: Resource<TcpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        self.inner.set_keep_alive_idle_time(this, value)
    }

    fn keep_alive_interval(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64> {
        self.inner.keep_alive_interval(this)
    }

    fn set_keep_alive_interval(
        &mut self,
        this: Resource<TcpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        self.inner.set_keep_alive_interval(this, value)
    }

    fn keep_alive_count(&mut self, this: Resource<TcpSocket>) -> SocketResult<u32> {
        self.inner.keep_alive_count(this)
    }

    fn set_keep_alive_count(&mut self, this: Resource<TcpSocket>, value: u32) -> SocketResult<()> {
        self.inner.set_keep_alive_count(this, value)
    }

    fn hop_limit(&mut self, this: Resource<TcpSocket>) -> SocketResult<u8> {
        self.inner.hop_limit(this)
    }

    fn set_hop_limit(&mut self, this: Resource<TcpSocket>, value: u8) -> SocketResult<()> {
        self.inner.set_hop_limit(this, value)
    }

    fn receive_buffer_size(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64> {
        self.inner.receive_buffer_size(this)
    }

    fn set_receive_buffer_size(
        &mut self,
        this: Resource<TcpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        self.inner.set_receive_buffer_size(this, value)
    }

    fn send_buffer_size(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64> {
        self.inner.send_buffer_size(this)
    }

    fn set_send_buffer_size(&mut self, this: Resource<TcpSocket>, value: u64) -> SocketResult<()> {
        self.inner.set_send_buffer_size(this, value)
    }

    fn subscribe(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<Resource<DynPollable>> {
        self.inner.subscribe(this)
    }

    fn shutdown(
        &mut self,
        this: Resource<TcpSocket>,
        shutdown_type: ShutdownType,
    ) -> SocketResult<()> {
        self.inner.shutdown(this, shutdown_type)
    }

    fn drop(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<()> {
        let rep = this.rep();
        if let Some(addr) = self.net.bound.remove(&rep) {
            self.net.loopback.table().remove(&addr);
        }
        self.net.local.remove(&rep);
        self.net.remote.remove(&rep);
        self.inner.drop(this)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn listeners_are_found_by_exact_or_wildcard_address_only() {
        let lo = Loopback::default();
        lo.table()
            .insert(addr("127.0.0.2:7070"), addr("127.0.0.1:40001"));
        lo.table()
            .insert(addr("0.0.0.0:8080"), addr("127.0.0.1:40002"));
        lo.table().insert(addr("[::1]:9090"), addr("[::1]:40003"));
        assert_eq!(
            lo.resolve(addr("127.0.0.2:7070")),
            Some(addr("127.0.0.1:40001"))
        );
        assert_eq!(lo.resolve(addr("127.0.0.1:7070")), None);
        assert_eq!(
            lo.resolve(addr("127.0.0.9:8080")),
            Some(addr("127.0.0.1:40002"))
        );
        assert_eq!(lo.resolve(addr("[::1]:9090")), Some(addr("[::1]:40003")));
        assert_eq!(lo.resolve(addr("127.0.0.1:9090")), None);
        assert!(lo.in_use(addr("127.0.0.2:7070")));
        assert!(lo.in_use(addr("0.0.0.0:7070")));
        assert!(!lo.in_use(addr("127.0.0.1:7070")));
        assert!(lo.in_use(addr("127.0.0.1:8080")));
        assert!(lo.is_real(addr("127.0.0.1:40001")));
        assert!(!lo.is_real(addr("127.0.0.1:9090")));
    }
}
