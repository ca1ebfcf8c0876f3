//! A TCP proxy on loopback that can cut the link it carries: a network partition between one
//! client (a host-agent) and a server (the API server), without touching anyone else.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub struct Partition {
    addr: SocketAddr,
    cut: Arc<AtomicBool>,
    /// Both ends of every connection carried, to sever them at the cut.
    open: Arc<Mutex<Vec<TcpStream>>>,
    /// Connections accepted during the cut: held open, never answered, as a dropped route.
    held: Arc<Mutex<Vec<TcpStream>>>,
}

impl Partition {
    /// Listens on 127.0.0.1 (any free port) and forwards to `upstream`.
    pub fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(Vec::new()));
        let held = Arc::new(Mutex::new(Vec::new()));
        let (c, o, h) = (cut.clone(), open.clone(), held.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if c.load(Ordering::SeqCst) {
                    h.lock().unwrap().push(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let mut open = o.lock().unwrap();
                for end in [&client, &server] {
                    if let Ok(end) = end.try_clone() {
                        open.push(end);
                    }
                }
                pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                pipe(server, client);
            }
        });
        Self {
            addr,
            cut,
            open,
            held,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Severs every connection; new ones are accepted and never answered.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for end in self.open.lock().unwrap().drain(..) {
            let _ = end.shutdown(Shutdown::Both);
        }
    }

    /// Carries new connections again (the held ones are closed, so clients retry).
    pub fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
        for end in self.held.lock().unwrap().drain(..) {
            let _ = end.shutdown(Shutdown::Both);
        }
    }
}

/// Copies `from` to `to` on its own thread until either side closes.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 || to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
}
