//! An email address from the command line: `register --email` keeps the account pending until
//! `verify-email` gets the mailed code (here from the development outbox).

mod common;

use common::{fails, line, ok, serve, PASSWORD};

/// The 6-digit code of the newest message in the server's outbox.
fn mailed_code(outbox: &std::path::Path) -> String {
    let newest = std::fs::read_dir(outbox)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap())
        .expect("a message in the outbox");
    let text = std::fs::read_to_string(newest).unwrap();
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .expect("a 6-digit code")
        .to_owned()
}

#[test]
fn register_with_email_then_verify_from_the_cli() {
    let server = serve();
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let out = ok(
        &server,
        &home,
        &[
            "register",
            "alice",
            "--email",
            "alice@example.com",
            "--password-stdin",
        ],
        &line(PASSWORD),
    );
    assert!(
        out.contains("The account is pending") && out.contains("sesame verify-email alice"),
        "{out}"
    );
    let err = fails(
        &server,
        &home,
        &["login", "alice", "--password-stdin"],
        &line(PASSWORD),
    );
    assert!(err.contains("pending"), "{err}");

    let err = fails(&server, &home, &["verify-email", "alice", "000000"], "");
    assert!(err.contains("email verification failed"), "{err}");
    let out = ok(&server, &home, &["verify-email", "alice", "--resend"], "");
    assert!(out.contains("a new code is on its way"), "{out}");
    let code = mailed_code(&server.data_dir().join("outbox"));
    let out = ok(&server, &home, &["verify-email", "alice", &code], "");
    assert!(out.contains("account status: active"), "{out}");
    let out = ok(
        &server,
        &home,
        &["login", "alice", "--password-stdin"],
        &line(PASSWORD),
    );
    assert!(out.contains("Logged in as alice"), "{out}");
}

/// The bodies of the messages in the outbox sent to `to` whose subject is `subject`, once
/// there is one: the server hands mail over in the background, so this polls, bounded.
fn mails_to(outbox: &std::path::Path, to: &str, subject: &str) -> Vec<String> {
    let found = || -> Vec<String> {
        std::fs::read_dir(outbox)
            .into_iter()
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
            .filter(|t| t.contains(&format!("To: {to}")) && t.contains(subject))
            .collect()
    };
    let limit = std::time::Duration::from_secs(10);
    common::poll_until(limit, || Some(found()).filter(|m| !m.is_empty())).unwrap_or_default()
}

/// The 6-digit code in `mail`.
fn code_in(mail: &str) -> String {
    mail.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .expect("a 6-digit code")
        .to_owned()
}

#[test]
fn profile_changes_the_address_only_with_the_code_mailed_to_the_new_one() {
    let server = serve();
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let outbox = server.data_dir().join("outbox");
    let pw = line(PASSWORD);
    ok(
        &server,
        &home,
        &["register", "bob", "--password-stdin"],
        &pw,
    );
    ok(&server, &home, &["login", "bob", "--password-stdin"], &pw);

    let out = ok(
        &server,
        &home,
        &["profile", "--email", "bob@example.com"],
        "",
    );
    assert!(out.contains("sesame profile --email-code CODE"), "{out}");
    let mails = mails_to(&outbox, "bob@example.com", "Confirm your new email address");
    assert_eq!(mails.len(), 1, "{mails:?}");
    let code = code_in(&mails[0]);
    // Nothing changes until the code is entered, and a wrong one changes nothing.
    let shown = ok(&server, &home, &["profile"], "");
    assert!(shown.contains("email:               (not set)"), "{shown}");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let err = fails(&server, &home, &["profile", "--email-code", wrong], "");
    assert!(err.contains("not the one we sent"), "{err}");
    let out = ok(&server, &home, &["profile", "--email-code", &code], "");
    assert!(
        out.contains("Email address changed to bob@example.com"),
        "{out}"
    );
    assert!(
        out.contains("email:               bob@example.com"),
        "{out}"
    );

    // A second change: the new address gets the code, the old one is told afterwards.
    ok(
        &server,
        &home,
        &["profile", "--email", "robert@example.org"],
        "",
    );
    let mails = mails_to(
        &outbox,
        "robert@example.org",
        "Confirm your new email address",
    );
    let code = code_in(&mails[0]);
    ok(&server, &home, &["profile", "--email-code", &code], "");
    let told = mails_to(&outbox, "bob@example.com", "Your email address was changed");
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(told[0].contains("robert@example.org"));
    // The code works once.
    let err = fails(&server, &home, &["profile", "--email-code", &code], "");
    assert!(err.contains("No address change is waiting"), "{err}");

    let out = ok(&server, &home, &["profile", "--remove-email"], "");
    assert!(out.contains("Email address removed"), "{out}");
    assert!(out.contains("email:               (not set)"), "{out}");
    let err = fails(
        &server,
        &home,
        &["profile", "--email", "not an address"],
        "",
    );
    assert!(err.contains("email_invalid"), "{err}");
}
