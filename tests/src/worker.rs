//! [`Worker`]: a `fleet_worker` process (`src/bin/fleet_worker.rs`), one process of a fleet
//! for the multi-process tests.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// One fleet process, driven over its stdin and stdout (see `src/bin/fleet_worker.rs`);
/// killed when dropped.
pub struct Worker {
    child: Child,
    stdin: ChildStdin,
    replies: mpsc::Receiver<String>,
}

impl Worker {
    /// Starts `program` (`env!("CARGO_BIN_EXE_fleet_worker")`) with its fleet on
    /// `fleet_url` (a server, or a proxy in front of one) and its database on `db_url`, and
    /// waits until it is ready.
    pub fn spawn(program: &str, fleet_url: &str, db_url: &str) -> Self {
        let mut child = Command::new(program)
            .args([fleet_url, db_url])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the worker binary starts");
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let (send, replies) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        let mut worker = Worker {
            child,
            stdin,
            replies,
        };
        assert_eq!(worker.reply(), "ready");
        worker
    }

    fn reply(&mut self) -> String {
        self.replies
            .recv_timeout(Duration::from_secs(60))
            .expect("the worker answers within 60 s (it never hangs)")
    }

    /// Sends a command and returns what follows `ok `.
    pub fn ask(&mut self, command: &str) -> String {
        self.send(command);
        self.answer()
    }

    /// Sends a command without waiting for its answer.
    pub fn send(&mut self, command: &str) {
        writeln!(self.stdin, "{command}").expect("the worker reads its stdin");
    }

    /// The answer to a command sent earlier: what follows `ok `.
    pub fn answer(&mut self) -> String {
        let reply = self.reply();
        match reply.strip_prefix("ok ") {
            Some(answer) => answer.to_owned(),
            None => panic!("the worker answered {reply:?}"),
        }
    }

    /// [`ask`](Self::ask), for a number.
    pub fn number(&mut self, command: &str) -> u64 {
        self.ask(command).parse().expect("a number")
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Worker {
    /// `kill -9`.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
