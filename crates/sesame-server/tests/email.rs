//! Email one-time codes and email recovery against a **real SMTP server on loopback**: Python's
//! `aiosmtpd` (`tests/py/smtp_sink.py`) receives what the server sends over SMTP, and the tests
//! read the codes out of the delivered messages, the way the seed's tests used MailHog. No
//! mocked mailer. One test covers the development outbox (no SMTP configured).
//!
//! Without aiosmtpd (`pip install aiosmtpd`) the SMTP tests are skipped with a loud line,
//! unless `SESAME_REQUIRE_SERVICES=1`, which makes them fail.
// Waiting for mail from the outside SMTP sink is bounded by real time; the client's
// OPAQUE randomness comes from the OS generator.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use sesame_proto::client::{self, ClientPolicy};
use sesame_proto::messages::RegistrationChallenge;
use sesame_server::store::AccountStatus;
use totp_rs::{Algorithm, Secret, TOTP};
use uuid::Uuid;

use common::api::{audit_of, err, get_auth, login, post, post_auth, refresh, PASSWORD};
use common::python::{python_ready, script};
use common::server::TestServer;
use common::{backends, TestDb};

const NEW_PASSWORD: &str = "a brand new passphrase for recovery";
const SKIP: &str = "*** SKIPPING email tests: pip install aiosmtpd ***";
/// How long a mail may take to arrive.
const MAIL_WAIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// The SMTP sink

/// A running `smtp_sink.py`: an aiosmtpd server on 127.0.0.1 writing each message to a
/// directory. Killed on drop.
struct SmtpSink {
    port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl SmtpSink {
    /// Starts the sink, or `None` when aiosmtpd is missing (see [`python_ready`]).
    fn start() -> Option<SmtpSink> {
        if !python_ready(SKIP, "import aiosmtpd.controller") {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("sesame-smtp-")
            .tempdir()
            .unwrap();
        // stdin stays open (held by `child`): the sink exits when it closes, so even a test
        // process that dies without dropping this leaves no server behind.
        let mut child = Command::new("python3")
            .arg(script("smtp_sink.py"))
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start smtp_sink.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the sink's port");
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("smtp_sink.py did not print a port: {line:?}"));
        Some(SmtpSink { port, child, dir })
    }

    /// Points the server's configuration at this sink (plain SMTP on loopback).
    fn configure(&self, c: &mut sesame_server::config::Config) {
        c.smtp_host = Some("127.0.0.1".into());
        c.smtp_port = self.port;
        c.smtp_security = "none".into();
        c.smtp_timeout_secs = 5;
    }

    /// Every message received so far for `to`, in arrival order.
    fn messages_to(&self, to: &str) -> Vec<String> {
        messages_in(self.dir.path(), to)
    }

    /// Waits until at least `n` messages for `to` have arrived; returns them all.
    async fn wait_for(&self, to: &str, n: usize) -> Vec<String> {
        wait_for_messages(self.dir.path(), to, n).await
    }

    /// Checks that no message beyond the first `n` for `to` was sent: once every mail the
    /// server handed to its mailer is delivered (or failed), the sink has all there is.
    async fn assert_quiet(&self, srv: &TestServer, to: &str, n: usize, why: &str) {
        srv.sesame.mail_settled().await;
        let got = self.messages_to(to).len();
        assert_eq!(got, n, "{why}: expected {n} messages for {to}, got {got}");
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `.eml` files in `dir` (sorted by name: the sink numbers them, the outbox starts them
/// with the unix time) whose headers name `to`.
fn messages_in(dir: &Path, to: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .filter(|m| {
            let headers = m.split("\r\n\r\n").next().unwrap_or(m);
            headers
                .lines()
                .any(|l| l.to_ascii_lowercase().starts_with("to:") && l.contains(to))
        })
        .collect()
}

async fn wait_for_messages(dir: &Path, to: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + MAIL_WAIT;
    loop {
        let got = messages_in(dir, to);
        if got.len() >= n {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "expected {n} messages for {to} within {MAIL_WAIT:?}, got {}: {got:?}",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The 6-digit code after `label` in a message.
fn code_after(message: &str, label: &str) -> String {
    let at = message
        .find(label)
        .unwrap_or_else(|| panic!("no {label:?} in the message:\n{message}"));
    let code: String = message[at + label.len()..]
        .trim_start()
        .chars()
        .take(6)
        .collect();
    assert!(
        code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()),
        "not a 6-digit code after {label:?}: {code:?}\n{message}"
    );
    code
}

fn verification_code(message: &str) -> String {
    code_after(message, "Your verification code:")
}

fn recovery_code(message: &str) -> String {
    code_after(message, "Your recovery code:")
}

/// A different 6-digit code.
fn wrong(code: &str) -> String {
    let n: u32 = code.parse().unwrap();
    format!("{:06}", (n + 1) % 1_000_000)
}

// ---------------------------------------------------------------------------------------------
// HTTP helpers

/// `POST /api/register` with an email; returns the user id (the account is pending).
async fn register_with_email(c: &Client, srv: &TestServer, name: &str, email: &str) -> Uuid {
    let (s, b) = post(
        c,
        srv,
        "/api/register",
        json!({"username": name, "password": PASSWORD, "email": email}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "register {name}: {b}");
    assert_eq!(b["status"], "pending", "{b}");
    assert!(
        b["backupCodes"].as_array().is_some_and(|a| a.len() >= 8),
        "{b}"
    );
    b["user_id"].as_str().unwrap().parse().unwrap()
}

async fn verify(c: &Client, srv: &TestServer, name: &str, code: &str) -> (StatusCode, Value) {
    post(
        c,
        srv,
        "/api/verify-email",
        json!({"username": name, "code": code}),
    )
    .await
}

async fn resend(c: &Client, srv: &TestServer, name: &str) -> Value {
    let (s, b) = post(
        c,
        srv,
        "/api/verify-email/resend",
        json!({"username": name}),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "resend {name}: {b}");
    b
}

async fn status_of(srv: &TestServer, user: Uuid) -> AccountStatus {
    srv.sesame
        .store()
        .user_by_id(user)
        .await
        .unwrap()
        .expect("user")
        .status
}

/// Client-side OPAQUE registration through `/api/register/{start,finish}`, with the fields of
/// `extra` (an object, e.g. `{"email": …}`) added to the finish body.
async fn register_opaque_with(
    c: &Client,
    srv: &TestServer,
    name: &str,
    extra: Value,
) -> (StatusCode, Value) {
    let mut rng = rand_core::OsRng;
    let (state, start) = client::start_registration(&mut rng, name, PASSWORD).unwrap();
    let (s, b) = post(c, srv, "/api/register/start", &start).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let challenge: RegistrationChallenge = serde_json::from_value(b).unwrap();
    let done = state
        .finish(&mut rng, &challenge, &ClientPolicy::default())
        .unwrap();
    let mut body = serde_json::to_value(&done.message).unwrap();
    for (k, v) in extra.as_object().expect("extra fields") {
        body[k] = v.clone();
    }
    post(c, srv, "/api/register/finish", body).await
}

async fn smtp_server(db: &TestDb, sink: &SmtpSink) -> TestServer {
    let srv = TestServer::start_with(db, |c| sink.configure(c)).await;
    let described = srv.sesame.mail_description();
    assert!(
        described.starts_with(&format!("SMTP 127.0.0.1:{} ", sink.port)),
        "{described}"
    );
    srv
}

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_with_email_stays_pending_until_the_mailed_code() {
    for db in backends().await {
        let Some(sink) = SmtpSink::start() else {
            return;
        };
        let srv = smtp_server(&db, &sink).await;
        let c = Client::new();
        let n = db.name;

        let email = "Emma.Stone@Example.COM";
        let delivered_to = "Emma.Stone@example.com";
        let user = register_with_email(&c, &srv, "emma", email).await;
        assert_eq!(status_of(&srv, user).await, AccountStatus::Pending);
        // The address is stored sealed and indexed, never in clear.
        let rec = srv.sesame.store().user_by_id(user).await.unwrap().unwrap();
        let sealed = rec.email_sealed.expect("email stored");
        assert!(rec.email_index.is_some());
        assert!(!sealed.windows(7).any(|w| w == b"example"), "[{n}]");

        // The right password is not enough yet.
        let (s, b) = login(&c, &srv, "emma", PASSWORD).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "[{n}] {b}");
        assert_eq!(err(&b), "account_pending");

        let mails = sink.wait_for(delivered_to, 1).await;
        assert_eq!(mails.len(), 1);
        assert!(
            mails[0].contains("Subject: Your Sesame verification code"),
            "{}",
            mails[0]
        );
        assert!(mails[0].contains("no-reply@localhost"), "{}", mails[0]);
        let code = verification_code(&mails[0]);

        let (s, b) = verify(&c, &srv, "emma", &wrong(&code)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "[{n}] {b}");
        assert_eq!(err(&b), "invalid_code");
        assert_eq!(status_of(&srv, user).await, AccountStatus::Pending);

        let (s, b) = verify(&c, &srv, "emma", &code).await;
        assert_eq!(s, StatusCode::OK, "[{n}] {b}");
        assert_eq!(b, json!({"message": "Email verified.", "status": "active"}));
        assert_eq!(status_of(&srv, user).await, AccountStatus::Active);

        let (s, b) = verify(&c, &srv, "emma", &code).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "[{n}] {b}");
        assert_eq!(err(&b), "already_verified");

        let (s, b) = login(&c, &srv, "emma", PASSWORD).await;
        assert_eq!(s, StatusCode::OK, "[{n}] {b}");
        assert!(b["token"].is_string(), "{b}");

        let audit = audit_of(&srv, user).await;
        for event in ["register", "register.email_verified"] {
            assert!(
                audit.iter().any(|a| a.event == event),
                "[{n}] no {event} in {audit:?}"
            );
        }
        // The resend route has nothing to do for an active account.
        resend(&c, &srv, "emma").await;
        sink.assert_quiet(&srv, delivered_to, 1, "active account")
            .await;

        // Client-side OPAQUE registration takes an email too; unknown fields stay refused.
        let (s, b) =
            register_opaque_with(&c, &srv, "olga", json!({"email": "olga@mail.example.org"})).await;
        assert_eq!(s, StatusCode::CREATED, "[{n}] {b}");
        assert_eq!(b["status"], "pending");
        let code = verification_code(&sink.wait_for("olga@mail.example.org", 1).await[0]);
        let (s, b) = verify(&c, &srv, "olga", &code).await;
        assert_eq!(s, StatusCode::OK, "[{n}] {b}");
        let (s, b) = login(&c, &srv, "olga", PASSWORD).await;
        assert_eq!(s, StatusCode::OK, "[{n}] {b}");
        let (s, b) = register_opaque_with(&c, &srv, "pia", json!({"email": null})).await;
        assert_eq!(s, StatusCode::CREATED, "[{n}] {b}");
        assert_eq!(b["status"], "active", "no email: active at once");
        let extra = json!({"email": "quin@example.com", "bogus": 1});
        let (s, b) = register_opaque_with(&c, &srv, "quin", extra).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "[{n}] {b}");
        assert_eq!(err(&b), "invalid_request");
        assert!(
            b["error"]["message"].as_str().unwrap().contains("bogus"),
            "{b}"
        );

        // The seed route `/register` as well.
        let (s, b) = post(
            &c,
            &srv,
            "/register",
            json!({"username": "rita", "password": PASSWORD, "email": "rita@example.net"}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "[{n}] {b}");
        assert_eq!(b["status"], "pending");
        sink.wait_for("rita@example.net", 1).await;

        srv.stop().await;
        drop(sink);
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resend_is_rate_limited_silently() {
    for db in backends().await {
        let Some(sink) = SmtpSink::start() else {
            return;
        };
        let srv = smtp_server(&db, &sink).await;
        let c = Client::new();
        let n = db.name;
        let to = "finn@example.com";
        register_with_email(&c, &srv, "finn", to).await;
        let first = verification_code(&sink.wait_for(to, 1).await[0]);

        // Within 60 s of the registration mail: nothing more is sent, and nothing says so.
        let same = resend(&c, &srv, "finn").await;
        sink.assert_quiet(&srv, to, 1, "resend within 60 s").await;
        let unknown = resend(&c, &srv, "nobody-here").await;
        assert_eq!(unknown, same, "[{n}] unknown names get the same answer");

        // One more mail per minute, up to 5 in the hour (the registration's included).
        let mut latest = first.clone();
        for k in 2..=5 {
            srv.clock.advance(61);
            assert_eq!(resend(&c, &srv, "finn").await, same);
            let mails = sink.wait_for(to, k).await;
            latest = verification_code(&mails[k - 1]);
        }
        srv.clock.advance(61);
        assert_eq!(resend(&c, &srv, "finn").await, same);
        sink.assert_quiet(&srv, to, 5, "sixth mail within the hour")
            .await;

        // A resent code replaces the earlier one.
        if latest != first {
            let (s, b) = verify(&c, &srv, "finn", &first).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "[{n}] {b}");
            assert_eq!(err(&b), "invalid_code");
        }

        // An hour later the budget is back.
        srv.clock.advance(3600);
        resend(&c, &srv, "finn").await;
        let mails = sink.wait_for(to, 6).await;
        let code = verification_code(&mails[5]);
        let (s, b) = verify(&c, &srv, "finn", &code).await;
        assert_eq!(s, StatusCode::OK, "[{n}] {b}");

        srv.stop().await;
        drop(sink);
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_expire_burn_after_five_tries_and_unknown_names_look_alike() {
    for db in backends().await {
        let Some(sink) = SmtpSink::start() else {
            return;
        };
        let srv = smtp_server(&db, &sink).await;
        let c = Client::new();
        let n = db.name;
        let to = "jack@example.com";
        let user = register_with_email(&c, &srv, "jack", to).await;
        let code = verification_code(&sink.wait_for(to, 1).await[0]);

        // Ten minutes by the server's clock.
        srv.clock.advance(601);
        let (s, b) = verify(&c, &srv, "jack", &code).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "[{n}] {b}");
        assert_eq!(err(&b), "code_expired");

        // A fresh code; five wrong tries burn it, the right one comes too late.
        resend(&c, &srv, "jack").await;
        let code = verification_code(&sink.wait_for(to, 2).await[1]);
        for _ in 0..5 {
            let (s, b) = verify(&c, &srv, "jack", &wrong(&code)).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "[{n}] {b}");
            assert_eq!(err(&b), "invalid_code");
        }
        let (s, b) = verify(&c, &srv, "jack", &code).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "[{n}] {b}");
        assert_eq!(err(&b), "code_expired");
        assert_eq!(status_of(&srv, user).await, AccountStatus::Pending);

        // An unknown name answers exactly like a known one without a live code.
        let (s1, unknown) = verify(&c, &srv, "nobody-here", "123456").await;
        let (s2, known) = verify(&c, &srv, "jack", "123456").await;
        assert_eq!((s1, s2), (StatusCode::BAD_REQUEST, StatusCode::BAD_REQUEST));
        assert_eq!(unknown, known, "[{n}]");

        srv.clock.advance(61);
        resend(&c, &srv, "jack").await;
        let code = verification_code(&sink.wait_for(to, 3).await[2]);
        let (s, b) = verify(&c, &srv, "jack", &format!(" {code} ")).await;
        assert_eq!(s, StatusCode::OK, "[{n}] {b}");
        assert!(audit_of(&srv, user)
            .await
            .iter()
            .any(|a| a.event == "register.email_verified"));

        srv.stop().await;
        drop(sink);
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_and_invalid_emails_are_refused() {
    for db in backends().await {
        // No SMTP needed: the outbox takes the mail.
        let srv = TestServer::start(&db).await;
        let c = Client::new();
        let n = db.name;
        register_with_email(&c, &srv, "gina", "gina@example.com").await;
        // The domain is case-insensitive: the same address.
        let (s, b) = post(
            &c,
            &srv,
            "/api/register",
            json!({"username": "hugo", "password": PASSWORD, "email": "gina@EXAMPLE.com"}),
        )
        .await;
        assert_eq!(s, StatusCode::CONFLICT, "[{n}] {b}");
        assert_eq!(err(&b), "email_taken");
        // Nothing was created: the name is still free.
        register_with_email(&c, &srv, "hugo", "hugo@example.com").await;
        let (s, b) =
            register_opaque_with(&c, &srv, "hanna", json!({"email": "Hugo@Example.com"})).await;
        assert_eq!(
            s,
            StatusCode::CREATED,
            "[{n}] local parts keep their case: {b}"
        );

        let long = format!("{}@example.com", "a".repeat(250));
        for bad in [
            "",
            "ivan",
            "ivan@",
            "@example.com",
            "ivan@@example.com",
            "ivan@exa@mple.com",
            "ivan@example",
            "iv an@example.com",
            "ivan@example.com\n",
            "ivan\u{0}@example.com",
            long.as_str(),
        ] {
            let (s, b) = post(
                &c,
                &srv,
                "/api/register",
                json!({"username": "ivan", "password": PASSWORD, "email": bad}),
            )
            .await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "[{n}] {bad:?}: {b}");
            assert_eq!(err(&b), "email_invalid", "[{n}] {bad:?}");
        }
        let (s, b) =
            register_opaque_with(&c, &srv, "ivan", json!({"email": "not-an-address"})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "[{n}] {b}");
        assert_eq!(err(&b), "email_invalid");
        // `ivan` was never created.
        let (s, b) = post(
            &c,
            &srv,
            "/api/register",
            json!({"username": "ivan", "password": PASSWORD}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "[{n}] {b}");
        assert_eq!(b["status"], "active");

        srv.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_recovery_end_to_end_and_not_past_totp() {
    for db in backends().await {
        let Some(sink) = SmtpSink::start() else {
            return;
        };
        let srv = smtp_server(&db, &sink).await;
        let c = Client::new();
        let n = db.name;

        // --- Without TOTP the emailed code is enough.
        let to = "kate@example.com";
        let user = register_with_email(&c, &srv, "kate", to).await;
        let code = verification_code(&sink.wait_for(to, 1).await[0]);
        assert_eq!(verify(&c, &srv, "kate", &code).await.0, StatusCode::OK);
        let (s, session) = login(&c, &srv, "kate", PASSWORD).await;
        assert_eq!(s, StatusCode::OK, "[{n}] {session}");
        let old_token = session["token"].as_str().unwrap().to_owned();
        let old_session = session["session_token"].as_str().unwrap().to_owned();

        let (s, started) = post(&c, &srv, "/api/recover/start", json!({"username": "kate"})).await;
        assert_eq!(s, StatusCode::OK, "[{n}] {started}");
        let recovery_id = started["recovery_id"].as_str().unwrap().to_owned();
        let mails = sink.wait_for(to, 2).await;
        assert!(
            mails[1].contains("Subject: Your Sesame recovery code"),
            "{}",
            mails[1]
        );
        let code = recovery_code(&mails[1]);

        let (s, b) = post(
            &c,
            &srv,
            "/api/recover/finish",
            json!({"recovery_id": recovery_id, "email_code": wrong(&code),
                   "new_password": NEW_PASSWORD}),
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "[{n}] {b}");
        assert_eq!(err(&b), "recovery_failed");
        let (s, b) = post(
            &c,
            &srv,
            "/api/recover/finish",
            json!({"recovery_id": recovery_id, "email_code": code,
                   "new_password": NEW_PASSWORD}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "[{n}] {b}");
        assert!(
            b["backupCodes"].as_array().is_some_and(|a| a.len() >= 8),
            "{b}"
        );

        // Every old session is gone; only the new password works.
        let (s, _) = get_auth(&c, &srv, "/api/sessions", &old_token).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "[{n}] old access token");
        let (s, b) = refresh(&c, &srv, &old_session).await;
        assert!(s.is_client_error(), "[{n}] old session refresh: {s} {b}");
        let (s, b) = login(&c, &srv, "kate", PASSWORD).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "[{n}] old password: {b}");
        let (s, b) = login(&c, &srv, "kate", NEW_PASSWORD).await;
        assert_eq!(s, StatusCode::OK, "[{n}] new password: {b}");
        assert!(audit_of(&srv, user)
            .await
            .iter()
            .any(|a| a.event == "recovery.success"));

        // --- With TOTP on the account, the mailbox alone is not enough.
        let to = "liam@example.com";
        register_with_email(&c, &srv, "liam", to).await;
        let code = verification_code(&sink.wait_for(to, 1).await[0]);
        assert_eq!(verify(&c, &srv, "liam", &code).await.0, StatusCode::OK);
        let (s, session) = login(&c, &srv, "liam", PASSWORD).await;
        assert_eq!(s, StatusCode::OK, "[{n}] {session}");
        let token = session["token"].as_str().unwrap().to_owned();
        let (s, qr) = post_auth(&c, &srv, "/api/generate-qr", &token, json!({})).await;
        assert_eq!(s, StatusCode::OK, "[{n}] {qr}");
        let totp = TOTP::new(
            Algorithm::SHA1,
            6,
            1,
            30,
            Secret::Encoded(qr["secret"].as_str().unwrap().to_owned())
                .to_bytes()
                .unwrap(),
            None,
            String::new(),
        )
        .unwrap();
        let (s, b) = post_auth(
            &c,
            &srv,
            "/api/enable-authenticator",
            &token,
            json!({"totpCode": totp.generate(srv.sesame.now())}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "[{n}] {b}");

        let (s, started) = post(&c, &srv, "/api/recover/start", json!({"username": "liam"})).await;
        assert_eq!(s, StatusCode::OK, "[{n}] {started}");
        let recovery_id = started["recovery_id"].as_str().unwrap().to_owned();
        let code = recovery_code(&sink.wait_for(to, 2).await[1]);
        let (s, b) = post(
            &c,
            &srv,
            "/api/recover/finish",
            json!({"recovery_id": recovery_id, "email_code": code,
                   "new_password": NEW_PASSWORD}),
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "[{n}] email code alone: {b}");
        assert_eq!(err(&b), "recovery_failed");
        let (s, b) = login(&c, &srv, "liam", NEW_PASSWORD).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "[{n}] nothing changed: {b}");

        // The emailed code plus a TOTP code (a later step than the enrolment's) does it.
        srv.clock.advance(30);
        let (s, b) = post(
            &c,
            &srv,
            "/api/recover/finish",
            json!({"recovery_id": recovery_id, "email_code": code,
                   "totp_code": totp.generate(srv.sesame.now()),
                   "new_password": NEW_PASSWORD}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "[{n}] email + TOTP: {b}");

        srv.stop().await;
        drop(sink);
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_smtp_the_code_lands_in_the_outbox() {
    let db = TestDb::sqlite();
    let srv = TestServer::start(&db).await;
    let outbox = srv.config.data_dir.join("outbox");
    let described = srv.sesame.mail_description();
    assert!(
        described.contains("outbox") && described.contains(&outbox.display().to_string()),
        "{described}"
    );
    let c = Client::new();
    let to = "mona@example.com";
    let user = register_with_email(&c, &srv, "mona", to).await;
    let mails = wait_for_messages(&outbox, to, 1).await;
    assert!(mails[0].contains("Subject: Your Sesame verification code"));
    let code = verification_code(&mails[0]);
    let (s, b) = login(&c, &srv, "mona", PASSWORD).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    let (s, b) = verify(&c, &srv, "mona", &code).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(status_of(&srv, user).await, AccountStatus::Active);
    let (s, b) = login(&c, &srv, "mona", PASSWORD).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    srv.stop().await;
    db.cleanup().await;
}
