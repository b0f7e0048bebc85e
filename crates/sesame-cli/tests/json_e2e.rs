//! `--json` on the client commands that print data, for scripts; and what a profile does
//! when another account logs in on it (it says so).

mod common;

use common::{line, ok, serve, PASSWORD};

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

#[test]
fn client_commands_print_json_for_scripts() {
    let server = serve();
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let pw = line(PASSWORD);
    ok(
        &server,
        &home,
        &["register", "alice", "--password-stdin"],
        &pw,
    );
    ok(&server, &home, &["login", "alice", "--password-stdin"], &pw);

    let who = json(&ok(&server, &home, &["whoami", "--json"], ""));
    assert_eq!(who["account"]["username"], "alice");
    assert_eq!(who["server"], server.url.as_str());
    let session_id = who["session_id"].as_str().unwrap().to_owned();

    let sessions = json(&ok(&server, &home, &["sessions", "--json"], ""));
    let list = sessions.as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], session_id.as_str());
    assert_eq!(list[0]["current"], true);

    let status = json(&ok(&server, &home, &["2fa", "status", "--json"], ""));
    assert_eq!(status["totp_enabled"], false);
    assert_eq!(status["backup_codes_left"], 10);

    let profile = json(&ok(
        &server,
        &home,
        &["profile", "--display-name", "Alice L.", "--json"],
        "",
    ));
    assert_eq!(profile["profile"]["display_name"], "Alice L.");
    assert_eq!(profile["username"], "alice");

    let keys = json(&ok(&server, &home, &["keys", "show", "--json"], ""));
    assert_eq!(
        (keys["username"].as_str(), keys["published"].as_bool()),
        (Some("alice"), Some(true))
    );
    assert_eq!(keys["signing_key"].as_str().map(str::len), Some(43));

    let pinned = json(&ok(&server, &home, &["server", "show", "--json"], ""));
    assert_eq!(pinned["logged_in_as"], "alice");
    assert!(pinned["server_key"].is_string(), "{pinned}");
}

#[test]
fn logging_in_as_another_account_says_the_first_was_logged_out() {
    let server = serve();
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("shared");
    let pw = line(PASSWORD);
    for name in ["alice", "bob"] {
        ok(&server, &home, &["register", name, "--password-stdin"], &pw);
    }
    ok(&server, &home, &["login", "alice", "--password-stdin"], &pw);
    let out = ok(&server, &home, &["login", "bob", "--password-stdin"], &pw);
    assert!(
        out.contains("Logged out alice on this profile: it keeps one account per server")
            && out.contains("SESAME_HOME"),
        "{out}"
    );
    let who = json(&ok(&server, &home, &["whoami", "--json"], ""));
    assert_eq!(who["account"]["username"], "bob");
}
