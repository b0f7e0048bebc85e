//! End to end: the `sesame` client commands against a real `sesame serve` on a loopback port,
//! each command a separate process sharing a profile directory, as a person would run them.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use sesame_client::profile::Profile;

const PASSWORD: &str = "correct horse battery staple";
const SESAME: &str = env!("CARGO_BIN_EXE_sesame");

/// A `sesame serve` child process, killed when dropped.
struct Server {
    child: Child,
    url: String,
    _data: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A command with no `SESAME_*` variable from the environment of the test run.
fn command() -> Command {
    let mut cmd = Command::new(SESAME);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SESAME_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Starts `sesame serve` on an ephemeral port with a fresh data directory.
fn serve() -> Server {
    let data = tempfile::tempdir().unwrap();
    let mut child = command()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path().join("data"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // Keep draining stdout so the server never blocks on a full pipe.
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("sesame: listening on ") {
                let _ = tx.send(url.trim().to_owned());
            }
        }
    });
    let url = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(url) => url,
        Err(_) => {
            let _ = child.kill();
            panic!("sesame serve did not report its address");
        }
    };
    Server {
        child,
        url,
        _data: data,
    }
}

/// Runs `sesame ARGS` with the profile `home` against `server`, feeding `stdin`.
fn sesame(server: &Server, home: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = command()
        .args(args)
        .env("SESAME_HOME", home)
        .env("SESAME_SERVER", &server.url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs a command that must succeed; returns its standard output.
fn ok(server: &Server, home: &Path, args: &[&str], stdin: &str) -> String {
    let out = sesame(server, home, args, stdin);
    assert!(
        out.status.success(),
        "sesame {args:?} failed:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Runs a command that must fail with exit code 1; returns its standard error, which must be
/// one `sesame: error:` line.
fn fails(server: &Server, home: &Path, args: &[&str], stdin: &str) -> String {
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

fn password(p: &str) -> String {
    format!("{p}\n")
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn register_login_whoami_sessions_and_logout() {
    let server = serve();
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("laptop");
    let pw = password(PASSWORD);
    let profile = Profile::at(&home);
    let id = sesame_client::server_id(&server.url).unwrap();

    // Register: client-side OPAQUE, and the server key is pinned on first use.
    let out = ok(
        &server,
        &home,
        &["register", "Alice", "--password-stdin"],
        &pw,
    );
    assert!(out.contains("Registered alice (id "), "{out}");
    let key = profile.pinned_key(&id).unwrap().expect("key pinned");
    let fingerprint = sesame_client::fingerprint(&key);
    assert!(
        out.contains(&format!("Trusting server key {fingerprint} for {id}")),
        "{out}"
    );
    #[cfg(unix)]
    {
        assert_eq!(mode(&home), 0o700);
        assert_eq!(mode(&profile.known_servers_path()), 0o600);
    }

    // The same name again, a weak password: refused with the reason.
    let err = fails(
        &server,
        &home,
        &["register", "alice", "--password-stdin"],
        &pw,
    );
    assert!(err.contains("username_taken"), "{err}");
    let err = fails(
        &server,
        &home,
        &["register", "bob", "--password-stdin"],
        "password\n",
    );
    assert!(err.contains("too common"), "{err}");

    // Log in over REST; the key is already pinned, so nothing new is trusted.
    let out = ok(&server, &home, &["login", "alice", "--password-stdin"], &pw);
    assert!(out.contains("Logged in as alice"), "{out}");
    assert!(!out.contains("Trusting"), "{out}");
    let first = profile.load_session(&id).unwrap().expect("session stored");
    #[cfg(unix)]
    assert_eq!(mode(&profile.session_path(&id)), 0o600);

    let out = ok(&server, &home, &["whoami"], "");
    assert!(
        out.contains(&format!("Logged in to {id} as alice")),
        "{out}"
    );
    assert!(out.contains(&fingerprint), "{out}");

    // A wrong password: one clear error, and the stored login is untouched.
    let err = fails(
        &server,
        &home,
        &["login", "alice", "--password-stdin"],
        "not the right password\n",
    );
    assert!(err.contains("wrong username or password"), "{err}");
    assert_eq!(profile.load_session(&id).unwrap(), Some(first.clone()));

    // Log in again over the WebSocket: the previous session is revoked, not orphaned.
    let out = ok(
        &server,
        &home,
        &["login", "alice", "--password-stdin", "--ws"],
        &pw,
    );
    assert!(out.contains("Logged in as alice"), "{out}");
    assert!(
        out.contains("Logged out the previous session of alice"),
        "{out}"
    );
    let current = profile.load_session(&id).unwrap().unwrap();
    assert_ne!(current.session_id, first.session_id);

    // A second device logs in; the first lists both and revokes the other.
    let phone = tmp.path().join("phone");
    ok(
        &server,
        &phone,
        &["login", "alice", "--password-stdin"],
        &pw,
    );
    let phone_session = Profile::at(&phone).load_session(&id).unwrap().unwrap();
    let out = ok(&server, &home, &["sessions"], "");
    assert!(out.contains("2 sessions of alice"), "{out}");
    assert!(
        out.contains(&format!("{} (this session)", current.session_id)),
        "{out}"
    );
    assert!(out.contains(&phone_session.session_id.to_string()), "{out}");
    let phone_id = phone_session.session_id.to_string();
    let out = ok(&server, &home, &["sessions", "revoke", &phone_id], "");
    assert!(
        out.contains(&format!("Revoked session {phone_id}")),
        "{out}"
    );
    let err = fails(&server, &phone, &["whoami"], "");
    assert!(err.contains("expired or was revoked"), "{err}");
    assert_eq!(Profile::at(&phone).load_session(&id).unwrap(), None);

    // An expired access token is refreshed with the session token, transparently.
    let mut stale = profile.load_session(&id).unwrap().unwrap();
    stale.access_expires_at = 0;
    profile.save_session(&stale).unwrap();
    ok(&server, &home, &["whoami"], "");
    let refreshed = profile.load_session(&id).unwrap().unwrap();
    assert_ne!(refreshed.access_token, stale.access_token);
    assert!(refreshed.access_expires_at > 0);

    // Log out: the session is revoked and forgotten.
    let out = ok(&server, &home, &["logout"], "");
    assert!(
        out.contains(&format!("Logged out alice from {id}")),
        "{out}"
    );
    assert_eq!(profile.load_session(&id).unwrap(), None);
    let err = fails(&server, &home, &["whoami"], "");
    assert!(err.contains("not logged in"), "{err}");
    let out = ok(&server, &home, &["logout"], "");
    assert!(out.contains("Not logged in"), "{out}");
}

#[test]
fn server_assisted_registration_logout_all_and_a_changed_key() {
    let server = serve();
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let pw = password("a long passphrase for b");
    let profile = Profile::at(&home);
    let id = sesame_client::server_id(&server.url).unwrap();

    let out = ok(
        &server,
        &home,
        &["register", "bob", "--password-stdin", "--server-assisted"],
        &pw,
    );
    assert!(out.contains("Registered bob (id "), "{out}");
    // Nothing authenticated the server key yet; the first OPAQUE login pins it.
    assert_eq!(profile.pinned_key(&id).unwrap(), None);
    let out = ok(&server, &home, &["login", "bob", "--password-stdin"], &pw);
    assert!(out.contains("Trusting server key SHA256:"), "{out}");
    let other = tmp.path().join("other");
    ok(&server, &other, &["login", "bob", "--password-stdin"], &pw);

    let out = ok(&server, &home, &["logout", "--all"], "");
    assert!(
        out.contains("Logged out bob everywhere: revoked 2 sessions"),
        "{out}"
    );
    let err = fails(&server, &other, &["whoami"], "");
    assert!(err.contains("expired or was revoked"), "{err}");

    // The pinned key no longer matches (rotated, or an impostor): refused, naming both
    // fingerprints and the entry to remove.
    let real = profile.pinned_key(&id).unwrap().unwrap();
    assert!(profile.forget_server(&id).unwrap());
    profile.trust_server(&id, &[7; 32]).unwrap();
    for args in [
        &["login", "bob", "--password-stdin"][..],
        &["login", "bob", "--password-stdin", "--ws"][..],
        &["register", "carol", "--password-stdin"][..],
    ] {
        let err = fails(&server, &home, args, &pw);
        assert!(err.contains(&sesame_client::fingerprint(&real)), "{err}");
        assert!(err.contains(&sesame_client::fingerprint(&[7; 32])), "{err}");
        assert!(err.contains("known_servers.json"), "{err}");
    }
    assert_eq!(profile.load_session(&id).unwrap(), None);
}
