//! Helpers shared by the integration tests: the `sesame` binary, `sesame serve` on a loopback
//! port, and `sesame` client commands run against it with a profile directory.
#![allow(dead_code)]

pub mod oidc;

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const SESAME: &str = env!("CARGO_BIN_EXE_sesame");
pub const PASSWORD: &str = "correct horse battery staple";
/// How long `sesame serve` may take to report its address.
const SERVE_TIMEOUT: Duration = Duration::from_secs(60);
/// What `sesame serve` prints before its address.
pub const LISTENING: &str = "sesame: listening on ";

/// A command running `program` with no `SESAME_*` variable from the environment of the test
/// run.
pub fn command(program: &str) -> Command {
    let mut cmd = Command::new(program);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SESAME_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// A `sesame` command with no `SESAME_*` variable from the environment of the test run.
pub fn sesame_command() -> Command {
    command(SESAME)
}

/// Takes the child's piped standard output and keeps draining it on a thread (so the child
/// never blocks on a full pipe), sending each line.
pub fn stdout_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

/// `sesame serve` on `addr` with the data directory `data` and `env`, once it listens.
pub fn serve_at(addr: &str, data: &Path, env: &[(&str, &str)]) -> Process {
    let mut cmd = sesame_command();
    cmd.args(["serve", "--listen", addr, "--data-dir"])
        .arg(data);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = stdout_lines(&mut child);
    let process = Process(Some(child));
    loop {
        let line = lines
            .recv_timeout(SERVE_TIMEOUT)
            .expect("sesame serve reports its address");
        if line.starts_with(LISTENING) {
            return process;
        }
    }
}

/// Waits for `child` to end, at most `limit`: its exit status, or `None` after killing it.
/// The wait blocks on a thread of its own; nothing polls.
pub fn wait_bounded(mut child: Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    match rx.recv_timeout(limit) {
        Ok(status) => status.ok(),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            None
        }
    }
}

/// A child process (or none), killed when dropped.
pub struct Process(pub Option<Child>);

impl Process {
    /// SIGKILL, and reaps it: no shutdown, no cleanup.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A `sesame serve` child process, killed when dropped.
pub struct Server {
    _process: Process,
    pub url: String,
    _data: tempfile::TempDir,
}

impl Server {
    /// A server this helper did not start (at `url`), for the client helpers.
    pub fn external(url: &str) -> Server {
        Server {
            _process: Process(None),
            url: url.to_owned(),
            _data: tempfile::tempdir().unwrap(),
        }
    }

    /// The server's data directory (for `sesame admin --data-dir`).
    pub fn data_dir(&self) -> std::path::PathBuf {
        self._data.path().join("data")
    }
}

/// Starts `sesame serve` on an ephemeral port with a fresh data directory.
pub fn serve() -> Server {
    serve_with(&[])
}

/// Starts `sesame serve` on an ephemeral port with a fresh data directory and `env`.
pub fn serve_with(env: &[(&str, &str)]) -> Server {
    let data = tempfile::tempdir().unwrap();
    let mut cmd = sesame_command();
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path().join("data"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = stdout_lines(&mut child);
    let deadline = Instant::now() + SERVE_TIMEOUT;
    let url = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                if let Some(url) = line.strip_prefix(LISTENING) {
                    break url.trim().to_owned();
                }
            }
            Err(_) => {
                let _ = child.kill();
                panic!("sesame serve did not report its address");
            }
        }
    };
    Server {
        _process: Process(Some(child)),
        url,
        _data: data,
    }
}

/// `sesame ARGS` with the profile `home` against `server`, all pipes, not yet fed.
pub fn spawn(server: &Server, home: &Path, args: &[&str]) -> Child {
    sesame_command()
        .args(args)
        .env("SESAME_HOME", home)
        .env("SESAME_SERVER", &server.url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Runs `sesame ARGS` with the profile `home` against `server`, feeding `stdin`.
pub fn sesame(server: &Server, home: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = spawn(server, home, args);
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs a command that must succeed; returns its standard output.
pub fn ok(server: &Server, home: &Path, args: &[&str], stdin: &str) -> String {
    ok_err(server, home, args, stdin).0
}

/// Runs a command that must succeed; returns its standard output and standard error.
pub fn ok_err(server: &Server, home: &Path, args: &[&str], stdin: &str) -> (String, String) {
    let out = sesame(server, home, args, stdin);
    assert!(
        out.status.success(),
        "sesame {args:?} failed:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    (text(&out.stdout), text(&out.stderr))
}

/// Runs a command that must fail with exit code 1; returns its standard error, which must
/// hold one `sesame: error:` line.
pub fn fails(server: &Server, home: &Path, args: &[&str], stdin: &str) -> String {
    let out = sesame(server, home, args, stdin);
    assert_eq!(
        out.status.code(),
        Some(1),
        "sesame {args:?} should fail:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let err = text(&out.stderr);
    assert_eq!(err.matches("sesame: error:").count(), 1, "{err}");
    err
}

/// `p` as one line of input.
pub fn line(p: &str) -> String {
    format!("{p}\n")
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Asks `check` until it answers `Some`, for at most `limit`; `None` if it never did. For
/// what happens outside the test's process (another program's screen, a file a server writes
/// in the background) and no event announces: the one place the tests pause between looks.
pub fn poll_until<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(found) = check() {
            return Some(found);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
