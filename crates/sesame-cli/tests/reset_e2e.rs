//! Operator-issued password resets: `sesame admin user create` and `admin user
//! reset-password` print a one-time code; the person redeems it with `sesame recover NAME
//! --reset-code CODE`, choosing the password on their own device. The operator never sees
//! a password; the code works once; every step is audited.

mod common;

use common::{fails, line, ok, serve, sesame_command, text, PASSWORD};

const NEW_PASSWORD: &str = "a brand new passphrase 4821";

/// `sesame admin --data-dir DIR --json ARGS`, parsed.
fn admin_json(dir: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let out = sesame_command()
        .arg("admin")
        .arg("--data-dir")
        .arg(dir)
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `sesame recover NAME --reset-code CODE`, the new password from standard input.
fn redeem<'a>(name: &'a str, code: &'a str) -> [&'a str; 6] {
    [
        "recover",
        name,
        "--reset-code",
        code,
        "--password-stdin",
        "--yes",
    ]
}

/// The reset code of an admin command's JSON answer.
fn code_of(answer: &serde_json::Value) -> String {
    answer["code"].as_str().unwrap().to_owned()
}

#[test]
fn an_operator_created_account_is_claimed_with_its_one_time_code() {
    let server = serve();
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("carol");
    let dir = server.data_dir();

    let created = admin_json(&dir, &["user", "create", "Carol", "--valid", "2h"]);
    assert_eq!(created["username"], "carol");
    let code = code_of(&created);
    assert_eq!(code.len(), 23, "{code}");
    let expires = created["expires_at"].as_i64().unwrap();
    let now = i64::try_from(common::unix_now()).unwrap();
    assert!((now + 7100..=now + 7300).contains(&expires), "{expires}");

    // Nobody can sign in before the code is redeemed: there is no known password.
    fails(
        &server,
        &home,
        &["login", "carol", "--password-stdin"],
        &line(PASSWORD),
    );

    let out = ok(&server, &home, &redeem("carol", &code), &line(NEW_PASSWORD));
    assert!(out.contains("Password reset for carol"), "{out}");
    ok(
        &server,
        &home,
        &["login", "carol", "--password-stdin"],
        &line(NEW_PASSWORD),
    );

    // The code worked once.
    let again = fails(&server, &home, &redeem("carol", &code), &line(PASSWORD));
    assert!(again.contains("recovery failed"), "{again}");
    let audit = admin_json(&dir, &["audit", "--user", "carol"]);
    let events: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    for want in ["admin.user_created", "recovery.success", "recovery.failure"] {
        assert!(events.contains(&want), "{want} missing from {events:?}");
    }
}

#[test]
fn a_reset_code_replaces_the_password_ends_sessions_and_only_the_newest_works() {
    let server = serve();
    let tmp = tempfile::tempdir().unwrap();
    let laptop = tmp.path().join("laptop");
    let phone = tmp.path().join("phone");
    let pw = line(PASSWORD);
    ok(
        &server,
        &laptop,
        &["register", "dave", "--password-stdin"],
        &pw,
    );
    ok(
        &server,
        &laptop,
        &["login", "dave", "--password-stdin"],
        &pw,
    );
    let dir = server.data_dir();

    let first = code_of(&admin_json(&dir, &["user", "reset-password", "dave"]));
    let second = code_of(&admin_json(&dir, &["user", "reset-password", "dave"]));
    assert_ne!(first, second);
    let stale = fails(
        &server,
        &phone,
        &redeem("dave", &first),
        &line(NEW_PASSWORD),
    );
    assert!(stale.contains("recovery failed"), "{stale}");
    // Typed the way people copy codes: upper case, spaces for dashes.
    let typed = second.to_uppercase().replace('-', " ");
    ok(
        &server,
        &phone,
        &redeem("dave", &typed),
        &line(NEW_PASSWORD),
    );
    // The laptop's session ended with the reset; the old password is gone.
    let who = fails(&server, &laptop, &["whoami"], "");
    assert!(who.contains("expired or was revoked"), "{who}");
    fails(
        &server,
        &laptop,
        &["login", "dave", "--password-stdin"],
        &pw,
    );
    ok(
        &server,
        &laptop,
        &["login", "dave", "--password-stdin"],
        &line(NEW_PASSWORD),
    );

    // The operator's command names only existing accounts and bounded validities.
    let out = sesame_command()
        .args(["admin", "--data-dir"])
        .arg(&dir)
        .args(["user", "reset-password", "zed"])
        .output()
        .unwrap();
    assert!(
        text(&out.stderr).contains("user_not_found"),
        "{}",
        text(&out.stderr)
    );
    let out = sesame_command()
        .args(["admin", "--data-dir"])
        .arg(&dir)
        .args(["user", "reset-password", "dave", "--valid", "90d"])
        .output()
        .unwrap();
    assert!(
        text(&out.stderr).contains("at most 30 days"),
        "{}",
        text(&out.stderr)
    );
}
