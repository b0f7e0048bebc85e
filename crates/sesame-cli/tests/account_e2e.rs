//! End to end, the account commands: the real `sesame` binary against a real `sesame serve` on
//! a loopback port, each command a separate process sharing a profile directory. TOTP codes
//! are computed from the otpauth URI the command prints, as an authenticator app would.

mod common;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::Path;

use common::{fails, line, ok, ok_err, spawn, text, unix_now, Server, PASSWORD};
use sesame_client::profile::Profile;
use totp_rs::TOTP;

const NEW_PASSWORD: &str = "a brand new passphrase here";
const RECOVERED_PASSWORD: &str = "recovered with a backup code";

/// Starts `sesame serve` on an ephemeral port with a fresh data directory and `env`.
fn serve(env: &[(&str, &str)]) -> Server {
    // Every command of a test comes from 127.0.0.1.
    let mut all = vec![("SESAME_THROTTLE_PER_ADDRESS", "0")];
    all.extend_from_slice(env);
    common::serve_with(&all)
}

/// The backup codes a command printed (`  1. xxxxx-xxxxx`), after its "store these now" line.
fn backup_codes(out: &str) -> Vec<String> {
    assert!(out.contains("Store these now"), "{out}");
    let codes: Vec<String> = out
        .lines()
        .filter_map(|l| {
            let (n, code) = l.trim().split_once(". ")?;
            n.parse::<u32>().ok()?;
            let ok = code.len() == 11
                && code.as_bytes()[5] == b'-'
                && code
                    .chars()
                    .all(|c| c == '-' || c.is_ascii_digit() || c.is_ascii_lowercase());
            ok.then(|| code.to_owned())
        })
        .collect();
    assert!(codes.len() >= 8, "{out}");
    codes
}

/// `sesame 2fa enable` as a person runs it: reads the QR code and the URI it prints, then
/// types the code the app shows. Returns the authenticator and the standard output.
fn enable_2fa(server: &Server, home: &Path) -> (TOTP, String) {
    let mut child = spawn(server, home, &["2fa", "enable", "--password-stdin"]);
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    let uri = loop {
        let mut l = String::new();
        if stdout.read_line(&mut l).unwrap() == 0 {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("2fa enable ended before printing the URI:\n{seen}{err}");
        }
        seen.push_str(&l);
        if let Some(uri) = l.trim().strip_prefix("URI:") {
            break uri.trim().to_owned();
        }
    };
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert!(
        seen.contains('█') && seen.contains('▀'),
        "a QR code:\n{seen}"
    );
    // The authenticator app: the URI's secret, SHA-1, 6 digits, 30 s.
    let totp = TOTP::from_url(&uri).unwrap();
    let code = totp.generate_current().unwrap();
    writeln!(stdin, "{code}").unwrap();
    drop(stdin);
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    seen.push_str(&rest);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "2fa enable failed:\n{seen}{}",
        text(&out.stderr)
    );
    assert!(seen.contains("Secret: "), "{seen}");
    (totp, seen)
}

#[test]
fn two_factor_backup_codes_password_change_recovery_and_deletion() {
    let server = serve(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("laptop");
    let profile = Profile::at(&home);
    let id = sesame_client::server_id(&server.url).unwrap();
    let pw = line(PASSWORD);

    // Registration shows the backup codes once.
    let out = ok(
        &server,
        &home,
        &["register", "alice", "--password-stdin"],
        &pw,
    );
    assert!(out.contains("Registered alice"), "{out}");
    let first_codes = backup_codes(&out);
    assert_eq!(first_codes.len(), 10);

    // Log in and turn TOTP on: the QR code, the URI, then a code from the app.
    ok(&server, &home, &["login", "alice", "--password-stdin"], &pw);
    let out = ok(&server, &home, &["2fa", "status"], "");
    assert!(
        out.contains("Authenticator app:  off") && out.contains("Backup codes left:  10"),
        "{out}"
    );
    let (totp, out) = enable_2fa(&server, &home);
    assert!(out.contains("Two-factor authentication is on"), "{out}");
    let out = ok(&server, &home, &["2fa", "status"], "");
    assert!(out.contains("Authenticator app:  on"), "{out}");
    // Enabling again does not silently start a new enrolment.
    let err = fails(&server, &home, &["2fa", "enable", "--password-stdin"], &pw);
    assert!(err.contains("already on"), "{err}");
    let out = ok(&server, &home, &["profile"], "");
    assert!(out.contains("two-factor (TOTP):   on"), "{out}");
    assert!(out.contains("backup codes left:   10"), "{out}");
    ok(&server, &home, &["logout"], "");

    // The password alone no longer logs in: the command asks for the code...
    let err = fails(&server, &home, &["login", "alice", "--password-stdin"], &pw);
    assert!(err.contains("standard input ended"), "{err}");
    assert_eq!(profile.load_session(&id).unwrap(), None);
    // ...refuses a wrong one...
    let err = fails(
        &server,
        &home,
        &["login", "alice", "--password-stdin", "--code", "000000"],
        &pw,
    );
    assert!(err.contains("the code is wrong"), "{err}");
    // ...and takes the app's. The enrolment used this time step's code, which can never be
    // used again; the app's code for the next step is accepted (one step of clock skew).
    let next = totp.generate(unix_now() + 30);
    let out = ok(
        &server,
        &home,
        &["login", "alice", "--password-stdin", "--code", &next],
        &pw,
    );
    assert!(out.contains("Logged in as alice"), "{out}");
    assert!(!out.contains("Trusting"), "{out}");
    assert!(profile.load_session(&id).unwrap().is_some());

    // New backup codes; the old set stops working.
    let out = ok(&server, &home, &["backup-codes", "regenerate"], "");
    assert!(out.contains("the old ones no longer work"), "{out}");
    let codes = backup_codes(&out);
    assert!(codes.iter().all(|c| !first_codes.contains(c)));
    ok(&server, &home, &["logout"], "");
    let err = fails(
        &server,
        &home,
        &[
            "login",
            "alice",
            "--password-stdin",
            "--code",
            &first_codes[0],
        ],
        &pw,
    );
    assert!(err.contains("the code is wrong"), "{err}");
    // A backup code typed at the prompt (here: the next line of input), over the WebSocket.
    let out = ok(
        &server,
        &home,
        &["login", "alice", "--password-stdin", "--ws"],
        &format!("{PASSWORD}\n{}\n", codes[0]),
    );
    assert!(out.contains("Logged in as alice"), "{out}");

    // Change the password (client-side OPAQUE); a wrong current password changes nothing.
    let err = fails(
        &server,
        &home,
        &["passwd", "--password-stdin"],
        &format!("not my password\n{NEW_PASSWORD}\n"),
    );
    assert!(err.contains("current password is wrong"), "{err}");
    let err = fails(
        &server,
        &home,
        &["passwd", "--password-stdin"],
        &format!("{PASSWORD}\npassword\n"),
    );
    assert!(err.contains("password refused"), "{err}");
    let out = ok(
        &server,
        &home,
        &["passwd", "--password-stdin", "--revoke-other-sessions"],
        &format!("{PASSWORD}\n{NEW_PASSWORD}\n"),
    );
    assert!(out.contains("Password changed for alice"), "{out}");
    assert!(out.contains("Signed out 0 other sessions"), "{out}");
    // The messaging identity keys follow the password (they are wrapped under its export key).
    assert!(
        out.contains("identity keys and conversations re-wrapped"),
        "{out}"
    );
    ok(&server, &home, &["whoami"], "");
    ok(&server, &home, &["logout"], "");
    let err = fails(
        &server,
        &home,
        &["login", "alice", "--password-stdin", "--code", &codes[1]],
        &pw,
    );
    assert!(err.contains("wrong username or password"), "{err}");
    let (out, err) = ok_err(
        &server,
        &home,
        &["login", "alice", "--password-stdin", "--code", &codes[1]],
        &line(NEW_PASSWORD),
    );
    assert!(out.contains("Logged in as alice"), "{out}");
    // A backup code says how many are left (this is the second one used).
    let left: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("Backup code used: "))
        .collect();
    assert!(left.len() == 1 && left[0].ends_with(" left."), "{out}");
    assert!(
        !err.contains("WARNING"),
        "the same identity keys open: {err}"
    );

    // Forgot the password: recover with a backup code. A used one does not work.
    let phone = tmp.path().join("phone");
    let err = fails(
        &server,
        &phone,
        &[
            "recover",
            "alice",
            "--backup-code",
            &codes[1],
            "--password-stdin",
            "--yes",
        ],
        &line(RECOVERED_PASSWORD),
    );
    assert!(err.contains("recovery failed"), "{err}");
    let out = ok(
        &server,
        &phone,
        &[
            "recover",
            "alice",
            "--backup-code",
            &codes[2],
            "--password-stdin",
            "--yes",
        ],
        &line(RECOVERED_PASSWORD),
    );
    assert!(out.contains("Password reset for alice"), "{out}");
    let fresh = backup_codes(&out);
    assert_eq!(fresh.len(), 10);
    // Every session was signed out, the laptop's too.
    let err = fails(&server, &home, &["whoami"], "");
    assert!(err.contains("expired or was revoked"), "{err}");
    let out = ok(
        &server,
        &home,
        &["login", "alice", "--password-stdin", "--code", &fresh[0]],
        &line(RECOVERED_PASSWORD),
    );
    assert!(out.contains("Logged in as alice"), "{out}");

    // Delete the account: the username must be typed to confirm, or --yes.
    let err = fails(&server, &home, &["delete-account"], "bob\n");
    assert!(err.contains("does not match"), "{err}");
    let out = ok(&server, &home, &["delete-account", "--yes"], "");
    assert!(out.contains("Deleted the account alice"), "{out}");
    assert_eq!(profile.load_session(&id).unwrap(), None);
    let err = fails(
        &server,
        &home,
        &["login", "alice", "--password-stdin", "--code", &fresh[1]],
        &line(RECOVERED_PASSWORD),
    );
    assert!(err.contains("wrong username or password"), "{err}");
}

#[test]
fn stale_sessions_reauthenticate_then_retry_and_profile_and_questions() {
    // Logins count as fresh for 2 seconds only on this server, and the test moves the
    // server's clock forward (a debug build reads an offset from this file).
    let tmp = tempfile::tempdir().unwrap();
    let clock = tmp.path().join("clock-offset");
    let advance = |secs: u64| {
        let now: u64 = std::fs::read_to_string(&clock).map_or(0, |s| s.trim().parse().unwrap());
        std::fs::write(&clock, (now + secs).to_string()).unwrap();
    };
    let clock_env = clock.to_str().unwrap().to_owned();
    let server = serve(&[
        ("SESAME_REAUTH_WINDOW", "2"),
        ("SESAME_DEBUG_CLOCK_FILE", clock_env.as_str()),
    ]);
    let home = tmp.path().join("home");
    let pw = line(PASSWORD);
    ok(
        &server,
        &home,
        &["register", "bob", "--password-stdin"],
        &pw,
    );
    ok(&server, &home, &["login", "bob", "--password-stdin"], &pw);

    // The profile needs no fresh authentication.
    let out = ok(
        &server,
        &home,
        &[
            "profile",
            "--display-name",
            "Bob B.",
            "--bio",
            "Hi there",
            "--picture-url",
            "https://example.com/bob.png",
        ],
        "",
    );
    assert!(out.contains("Profile updated."), "{out}");
    assert!(out.contains("display name:        Bob B."), "{out}");
    let out = ok(&server, &home, &["profile", "--bio", ""], "");
    assert!(out.contains("bio:                 (not set)"), "{out}");
    assert!(out.contains("https://example.com/bob.png"), "{out}");
    let err = fails(&server, &home, &["profile", "--picture-url", "ftp://x"], "");
    assert!(err.contains("profile_invalid"), "{err}");

    advance(3);
    // Stale: the command asks for the password, re-authenticates and retries.
    let err = fails(
        &server,
        &home,
        &["backup-codes", "regenerate", "--password-stdin"],
        "not the password\n",
    );
    assert!(
        err.contains("re-authentication failed: wrong password"),
        "{err}"
    );
    let (out, err) = ok_err(
        &server,
        &home,
        &["backup-codes", "regenerate", "--password-stdin"],
        &pw,
    );
    assert!(err.contains("needs a fresh authentication"), "{err}");
    assert_eq!(backup_codes(&out).len(), 10);

    // Security questions, read from standard input: two, then an empty line.
    advance(3);
    let (out, err) = ok_err(
        &server,
        &home,
        &["security-questions", "set", "--password-stdin"],
        &format!("1\nRex the dog\nWhat was my first phone?\nA Nokia 3310\n\n{PASSWORD}\n"),
    );
    assert!(out.contains("Security questions set (2)"), "{out}");
    assert!(err.contains("needs a fresh authentication"), "{err}");
    let out = ok(&server, &home, &["profile"], "");
    assert!(out.contains("security questions:  2"), "{out}");

    // Recovery with security questions alone is never enough: the server wants a TOTP code
    // with them, and bob has none.
    let err = fails(
        &server,
        &tmp.path().join("other"),
        &[
            "recover",
            "bob",
            "--totp-code",
            "123456",
            "--password-stdin",
            "--yes",
        ],
        &format!("{NEW_PASSWORD}\nrex the dog\na nokia 3310\n"),
    );
    assert!(err.contains("recovery failed"), "{err}");

    advance(3);
    let (out, err) = ok_err(
        &server,
        &home,
        &["delete-account", "--yes", "--password-stdin"],
        &pw,
    );
    assert!(err.contains("needs a fresh authentication"), "{err}");
    assert!(out.contains("Deleted the account bob"), "{out}");
}

/// `sesame 2fa device on|off`: a key kept on this device signs every login; another device
/// (a second profile) cannot log in with the password alone, and the owner can lift it.
#[test]
fn a_device_key_can_be_required_at_login() {
    let server = serve(&[]);
    let laptop = tempfile::tempdir().unwrap();
    let phone = tempfile::tempdir().unwrap();
    let pw = line(PASSWORD);
    ok(
        &server,
        laptop.path(),
        &["register", "dora", "--password-stdin"],
        &format!("{pw}{pw}"),
    );
    ok(
        &server,
        laptop.path(),
        &["login", "dora", "--password-stdin"],
        &pw,
    );
    let out = ok(
        &server,
        laptop.path(),
        &["2fa", "device", "on", "--password-stdin"],
        &pw,
    );
    assert!(out.contains("now need this device's key"), "{out}");
    let keys = std::fs::read_dir(laptop.path().join("devices"))
        .unwrap()
        .count();
    assert_eq!(keys, 1, "the device key is kept in the profile");
    // This device logs in (over REST and WebSocket); another one does not.
    ok(
        &server,
        laptop.path(),
        &["login", "dora", "--password-stdin"],
        &pw,
    );
    ok(
        &server,
        laptop.path(),
        &["login", "dora", "--ws", "--password-stdin"],
        &pw,
    );
    let err = fails(
        &server,
        phone.path(),
        &["login", "dora", "--password-stdin"],
        &pw,
    );
    assert!(
        err.contains("wrong username or password") || err.contains("authentication"),
        "{err}"
    );
    // Lifted again from the laptop; then the phone gets in.
    let out = ok(
        &server,
        laptop.path(),
        &["2fa", "device", "off", "--password-stdin"],
        &pw,
    );
    assert!(out.contains("no longer need"), "{out}");
    ok(
        &server,
        phone.path(),
        &["login", "dora", "--password-stdin"],
        &pw,
    );
}
