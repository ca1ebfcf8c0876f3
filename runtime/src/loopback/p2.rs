//! WASI 0.2's `wasi:sockets/tcp`, linked over wasmtime-wasi's and translating addresses by the
//! rules of `NetState` in `start-bind`, `start-connect`, `accept` and the address getters.

use std::net::SocketAddr;

use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::p2::bindings::sockets::network::{
    self, ErrorCode, IpAddressFamily, IpSocketAddress, Network,
};
use wasmtime_wasi::p2::bindings::sockets::tcp::{self, HostTcpSocket, ShutdownType};
use wasmtime_wasi::p2::{
    DynInputStream, DynOutputStream, DynPollable, SocketError, SocketResult, TcpSocket,
};
use wasmtime_wasi::sockets::WasiSocketsCtxView;

use super::{NetState, Refusal};
use crate::store::Ctx;

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

impl From<Refusal> for SocketError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::AccessDenied(_) => ErrorCode::AccessDenied,
            Refusal::AddressInUse => ErrorCode::AddressInUse,
            Refusal::ConnectionRefused(_) => ErrorCode::ConnectionRefused,
        }
        .into()
    }
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
        let real = self.net.bind_target(wanted)?;
        self.inner
            .start_bind(borrow(&this), network, real.into())
            .await?;
        let real: SocketAddr = self.inner.local_address(borrow(&this))?.into();
        self.net.bound(this.rep(), wanted, real);
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
        let real = self.net.connect_target(this.rep(), remote_address.into())?;
        self.inner
            .start_connect(borrow(&this), network, real.into())?;
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
        // An accepted connection's address is its listener's, as the guest sees it.
        self.inner.accept(this)
    }

    fn local_address(&mut self, this: Resource<TcpSocket>) -> SocketResult<IpSocketAddress> {
        let real: SocketAddr = self.inner.local_address(borrow(&this))?.into();
        Ok(self.net.local_address(this.rep(), real).into())
    }

    fn remote_address(&mut self, this: Resource<TcpSocket>) -> SocketResult<IpSocketAddress> {
        match self.net.remote_address(this.rep()) {
            Some(addr) => Ok(addr.into()),
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
        self.net.forget(this.rep());
        self.inner.drop(this)
    }
}
