//! The processes tests start, in one place: a `redis-server` on a free
//! loopback port, the `comfy-mcp` binary serving Streamable HTTP, and the
//! `comfy-sim` binary. Each is stopped when its handle drops.
//!
//! Every start waits for the line the program prints once it is ready
//! (never a sleep and a retry), with a bounded deadline, and fails with
//! what it waited for. Standard library only, blocking: async tests call
//! it from `spawn_blocking` when the runtime must keep running meanwhile.
//!
//! With the `tokio` feature, `until`: the bounded async wait the
//! integration tests share for state that has no event to wait on.
//!
//! Only tests, `comfy-bench` and `xtask` use this crate; `cargo xtask
//! deps` keeps it out of every other crate's normal dependencies.

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

#[cfg(feature = "tokio")]
mod wait;
#[cfg(feature = "tokio")]
pub use wait::until;

/// How long a program gets to print its ready line: generous, for debug
/// builds on a loaded machine, but bounded.
pub const START_LIMIT: Duration = Duration::from_mins(1);

/// A free TCP port on 127.0.0.1 (bound, read and released: a program
/// that cannot take a port of its own choosing is started on it).
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A child process, killed and reaped on drop, with the lines of the
/// output it was started to watch.
#[derive(Debug)]
pub struct Process {
    child: Child,
    output: Arc<Lines>,
}

impl Process {
    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The child itself (to signal it, or wait for it).
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Kills the process and waits for it to end.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits up to `limit` for a line of the watched output (one printed
    /// since the start, the last [`KEPT_LINES`] of them) that `wanted`
    /// accepts; returns it. Fails, naming `what`, when the output ends
    /// first or after `limit`.
    pub fn wait_for_line(&self, what: &str, limit: Duration, wanted: impl Fn(&str) -> bool) -> io::Result<String> {
        self.output.wait_for(what, limit, wanted)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// How many of a child's last output lines are kept for
/// [`Process::wait_for_line`].
pub const KEPT_LINES: usize = 10_000;

/// The lines a reader thread has read so far, and whether the stream
/// ended; a condition variable wakes the waiters on each line.
#[derive(Debug, Default)]
struct Lines {
    state: Mutex<(VecDeque<String>, bool)>,
    changed: Condvar,
}

impl Lines {
    /// Reads `stream` line by line on a thread of its own, to its end, so
    /// the child never blocks writing.
    fn follow(stream: impl Read + Send + 'static) -> Arc<Self> {
        let lines = Arc::new(Self::default());
        let shared = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                let Ok(mut state) = shared.state.lock() else { return };
                if state.0.len() == KEPT_LINES {
                    state.0.pop_front();
                }
                state.0.push_back(line);
                shared.changed.notify_all();
            }
            if let Ok(mut state) = shared.state.lock() {
                state.1 = true;
            }
            shared.changed.notify_all();
        });
        lines
    }

    fn wait_for(&self, what: &str, limit: Duration, wanted: impl Fn(&str) -> bool) -> io::Result<String> {
        let deadline = Instant::now() + limit;
        let poisoned = || io::Error::other("a reader thread panicked");
        let mut state = self.state.lock().map_err(|_| poisoned())?;
        loop {
            if let Some(line) = state.0.iter().find(|l| wanted(l)) {
                return Ok(line.clone());
            }
            if state.1 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the output ended before {what}"),
                ));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no {what} within {limit:?}"),
                ));
            }
            state = self.changed.wait_timeout(state, left).map_err(|_| poisoned())?.0;
        }
    }
}

/// Which output of the child to watch.
#[derive(Clone, Copy, Debug)]
pub enum Output {
    /// Standard output (the other is discarded).
    Stdout,
    /// Standard error (the other is discarded).
    Stderr,
}

/// Spawns `cmd` and waits up to `limit` for a line of `output` containing
/// `marker`; returns the process and what follows the marker on that line.
/// The output is read to its end after that (and kept for
/// [`Process::wait_for_line`]), so the child never blocks on a full pipe.
/// Fails if the child's output ends first, or after `limit`.
pub fn spawn_until(cmd: &mut Command, output: Output, marker: &str, limit: Duration) -> io::Result<(Process, String)> {
    let (out, err) = match output {
        Output::Stdout => (Stdio::piped(), Stdio::null()),
        Output::Stderr => (Stdio::null(), Stdio::piped()),
    };
    let mut child = cmd.stdin(Stdio::null()).stdout(out).stderr(err).spawn()?;
    let lines = match output {
        Output::Stdout => child.stdout.take().map(Lines::follow),
        Output::Stderr => child.stderr.take().map(Lines::follow),
    };
    let Some(lines) = lines else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(io::Error::other("the child's output is not piped"));
    };
    let process = Process { child, output: lines };
    let line = process.wait_for_line(&format!("a {marker:?} line"), limit, |l| l.contains(marker))?;
    let rest = line.split_once(marker).map_or("", |(_, r)| r).to_owned();
    Ok((process, rest))
}

/// A `redis-server` on a loopback port, with no persistence; stopped on
/// drop.
#[derive(Debug)]
pub struct Redis {
    process: Process,
    port: u16,
}

impl Redis {
    /// Starts one on a free port. A port taken between [`free_port`] and
    /// the server's bind makes it exit before it is ready: then another
    /// port is tried, three times in all.
    pub fn start() -> io::Result<Self> {
        let mut last = io::Error::other("redis-server did not start");
        for _ in 0..3 {
            match Self::on(free_port()?) {
                Ok(redis) => return Ok(redis),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(e),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Starts one on `port` (again on the port of one that was stopped).
    pub fn on(port: u16) -> io::Result<Self> {
        let mut cmd = Command::new("redis-server");
        cmd.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]);
        let (process, _) = spawn_until(&mut cmd, Output::Stdout, "Ready to accept connections", START_LIMIT)
            .map_err(|e| io::Error::new(e.kind(), format!("redis-server on port {port}: {e}")))?;
        Ok(Self { process, port })
    }

    /// For a test: a running server, or `None` (the caller skips) when
    /// `redis-server` is not installed outside CI. In CI (`$CI` set) a
    /// missing server fails the test.
    pub fn for_test() -> Option<Self> {
        match Self::start() {
            Ok(redis) => Some(redis),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                assert!(std::env::var_os("CI").is_none(), "redis-server is needed in CI: {e}");
                eprintln!("skipped: redis-server is not installed ({e})");
                None
            }
            Err(e) => panic!("{e}"),
        }
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its `redis://` URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Stops it (the port can then be reused with [`Redis::on`]).
    pub fn stop(&mut self) {
        self.process.kill();
    }
}

/// A program serving MCP over Streamable HTTP (the `comfy-mcp` binary with
/// the remote transport on, or the conformance fixture server); stopped on
/// drop.
#[derive(Debug)]
pub struct HttpServer {
    /// The process.
    pub process: Process,
    /// The MCP endpoint it printed, such as `http://127.0.0.1:1234/mcp`.
    pub url: String,
}

impl HttpServer {
    /// Spawns `cmd` and waits for its `Streamable HTTP at <url>` line on
    /// standard error. The caller sets the program, its environment and
    /// its config (remote transport enabled, port 0).
    pub fn start(cmd: &mut Command) -> io::Result<Self> {
        let (process, rest) = spawn_until(cmd, Output::Stderr, "Streamable HTTP at ", START_LIMIT)?;
        let url = rest.split_whitespace().next().unwrap_or_default().to_owned();
        Ok(Self { process, url })
    }

    /// The `host:port` it listens on.
    pub fn addr(&self) -> &str {
        let rest = self.url.split_once("://").map_or(self.url.as_str(), |(_, r)| r);
        rest.split('/').next().unwrap_or(rest)
    }
}

/// The `comfy-sim` binary on a free port; stopped on drop.
#[derive(Debug)]
pub struct SimProcess {
    /// The process.
    pub process: Process,
    /// Its base URL, such as `http://127.0.0.1:1234`.
    pub url: String,
}

impl SimProcess {
    /// Spawns `cmd` (`comfy-sim --port 0 ...`) and waits for its
    /// `listening on <url>` line on standard error.
    pub fn start(cmd: &mut Command) -> io::Result<Self> {
        let (process, rest) = spawn_until(cmd, Output::Stderr, " listening on ", START_LIMIT)?;
        let url = rest.split_whitespace().next().unwrap_or_default().to_owned();
        Ok(Self { process, url })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redis_answers_once_started() {
        use std::io::{Read as _, Write as _};
        let Some(redis) = super::Redis::for_test() else { return };
        let mut c = std::net::TcpStream::connect(("127.0.0.1", redis.port())).unwrap();
        c.write_all(b"PING\r\n").unwrap();
        let mut pong = [0u8; 7];
        c.read_exact(&mut pong).unwrap();
        assert_eq!(&pong, b"+PONG\r\n");
    }

    #[test]
    fn later_lines_can_be_waited_for() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo 'ready at x' >&2; echo 'one' >&2; echo 'two' >&2; sleep 30"]);
        let (p, _) = spawn_until(&mut cmd, Output::Stderr, "ready at ", Duration::from_secs(10)).unwrap();
        let line = p
            .wait_for_line("a second line", Duration::from_secs(10), |l| l.starts_with("tw"))
            .unwrap();
        assert_eq!(line, "two");
    }

    use std::process::Command;
    use std::time::Duration;

    use super::{Output, spawn_until};

    #[test]
    fn the_text_after_the_marker_is_returned() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo starting; echo 'ready at here/x' >&2; sleep 30"]);
        let (_p, rest) = spawn_until(&mut cmd, Output::Stderr, "ready at ", Duration::from_secs(10)).unwrap();
        assert_eq!(rest, "here/x");
    }

    #[test]
    fn a_child_that_exits_first_is_an_error() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo nothing"]);
        let e = spawn_until(&mut cmd, Output::Stdout, "ready", Duration::from_secs(10)).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "{e}");
    }

    #[test]
    fn a_child_that_never_says_it_is_ready_times_out() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "sleep 30"]);
        let e = spawn_until(&mut cmd, Output::Stdout, "ready", Duration::from_millis(200)).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
    }
}
