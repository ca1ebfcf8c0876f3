//! A TCP service (`wasi:cli/run`) on `wasi:sockets`: listens on 127.0.0.1:$PORT
//! (default 7070) and answers the first line of each connection with `pong <n>`,
//! where n counts connections. Connections are served one at a time.

use std::error::Error;
use std::io::{BufRead as _, BufReader};

use wasip2::cli::{environment, stderr, stdout};
use wasip2::exports::cli::run::Guest;
use wasip2::io::streams::{InputStream, OutputStream};
use wasip2::sockets::instance_network::instance_network;
use wasip2::sockets::network::{ErrorCode, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress};
use wasip2::sockets::tcp::TcpSocket;
use wasip2::sockets::tcp_create_socket::create_tcp_socket;

struct TcpService;

impl Guest for TcpService {
    fn run() -> Result<(), ()> {
        let port = env_var("PORT").and_then(|p| p.parse().ok()).unwrap_or(7070);
        let listener = listen(port)
            .map_err(|e| print_err(&format!("cannot listen on 127.0.0.1:{port}: {e}")))?;
        print(&format!("listening on 127.0.0.1:{port}"));

        let ready = listener.subscribe();
        let mut served = 0u64;
        loop {
            ready.block();
            match listener.accept() {
                Ok((connection, input, output)) => {
                    served += 1;
                    if let Err(e) = serve(input, output, served) {
                        print_err(&format!("connection {served}: {e}"));
                    }
                    drop(connection); // after its streams, which `serve` consumed
                }
                Err(ErrorCode::WouldBlock) => {}
                Err(e) => print_err(&format!("accept failed: {e}")),
            }
        }
    }
}

fn listen(port: u16) -> Result<TcpSocket, ErrorCode> {
    let socket = create_tcp_socket(IpAddressFamily::Ipv4)?;
    let address = IpSocketAddress::Ipv4(Ipv4SocketAddress {
        port,
        address: (127, 0, 0, 1),
    });
    socket.start_bind(&instance_network(), address)?;
    finish(&socket, || socket.finish_bind())?;
    socket.start_listen()?;
    finish(&socket, || socket.finish_listen())?;
    Ok(socket)
}

/// Completes a two-phase socket operation: `finish-*` says `would-block` until the
/// operation started by `start-*` is done, and the socket's pollable says when to retry.
fn finish<T>(socket: &TcpSocket, call: impl Fn() -> Result<T, ErrorCode>) -> Result<T, ErrorCode> {
    loop {
        match call() {
            Err(ErrorCode::WouldBlock) => socket.subscribe().block(),
            result => return result,
        }
    }
}

fn serve(input: InputStream, output: OutputStream, served: u64) -> Result<(), Box<dyn Error>> {
    let mut line = String::new();
    BufReader::new(input).read_line(&mut line)?;
    output.blocking_write_and_flush(format!("pong {served}\n").as_bytes())?;
    Ok(())
}

fn env_var(name: &str) -> Option<String> {
    environment::get_environment()
        .into_iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

fn print(line: &str) {
    let _ = stdout::get_stdout().blocking_write_and_flush(format!("{line}\n").as_bytes());
}

fn print_err(line: &str) {
    let _ = stderr::get_stderr().blocking_write_and_flush(format!("{line}\n").as_bytes());
}

wasip2::cli::command::export!(TcpService);
