//! TCP policy. Only a workload's service may listen, and only on loopback or the unspecified
//! address; the workload's other components may connect to the ports the service listens on,
//! over loopback, and nowhere else. UDP and name lookups stay off.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::sockets::SocketAddrUse;

use crate::instance::Role;

/// The ports a workload's service listens on, shared by all stores of the workload.
#[derive(Clone, Debug, Default)]
pub(crate) struct Loopback(Arc<Mutex<HashSet<u16>>>);

impl Loopback {
    fn insert(&self, port: u16) {
        self.0.lock().expect("service ports lock").insert(port);
    }

    fn contains(&self, port: u16) -> bool {
        self.0.lock().expect("service ports lock").contains(&port)
    }
}

pub(crate) fn apply(builder: &mut WasiCtxBuilder, role: Role, ports: &Loopback) {
    let ports = ports.clone();
    builder
        .allow_tcp(true)
        .socket_addr_check(move |addr, usage| {
            let allowed = allowed(role, &ports, addr, usage);
            if !allowed {
                tracing::debug!(?role, %addr, ?usage, "socket use denied");
            }
            Box::pin(async move { allowed })
        });
}

fn allowed(role: Role, ports: &Loopback, addr: SocketAddr, usage: SocketAddrUse) -> bool {
    let local = addr.ip().is_loopback() || addr.ip().is_unspecified();
    match (role, usage) {
        (Role::Service, SocketAddrUse::TcpBind) => local,
        (Role::Service, SocketAddrUse::TcpListen) => {
            if local && addr.port() != 0 {
                ports.insert(addr.port());
            }
            local
        }
        (Role::Service, SocketAddrUse::TcpAccept) => true,
        // Connecting binds implicitly to the unspecified address, port 0.
        (_, SocketAddrUse::TcpBind) => addr.ip().is_unspecified() && addr.port() == 0,
        (_, SocketAddrUse::TcpConnect) => addr.ip().is_loopback() && ports.contains(addr.port()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_the_service_listens_and_components_reach_only_its_ports() {
        let ports = Loopback::default();
        assert!(allowed(
            Role::Service,
            &ports,
            addr("127.0.0.1:7070"),
            SocketAddrUse::TcpBind
        ));
        assert!(!allowed(
            Role::Service,
            &ports,
            addr("10.0.0.1:7070"),
            SocketAddrUse::TcpBind
        ));
        assert!(!allowed(
            Role::Component,
            &ports,
            addr("127.0.0.1:7070"),
            SocketAddrUse::TcpConnect
        ));
        assert!(allowed(
            Role::Service,
            &ports,
            addr("127.0.0.1:7070"),
            SocketAddrUse::TcpListen
        ));
        assert!(allowed(
            Role::Component,
            &ports,
            addr("127.0.0.1:7070"),
            SocketAddrUse::TcpConnect
        ));
        assert!(!allowed(
            Role::Component,
            &ports,
            addr("127.0.0.1:22"),
            SocketAddrUse::TcpConnect
        ));
        assert!(!allowed(
            Role::Component,
            &ports,
            addr("127.0.0.1:7070"),
            SocketAddrUse::TcpListen
        ));
        assert!(!allowed(
            Role::Component,
            &ports,
            addr("8.8.8.8:7070"),
            SocketAddrUse::TcpConnect
        ));
        assert!(!allowed(
            Role::Service,
            &ports,
            addr("127.0.0.1:53"),
            SocketAddrUse::UdpBind
        ));
    }
}
