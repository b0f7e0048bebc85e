//! `sesame admin user grant-admin` / `revoke-admin` on a running server's data directory: the
//! role shows in the operator's listing, in `whoami`, and is audited.

mod common;

use common::{line, ok, serve, sesame_command, text, PASSWORD};

/// `sesame admin --data-dir DIR ARGS`: its stdout, or its stderr as the error.
fn admin(dir: &std::path::Path, args: &[&str]) -> Result<String, String> {
    let out = sesame_command()
        .arg("admin")
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(text(&out.stdout))
    } else {
        Err(text(&out.stderr))
    }
}

#[test]
fn the_operator_grants_and_revokes_the_admin_role() {
    let server = serve();
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("laptop");
    let pw = line(PASSWORD);
    ok(
        &server,
        &home,
        &["register", "alice", "--password-stdin"],
        &pw,
    );
    let dir = server.data_dir();

    let granted = admin(&dir, &["user", "grant-admin", "Alice"]).unwrap();
    assert!(
        granted.starts_with("alice ") && granted.contains("  admin  "),
        "{granted}"
    );
    let shown = admin(&dir, &["--json", "user", "show", "alice"]).unwrap();
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(
        (shown["role"].as_str(), shown["is_admin"].as_bool()),
        (Some("admin"), Some(true))
    );

    ok(&server, &home, &["login", "alice", "--password-stdin"], &pw);
    let who = ok(&server, &home, &["whoami"], "");
    assert!(who.contains("role:         admin"), "{who}");

    let revoked = admin(&dir, &["user", "revoke-admin", "alice"]).unwrap();
    assert!(revoked.contains("  user  "), "{revoked}");
    let who = ok(&server, &home, &["whoami"], "");
    assert!(who.contains("role:         user"), "{who}");

    let err = admin(&dir, &["user", "grant-admin", "zed"]).unwrap_err();
    assert!(err.contains("user_not_found"), "{err}");
    let audit = admin(&dir, &["audit", "--limit", "5"]).unwrap();
    assert!(
        audit.contains("admin.grant_admin") && audit.contains("admin.revoke_admin"),
        "{audit}"
    );
}

#[test]
fn the_operator_lists_a_users_passkeys_and_refuses_an_unknown_one() {
    let server = serve();
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("laptop");
    ok(
        &server,
        &home,
        &["register", "bob", "--password-stdin"],
        &line(PASSWORD),
    );
    let dir = server.data_dir();
    let listed = admin(&dir, &["user", "passkeys", "Bob"]).unwrap();
    assert_eq!(listed.trim(), "no passkeys");
    let listed = admin(&dir, &["--json", "user", "passkeys", "bob"]).unwrap();
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(
        listed,
        serde_json::json!({"passkeys": [], "phishing_resistant_required": false})
    );
    let id = "6f1c2b1e-0000-4000-8000-000000000000";
    let err = admin(&dir, &["user", "remove-passkey", "bob", id]).unwrap_err();
    assert!(err.contains("passkey_not_found"), "{err}");
    let err = admin(&dir, &["user", "passkeys", "zed"]).unwrap_err();
    assert!(err.contains("user_not_found"), "{err}");
}

#[test]
fn the_operator_lists_sessions_resets_second_factors_and_deletes() {
    let server = serve();
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("laptop");
    let pw = line(PASSWORD);
    ok(
        &server,
        &home,
        &["register", "carol", "--password-stdin"],
        &pw,
    );
    ok(&server, &home, &["login", "carol", "--password-stdin"], &pw);
    let dir = server.data_dir();

    let listed = admin(&dir, &["sessions", "list", "carol"]).unwrap();
    assert_eq!(listed.lines().count(), 1, "{listed}");
    assert!(listed.contains("from 127.0.0.1"), "{listed}");
    let json = admin(&dir, &["--json", "sessions", "list", "carol"]).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed.as_array().unwrap().len(), 1, "{json}");

    let reset = admin(&dir, &["user", "reset2fa", "carol"]).unwrap();
    assert!(reset.contains("second factor(s) of carol"), "{reset}");

    let err = admin(&dir, &["user", "delete", "carol"]).unwrap_err();
    assert!(err.contains("--yes"), "{err}");
    let deleted = admin(&dir, &["--json", "user", "delete", "carol", "--yes"]).unwrap();
    assert!(deleted.contains("\"done\""), "{deleted}");
    let err = admin(&dir, &["user", "show", "carol"]).unwrap_err();
    assert!(
        err.contains("no such user") || err.contains("No such user"),
        "{err}"
    );
    // Each action is in the audit log, done by the operator.
    let log = admin(&dir, &["audit"]).unwrap();
    for event in ["admin.reset_2fa", "admin.delete"] {
        assert!(
            log.lines()
                .any(|l| l.contains(event) && l.contains("by=operator")),
            "{event}: {log}"
        );
    }
}

#[test]
fn every_admin_command_answers_json_with_json() {
    let server = serve();
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("laptop");
    ok(
        &server,
        &home,
        &["register", "alice", "--password-stdin"],
        &line(PASSWORD),
    );
    let dir = server.data_dir();
    let commands: &[&[&str]] = &[
        &["gen-master-key"],
        &["users", "list"],
        &["user", "show", "alice"],
        &["user", "grant-admin", "alice"],
        &["user", "revoke-admin", "alice"],
        &["user", "passkeys", "alice"],
        &["user", "reset2fa", "alice"],
        &["user", "reset-password", "alice"],
        &["user", "ban", "alice"],
        &["user", "unban", "alice"],
        &["sessions", "list", "alice"],
        &["sessions", "revoke", "alice"],
        &["audit", "--limit", "3"],
        &["group", "create", "staff"],
        &["group", "add", "staff", "alice"],
        &["group", "list"],
        &["group", "remove", "staff", "alice"],
        &["group", "delete", "staff"],
        &[
            "oidc",
            "client",
            "add",
            "Wiki",
            "--redirect-uri",
            "https://wiki.example.com/cb",
            "--id",
            "wiki",
        ],
        &["oidc", "client", "list"],
        &["oidc", "client", "show", "wiki"],
        &["oidc", "client", "rotate-secret", "wiki"],
        &["oidc", "client", "remove", "wiki"],
        &["keys", "list"],
        &["user", "create", "zoe"],
        &["user", "delete", "zoe", "--yes"],
    ];
    for args in commands {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = admin(&dir, &all).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        let parsed: Result<serde_json::Value, _> = serde_json::from_str(&out);
        assert!(parsed.is_ok(), "{args:?} printed no JSON: {out}");
    }
}
