//! [`FaultProxy`]: a loopback TCP proxy that can blackhole its traffic or sever its links.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Forwards every connection made to [`port`](Self::port) to `127.0.0.1:<upstream>`.
///
/// [`blackhole`](Self::blackhole) makes every byte, either way, vanish while keeping every
/// socket open: to both ends the link looks alive and silent, as a half-open link does when a
/// peer or a router vanishes without a FIN or RST. Only an unanswered request can tell.
pub struct FaultProxy {
    port: u16,
    state: Arc<State>,
}

struct State {
    blackholed: AtomicBool,
    closed: AtomicBool,
    links: Mutex<Vec<TcpStream>>,
}

impl FaultProxy {
    /// Starts forwarding to `upstream` on a free port.
    pub fn start(upstream: u16) -> Self {
        let listener =
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("a loopback port for the proxy");
        let port = listener.local_addr().expect("the proxy's address").port();
        let state = Arc::new(State {
            blackholed: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            links: Mutex::new(Vec::new()),
        });
        let accepting = Arc::clone(&state);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if accepting.closed.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect((Ipv4Addr::LOCALHOST, upstream)) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                if let (Ok(c), Ok(s)) = (client.try_clone(), server.try_clone()) {
                    let mut links = accepting.links.lock().expect("the proxy's links");
                    links.push(c);
                    links.push(s);
                }
                pump(&accepting, &client, &server);
                pump(&accepting, &server, &client);
            }
        });
        FaultProxy { port, state }
    }

    /// The port to connect to instead of the upstream's.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// From now on, drop every byte either way, keeping the sockets open.
    pub fn blackhole(&self) {
        self.state.blackholed.store(true, Ordering::SeqCst);
    }

    /// Forward again (links that lost bytes are broken; new ones work).
    pub fn restore(&self) {
        self.state.blackholed.store(false, Ordering::SeqCst);
    }

    /// Closes every link open now, as a crashed peer's kernel would (new ones still work).
    pub fn sever(&self) {
        for link in self
            .state
            .links
            .lock()
            .expect("the proxy's links")
            .drain(..)
        {
            let _ = link.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.state.closed.store(true, Ordering::SeqCst);
        self.sever();
        // Wake the accept loop so it sees `closed`.
        let _ = TcpStream::connect_timeout(
            &(Ipv4Addr::LOCALHOST, self.port).into(),
            Duration::from_millis(100),
        );
    }
}

/// Copies `from` to `to` on a thread of its own, dropping what it reads while blackholed.
fn pump(state: &Arc<State>, from: &TcpStream, to: &TcpStream) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    let state = Arc::clone(state);
    std::thread::spawn(move || {
        let mut buffer = [0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if state.blackholed.load(Ordering::SeqCst) {
                continue;
            }
            if to.write_all(&buffer[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}
