//! An HTTP handler that talks to a TCP service over `wasi:sockets`: it sends `ping`
//! to $SERVICE_ADDR:$SERVICE_PORT (default 127.0.0.1:7070; an IPv6 literal such as
//! `::1` works too) and returns the reply line as the body.

use std::error::Error;
use std::io::{BufRead as _, BufReader};

use wasip2::cli::environment;
use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{IncomingRequest, ResponseOutparam};
use wasip2::sockets::instance_network::instance_network;
use wasip2::sockets::tcp_create_socket::create_tcp_socket;
use weft_guest::{finish, respond, socket_address};

struct TcpClient;

impl Guest for TcpClient {
    fn handle(_request: IncomingRequest, out: ResponseOutparam) {
        let port = env_var("SERVICE_PORT")
            .and_then(|p| p.parse().ok())
            .unwrap_or(7070);
        let addr = env_var("SERVICE_ADDR").unwrap_or_else(|| "127.0.0.1".into());
        match ping(&addr, port) {
            Ok(reply) => respond(out, 200, reply.as_bytes()),
            Err(e) => respond(
                out,
                502,
                format!("cannot reach {addr} port {port}: {e}\n").as_bytes(),
            ),
        }
    }
}

fn ping(addr: &str, port: u16) -> Result<String, Box<dyn Error>> {
    let (family, address) = socket_address(addr, port).ok_or("not an IP address")?;
    let socket = create_tcp_socket(family)?;
    socket.start_connect(&instance_network(), address)?;
    let (input, output) = finish(&socket, || socket.finish_connect())?;
    output.blocking_write_and_flush(b"ping\n")?;
    let mut reply = String::new();
    BufReader::new(input).read_line(&mut reply)?;
    Ok(reply) // the streams drop before the socket: they are its children
}

fn env_var(name: &str) -> Option<String> {
    environment::get_environment()
        .into_iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

wasip2::http::proxy::export!(TcpClient);
