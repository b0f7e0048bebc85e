//! End to end: the `sesame` client commands against a real `sesame serve` on a loopback port,
//! each command a separate process sharing a profile directory, as a person would run them.

mod common;

use common::{fails, line, ok, serve, PASSWORD};
use sesame_client::profile::Profile;

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn register_login_whoami_sessions_and_logout() {
    let server = serve();
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("laptop");
    let pw = line(PASSWORD);
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
    // Both ends of the session: the idle timeout (7 days by default) and the absolute expiry.
    assert!(
        out.contains("ends after 7days without use, and on ") && out.contains("at the latest"),
        "{out}"
    );
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
    let pw = line("a long passphrase for b");
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
