//! `sesame serve` with built-in TLS, driven as a user would: the self-signed development
//! certificate pinned by the client on first contact, a server whose TLS key changed
//! refused with both fingerprints and how to forget it, `--ca-file`, and SIGHUP reloading
//! the certificate files.

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{line, sesame_command, stdout_lines, text, Process, LISTENING, PASSWORD};

/// `sesame serve` with `args` (and the data directory `data`); waits for its banner and
/// returns it with the URL and the banner lines.
fn serve(data: &Path, args: &[&str], env: &[(&str, &str)]) -> (Process, String, Vec<String>) {
    let mut cmd = sesame_command();
    cmd.arg("serve").arg("--data-dir").arg(data).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child: Child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = stdout_lines(&mut child);
    let mut seen = Vec::new();
    loop {
        match lines.recv_timeout(Duration::from_secs(60)) {
            Ok(l) => {
                let url = l.strip_prefix(LISTENING).map(|u| u.trim().to_owned());
                seen.push(l);
                if let Some(url) = url {
                    // The lines printed right after the address (the certificate).
                    while let Ok(l) = lines.recv_timeout(Duration::from_millis(300)) {
                        seen.push(l);
                    }
                    return (Process(Some(child)), url, seen);
                }
            }
            Err(_) => {
                let _ = child.kill();
                panic!("sesame serve did not start: {seen:?}");
            }
        }
    }
}

/// Runs `sesame --server URL ARGS` with the profile `home`, feeding `stdin`.
fn run(url: &str, home: &Path, args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write as _;
    let mut child = sesame_command()
        .arg("--server")
        .arg(url)
        .args(args)
        .env("SESAME_HOME", home)
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

/// The fingerprint in the banner line about the certificate.
fn banner_fingerprint(lines: &[String]) -> String {
    lines
        .iter()
        .find_map(|l| l.split("SHA-256 fingerprint ").nth(1))
        .unwrap_or_else(|| panic!("no fingerprint in {lines:?}"))
        .trim()
        .to_owned()
}

#[test]
fn the_client_pins_the_self_signed_certificate_and_refuses_a_changed_one() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let (mut server, url, banner) = serve(
        &tmp.path().join("one"),
        &["--listen", "127.0.0.1:0", "--tls-self-signed"],
        &[],
    );
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let first = banner_fingerprint(&banner);
    let key = tmp.path().join("one/tls/self-signed.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    // First contact: pinned, and said so with the fingerprint the server printed.
    let password = line(PASSWORD);
    let out = run(
        &url,
        &home,
        &["register", "tlsuser", "--password-stdin"],
        &password,
    );
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains(&format!("Trusting TLS certificate {first}")),
        "{}",
        text(&out.stdout)
    );
    let out = run(
        &url,
        &home,
        &["login", "tlsuser", "--password-stdin"],
        &line(PASSWORD),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));

    // The same address now serves another key: refused, naming both and how to forget it.
    let listen = url.trim_start_matches("https://").to_owned();
    server.kill();
    let (mut other, _, banner) = serve(
        &tmp.path().join("two"),
        &["--listen", &listen, "--tls-self-signed"],
        &[],
    );
    let second = banner_fingerprint(&banner);
    assert_ne!(first, second);
    let out = run(&url, &home, &["whoami"], "");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains(&first) && err.contains(&second), "{err}");
    assert!(err.contains("known_tls_certs.json"), "{err}");
    assert!(
        err.contains(&format!("sesame server forget {url}")),
        "{err}"
    );

    // `--ca-file` with the new certificate: normal verification against it, no pin needed.
    let cert = tmp.path().join("two/tls/self-signed.crt");
    let out = run(
        &url,
        &home,
        &["--ca-file", cert.to_str().unwrap(), "whoami"],
        "",
    );
    let err = text(&out.stderr);
    assert!(!err.contains("TLS certificate"), "{err}");

    // Forgetting the server (both pins; this one is a new installation, so its OPAQUE key
    // changed too) pins the new certificate.
    let out = run(&url, &home, &["server", "forget"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("the server key and the TLS certificate"),
        "{}",
        text(&out.stdout)
    );
    let out = run(
        &url,
        &home,
        &["register", "tlsuser2", "--password-stdin"],
        &password,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!("Trusting TLS certificate {second}")));
    other.kill();
}

/// The SHA-256 fingerprint of the certificate `url` presents.
async fn presented(url: &str) -> Option<String> {
    let tls = sesame_client::TlsOptions::pinned(None).unwrap();
    let c = sesame_client::Client::with_tls(url, Default::default(), tls.clone()).unwrap();
    c.health().await.ok()?;
    tls.presented()
        .map(|h| sesame_client::tls::certificate_fingerprint(&h))
}

#[tokio::test]
async fn sighup_reloads_the_certificate_files() {
    let tmp = tempfile::tempdir().unwrap();
    let ip = "127.0.0.1".parse().unwrap();
    let (cert, key) = (tmp.path().join("c.pem"), tmp.path().join("k.pem"));
    let write = |pair: &(String, zeroize::Zeroizing<String>)| {
        std::fs::write(&key, pair.1.as_bytes()).unwrap();
        std::fs::write(&cert, &pair.0).unwrap();
    };
    write(&sesame_server::tls::self_signed::generate(ip).unwrap());
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    // Polling off: only SIGHUP reloads.
    let env = [("SESAME_TLS_RELOAD_INTERVAL_SECS", "0")];
    let (server, url, banner) = serve(&tmp.path().join("data"), &args, &env);
    let first = banner_fingerprint(&banner);
    assert_eq!(presented(&url).await.as_deref(), Some(first.as_str()));

    let next = sesame_server::tls::self_signed::generate(ip).unwrap();
    write(&next);
    assert_eq!(presented(&url).await.as_deref(), Some(first.as_str()));
    let pid = server.0.as_ref().unwrap().id().to_string();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let now = presented(&url).await.expect("still serving after SIGHUP");
        if now != first {
            break;
        }
        assert!(Instant::now() < deadline, "SIGHUP did not reload");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(server);
}
