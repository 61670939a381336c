//! [`RedisServer`]: a real `redis-server` for one test, on a free loopback port.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` started for one test: no persistence, loopback only, killed (`kill -9`)
/// when dropped. It can be killed and restarted on the same port mid-test.
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
    dir: PathBuf,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers PING.
    ///
    /// # Panics
    ///
    /// If `redis-server` is not installed (the message says how to get it), or does not
    /// answer within 10 s.
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    /// Starts a server on `port` and waits until it answers PING.
    pub fn start_on(port: u16) -> Self {
        let dir =
            std::env::temp_dir().join(format!("cache-redis-test-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory for redis-server");
        let mut server = RedisServer {
            port,
            child: None,
            dir,
        };
        server.restart();
        server
    }

    /// Whether `redis-server` can be found (`cargo xtask setup` installs it).
    pub fn is_installed() -> bool {
        find_redis_server().is_some()
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port it listens on (the same after a restart).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `kill -9`: the server vanishes without closing anything gracefully.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, empty, and waits until it answers PING.
    pub fn restart(&mut self) {
        self.kill();
        let program = redis_server_program();
        let child = Command::new(&program)
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", program.display()));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self
                .try_command(&["PING"])
                .is_ok_and(|reply| reply == "PONG")
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "redis-server on port {} did not answer PING within 10 s",
            self.port
        );
    }

    /// Runs one command and returns its reply as text (an error reply panics).
    pub fn command(&self, args: &[&str]) -> String {
        self.try_command(args)
            .unwrap_or_else(|error| panic!("redis {args:?}: {error}"))
    }

    /// Runs one command and returns its reply as text: a status or bulk string, an integer,
    /// `(nil)`, or an array's elements joined by newlines.
    pub fn try_command(&self, args: &[&str]) -> Result<String, String> {
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port))
            .map_err(|error| error.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|error| error.to_string())?;
        let mut request = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            request.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            request.extend_from_slice(arg.as_bytes());
            request.extend_from_slice(b"\r\n");
        }
        stream
            .write_all(&request)
            .map_err(|error| error.to_string())?;
        read_reply(&mut BufReader::new(stream))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}

fn find_redis_server() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("redis-server"))
            .find(|candidate| candidate.is_file())
    });
    on_path.or_else(|| Some(PathBuf::from("/usr/bin/redis-server")).filter(|p| p.is_file()))
}

fn redis_server_program() -> PathBuf {
    find_redis_server().unwrap_or_else(|| {
        panic!(
            "redis-server not found: the fleet tests run a real Redis. Run the tests with \
                 `cargo xtask test`, which installs it, or install the Debian/Ubuntu package \
                 yourself: sudo apt-get install -y redis-server"
        )
    })
}

fn read_reply(reader: &mut impl BufRead) -> Result<String, String> {
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .map_err(|error| error.to_string())?;
    let line = line.trim_end_matches("\r\n");
    let (kind, rest) = line.split_at(line.len().min(1));
    match kind {
        "+" | ":" => Ok(rest.to_owned()),
        "-" => Err(rest.to_owned()),
        "$" => {
            let Ok(len) = rest.parse::<usize>() else {
                return Ok("(nil)".into());
            };
            let mut data = vec![0; len + 2];
            reader
                .read_exact(&mut data)
                .map_err(|error| error.to_string())?;
            data.truncate(len);
            Ok(String::from_utf8_lossy(&data).into_owned())
        }
        "*" => {
            let n = rest.parse::<i64>().unwrap_or(-1);
            let items: Result<Vec<String>, String> =
                (0..n.max(0)).map(|_| read_reply(reader)).collect();
            Ok(items?.join("\n"))
        }
        _ => Err(format!("unexpected reply {line:?}")),
    }
}
