//! Files on a volume through `wasi:filesystem`: `PUT /<file>` stores the request
//! body in the preopened `/data` directory, `GET /<file>` reads it back, and `GET /`
//! lists every preopen the component can see (which should be `/data` alone).

use std::error::Error;
use std::io::Read as _;

use wasip2::exports::http::incoming_handler::Guest;
use wasip2::filesystem::preopens;
use wasip2::filesystem::types::{Descriptor, DescriptorFlags, ErrorCode, OpenFlags, PathFlags};
use wasip2::http::types::{IncomingRequest, Method, ResponseOutparam};
use weft_guest::respond;

const DATA_DIR: &str = "/data";

struct VolumeHttp;

impl Guest for VolumeHttp {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path_with_query = request.path_with_query().unwrap_or_default();
        let path = path_with_query.split('?').next().unwrap_or_default();
        let preopens = preopens::get_directories();
        if path == "/" {
            let listing: String = preopens
                .iter()
                .map(|(_, guest)| format!("{guest}\n"))
                .collect();
            return respond(out, 200, listing.as_bytes());
        }
        let Some((data, _)) = preopens.iter().find(|(_, guest)| guest == DATA_DIR) else {
            return respond(out, 500, b"no volume mounted at /data\n");
        };
        let name = path.trim_start_matches('/');
        let (status, body) = match request.method() {
            Method::Get => match read_file(data, name) {
                Ok(contents) => (200, contents),
                Err(e) if e.downcast_ref() == Some(&ErrorCode::NoEntry) => {
                    (404, b"not found\n".to_vec())
                }
                Err(e) => (500, format!("read failed: {e}\n").into_bytes()),
            },
            Method::Put => match write_file(data, name, &request) {
                Ok(len) => (200, format!("wrote {len} bytes\n").into_bytes()),
                Err(e) => (500, format!("write failed: {e}\n").into_bytes()),
            },
            _ => (405, b"use GET or PUT\n".to_vec()),
        };
        respond(out, status, &body);
    }
}

fn read_file(dir: &Descriptor, name: &str) -> Result<Vec<u8>, Box<dyn Error>> {
    let file = dir.open_at(
        PathFlags::empty(),
        name,
        OpenFlags::empty(),
        DescriptorFlags::READ,
    )?;
    let mut contents = Vec::new();
    file.read_via_stream(0)?.read_to_end(&mut contents)?;
    Ok(contents)
}

fn write_file(
    dir: &Descriptor,
    name: &str,
    request: &IncomingRequest,
) -> Result<usize, Box<dyn Error>> {
    let body = request
        .consume()
        .map_err(|()| "request body already consumed")?;
    let mut contents = Vec::new();
    body.stream()
        .map_err(|()| "request body stream already taken")?
        .read_to_end(&mut contents)?;

    let create = OpenFlags::CREATE | OpenFlags::TRUNCATE;
    let file = dir.open_at(PathFlags::empty(), name, create, DescriptorFlags::WRITE)?;
    let stream = file.write_via_stream(0)?;
    // blocking-write-and-flush returns only once the bytes reached the file; a plain write
    // may still be in flight when the response goes out.
    for chunk in contents.chunks(4096) {
        stream.blocking_write_and_flush(chunk)?;
    }
    Ok(contents.len()) // `stream` drops before `file`, its parent
}

wasip2::http::proxy::export!(VolumeHttp);
