//! A TCP service (`wasi:cli/run`) on `wasi:sockets`: listens on $ADDR:$PORT (default
//! 127.0.0.1:7070; `::1`, `0.0.0.0` or another address work too) and answers the first
//! line of each connection with `$REPLY <n>` (default `pong`), where n counts
//! connections. Connections are served one at a time.

use std::error::Error;
use std::io::{BufRead as _, BufReader};

use wasip2::cli::{environment, stderr, stdout};
use wasip2::exports::cli::run::Guest;
use wasip2::io::streams::{InputStream, OutputStream};
use wasip2::sockets::instance_network::instance_network;
use wasip2::sockets::network::ErrorCode;
use wasip2::sockets::tcp::TcpSocket;
use wasip2::sockets::tcp_create_socket::create_tcp_socket;
use weft_guest::{finish, socket_address};

struct TcpService;

impl Guest for TcpService {
    fn run() -> Result<(), ()> {
        let port = env_var("PORT").and_then(|p| p.parse().ok()).unwrap_or(7070);
        let addr = env_var("ADDR").unwrap_or_else(|| "127.0.0.1".into());
        let reply = env_var("REPLY").unwrap_or_else(|| "pong".into());
        let listener = listen(&addr, port)
            .map_err(|e| print_err(&format!("cannot listen on {addr} port {port}: {e}")))?;
        print(&format!("listening on {addr} port {port}"));

        let ready = listener.subscribe();
        let mut served = 0u64;
        loop {
            ready.block();
            match listener.accept() {
                Ok((connection, input, output)) => {
                    served += 1;
                    if let Err(e) = serve(input, output, &reply, served) {
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

fn listen(addr: &str, port: u16) -> Result<TcpSocket, ErrorCode> {
    let (family, address) = socket_address(addr, port).ok_or(ErrorCode::InvalidArgument)?;
    let socket = create_tcp_socket(family)?;
    socket.start_bind(&instance_network(), address)?;
    finish(&socket, || socket.finish_bind())?;
    socket.start_listen()?;
    finish(&socket, || socket.finish_listen())?;
    Ok(socket)
}

fn serve(
    input: InputStream,
    output: OutputStream,
    reply: &str,
    served: u64,
) -> Result<(), Box<dyn Error>> {
    let mut line = String::new();
    BufReader::new(input).read_line(&mut line)?;
    output.blocking_write_and_flush(format!("{reply} {served}\n").as_bytes())?;
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
