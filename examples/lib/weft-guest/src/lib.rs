//! What the example guests share: answering HTTP, and the two-phase socket calls.

use std::io::Write as _;

use wasip2::http::types::{
    Fields, IncomingBody, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};
use wasip2::sockets::network::{
    ErrorCode, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress,
};
use wasip2::sockets::tcp::TcpSocket;

/// Answers with `status` and a `text/plain` body.
pub fn respond(out: ResponseOutparam, status: u16, body: &[u8]) {
    let headers = Fields::from_list(&[("content-type".into(), b"text/plain".to_vec())]).unwrap();
    let response = OutgoingResponse::new(headers);
    response.set_status_code(status).unwrap();
    let response_body = response.body().unwrap();
    ResponseOutparam::set(out, Ok(response));
    let mut stream = response_body.write().unwrap();
    stream.write_all(body).unwrap();
    stream.flush().unwrap();
    drop(stream); // a child of the body: it must go before the body is finished
    OutgoingBody::finish(response_body, None).unwrap();
}

/// The environment variable `name`, if set.
pub fn env(name: &str) -> Option<String> {
    wasip2::cli::environment::get_environment()
        .into_iter()
        .find_map(|(key, value)| (key == name).then_some(value))
}

/// Calls `tick` every `$<interval_var>` milliseconds (`default_ms` if unset), forever.
pub fn every(interval_var: &str, default_ms: u64, mut tick: impl FnMut()) -> ! {
    let interval_ms = env(interval_var)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_ms);
    loop {
        tick();
        wasip2::clocks::monotonic_clock::subscribe_duration(interval_ms * 1_000_000).block();
    }
}

/// Writes all of `bytes` to `stream`, waiting for room as the stream asks.
pub fn write_all(
    stream: &wasip2::io::streams::OutputStream,
    mut bytes: &[u8],
) -> Result<(), wasip2::io::streams::StreamError> {
    while !bytes.is_empty() {
        let room = stream.check_write()? as usize;
        if room == 0 {
            stream.subscribe().block();
            continue;
        }
        let n = room.min(bytes.len());
        stream.write(&bytes[..n])?;
        bytes = &bytes[n..];
    }
    Ok(())
}

/// Answers with `status` and a body copied from `body` chunk by chunk, never whole in memory.
pub fn respond_stream(out: ResponseOutparam, status: u16, body: &wasip2::io::streams::InputStream) {
    let headers =
        Fields::from_list(&[("content-type".into(), b"application/octet-stream".to_vec())])
            .unwrap();
    let response = OutgoingResponse::new(headers);
    response.set_status_code(status).unwrap();
    let response_body = response.body().unwrap();
    ResponseOutparam::set(out, Ok(response));
    let stream = response_body.write().unwrap();
    while let Ok(chunk) = body.blocking_read(64 * 1024) {
        if write_all(&stream, &chunk).is_err() {
            break;
        }
    }
    stream.blocking_flush().ok();
    drop(stream);
    OutgoingBody::finish(response_body, None).unwrap();
}

/// The whole request body (what could be read of it).
pub fn read_body(request: IncomingRequest) -> Vec<u8> {
    let mut bytes = Vec::new();
    let Ok(body) = request.consume() else {
        return bytes;
    };
    if let Ok(stream) = body.stream() {
        while let Ok(chunk) = stream.blocking_read(64 * 1024) {
            bytes.extend(chunk);
        }
    }
    IncomingBody::finish(body);
    bytes
}

/// A socket address for `addr` (an IPv4 or IPv6 literal) and `port`, with its family; `None`
/// when `addr` is not an IP address.
pub fn socket_address(addr: &str, port: u16) -> Option<(IpAddressFamily, IpSocketAddress)> {
    Some(match addr.parse::<std::net::IpAddr>().ok()? {
        std::net::IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            let address = (a, b, c, d);
            (
                IpAddressFamily::Ipv4,
                IpSocketAddress::Ipv4(Ipv4SocketAddress { port, address }),
            )
        }
        std::net::IpAddr::V6(v6) => {
            let [a, b, c, d, e, f, g, h] = v6.segments();
            let address = (a, b, c, d, e, f, g, h);
            (
                IpAddressFamily::Ipv6,
                IpSocketAddress::Ipv6(Ipv6SocketAddress {
                    port,
                    address,
                    flow_info: 0,
                    scope_id: 0,
                }),
            )
        }
    })
}

/// Completes a two-phase socket operation: `finish-*` says `would-block` until the operation
/// started by `start-*` is done, and the socket's pollable says when to retry.
pub fn finish<T>(
    socket: &TcpSocket,
    call: impl Fn() -> Result<T, ErrorCode>,
) -> Result<T, ErrorCode> {
    loop {
        match call() {
            Err(ErrorCode::WouldBlock) => socket.subscribe().block(),
            result => return result,
        }
    }
}
