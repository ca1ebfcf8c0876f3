//! Each workload's own loopback network. A guest that binds `127.0.0.1:7070` (or any loopback
//! address, `[::1]`, or the unspecified address) gets a real socket on an ephemeral loopback
//! port, recorded in its workload's table under the address the guest asked for; a guest of the
//! same workload that connects to that address reaches it, and nothing else: another workload's
//! listeners, the host's own ports and the outside are refused. So two workloads can both
//! listen on 7070, and a service cannot listen on the host's external addresses.
//!
//! wasmtime-wasi's sockets are kept for everything; a layer linked over them, one per WASI
//! version (`p2.rs`, `p3.rs`), only translates addresses where a guest binds, connects, accepts
//! and asks for an address, by the one set of rules here.

mod p2;
mod p3;

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::sockets::SocketAddrUse;

pub(crate) use self::p2::add_to_linker as add_p2_to_linker;
pub(crate) use self::p3::add_to_linker as add_p3_to_linker;
use crate::instance::Role;

/// A workload's listeners: the address a guest bound → the real socket behind it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Loopback(Arc<Mutex<HashMap<SocketAddr, SocketAddr>>>);

impl Loopback {
    fn table(&self) -> parking_lot::MutexGuard<'_, HashMap<SocketAddr, SocketAddr>> {
        self.0.lock()
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

/// Why a socket use is refused, in words both WASI versions' error codes are made from.
#[derive(Debug)]
pub(crate) enum Refusal {
    AccessDenied(&'static str),
    AddressInUse,
    ConnectionRefused(&'static str),
}

impl Refusal {
    fn log(&self, addr: SocketAddr) {
        let why = match self {
            Refusal::AccessDenied(why) | Refusal::ConnectionRefused(why) => why,
            Refusal::AddressInUse => "the workload listens there already",
        };
        tracing::debug!(%addr, "socket use refused: {why}");
    }
}

/// The rules both versions' layers apply: what a guest may bind and connect to, and the
/// addresses it sees.
impl NetState {
    /// Where a guest's bind of `wanted` really binds (port 0 on the real loopback of its
    /// family), or why it may not.
    fn bind_target(&self, wanted: SocketAddr) -> Result<SocketAddr, Refusal> {
        let refused = if self.role != Role::Service {
            Refusal::AccessDenied("only a workload's service may listen")
        } else if !(wanted.ip().is_loopback() || wanted.ip().is_unspecified()) {
            Refusal::AccessDenied("a service listens only on its workload's loopback")
        } else if wanted.port() != 0 && self.loopback.in_use(wanted) {
            Refusal::AddressInUse
        } else {
            return Ok(SocketAddr::new(real_loopback(wanted.ip()), 0));
        };
        refused.log(wanted);
        Err(refused)
    }

    /// Records `socket` bound at `real` for a guest that asked for `wanted`: it sees the port it
    /// asked for (or the real one for port 0), and the workload's guests reach it there.
    fn bound(&mut self, socket: u32, wanted: SocketAddr, real: SocketAddr) {
        let port = if wanted.port() == 0 {
            real.port()
        } else {
            wanted.port()
        };
        let virtual_addr = SocketAddr::new(wanted.ip(), port);
        self.loopback.table().insert(virtual_addr, real);
        self.bound.insert(socket, virtual_addr);
        self.local.insert(socket, virtual_addr);
    }

    /// Where a guest's connect to `wanted` really goes (a listener of its workload), or why it
    /// may not.
    fn connect_target(&mut self, socket: u32, wanted: SocketAddr) -> Result<SocketAddr, Refusal> {
        let refused = if !wanted.ip().is_loopback() {
            Refusal::AccessDenied("sockets reach only the workload's own loopback")
        } else if let Some(real) = self.loopback.resolve(wanted) {
            self.remote.insert(socket, wanted);
            return Ok(real);
        } else {
            Refusal::ConnectionRefused("no listener of this workload there")
        };
        refused.log(wanted);
        Err(refused)
    }

    /// The address a guest sees for a socket whose real local address is `real`: the one it
    /// bound, or for an accepted connection, its listener's.
    fn local_address(&self, socket: u32, real: SocketAddr) -> SocketAddr {
        if let Some(addr) = self.local.get(&socket) {
            return *addr;
        }
        let table = self.loopback.table();
        let listener = table.iter().find(|(_, r)| **r == real).map(|(v, _)| *v);
        match listener {
            // Behind a wildcard listener the address dialled is unknown: say loopback.
            Some(v) if v.ip().is_unspecified() => SocketAddr::new(real_loopback(v.ip()), v.port()),
            Some(v) => v,
            None => real,
        }
    }

    /// The address a guest connected `socket` to, as it named it.
    fn remote_address(&self, socket: u32) -> Option<SocketAddr> {
        self.remote.get(&socket).copied()
    }

    /// Forgets a dropped socket, and its listener.
    fn forget(&mut self, socket: u32) {
        if let Some(addr) = self.bound.remove(&socket) {
            self.loopback.table().remove(&addr);
        }
        self.local.remove(&socket);
        self.remote.remove(&socket);
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
