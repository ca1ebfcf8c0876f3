//! A WASI 0.3 TCP service (async `wasi:cli/run` on `wasi:sockets@0.3`): listens on $ADDR:$PORT
//! (default 127.0.0.1:7070) and answers the first line of each connection with `$REPLY <n>`
//! (default `pong`), n counting connections, serving them concurrently. The 0.2
//! `tcp-client-http` of its Workload reaches it on the Workload's own loopback.

use std::cell::Cell;
use std::net::IpAddr;
use std::rc::Rc;

use wasip3::cli::environment;
use wasip3::exports::cli::run::Guest;
use wasip3::sockets::types::{
    IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress, TcpSocket,
};
use wasip3::wit_bindgen::StreamResult;
use wasip3::wit_stream;

struct TcpService;

impl Guest for TcpService {
    async fn run() -> Result<(), ()> {
        let port = env_var("PORT").and_then(|p| p.parse().ok()).unwrap_or(7070);
        let addr: IpAddr = env_var("ADDR")
            .and_then(|a| a.parse().ok())
            .unwrap_or([127, 0, 0, 1].into());
        let reply = Rc::new(env_var("REPLY").unwrap_or_else(|| "pong".into()));
        let (family, address) = match addr {
            IpAddr::V4(ip) => (
                IpAddressFamily::Ipv4,
                IpSocketAddress::Ipv4(Ipv4SocketAddress {
                    port,
                    address: ip.octets().into(),
                }),
            ),
            IpAddr::V6(ip) => (
                IpAddressFamily::Ipv6,
                IpSocketAddress::Ipv6(Ipv6SocketAddress {
                    port,
                    address: segments(ip.segments()),
                    flow_info: 0,
                    scope_id: 0,
                }),
            ),
        };
        let socket = TcpSocket::create(family).map_err(|_| ())?;
        socket.bind(address).map_err(|_| ())?;
        let mut connections = socket.listen().map_err(|_| ())?;
        let served = Rc::new(Cell::new(0u64));
        loop {
            let Some(connection) = connections.next().await else {
                return Err(());
            };
            served.set(served.get() + 1);
            let (n, reply) = (served.get(), reply.clone());
            wasip3::spawn_local(async move { serve(connection, &reply, n).await });
        }
    }
}

/// Reads up to the first newline, then answers `<reply> <n>`.
async fn serve(connection: TcpSocket, reply: &str, n: u64) {
    let (mut input, _) = connection.receive();
    let mut line = Vec::new();
    while !line.contains(&b'\n') {
        let (status, chunk) = input.read(Vec::with_capacity(1024)).await;
        line.extend_from_slice(&chunk);
        if !matches!(status, StreamResult::Complete(_)) {
            break;
        }
    }
    let (mut tx, rx) = wit_stream::new();
    let sent = connection.send(rx);
    tx.write_all(format!("{reply} {n}\n").into_bytes()).await;
    drop(tx);
    let _ = sent.await;
}

fn segments(s: [u16; 8]) -> (u16, u16, u16, u16, u16, u16, u16, u16) {
    (s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7])
}

fn env_var(name: &str) -> Option<String> {
    environment::get_environment()
        .into_iter()
        .find_map(|(key, value)| (key == name).then_some(value))
}

wasip3::cli::command::export!(TcpService);
