//! Built-in TLS, with real handshakes on loopback: HTTPS with HSTS and `https://` discovery,
//! the plain listener that only redirects, the TCP line protocol over TLS (its password
//! verbs allowed there without `tcp_allow_password`), certificate reload while a WSS
//! connection stays open, a corrupt new certificate keeping the old one, and the
//! self-signed development certificate kept across restarts.

mod common;

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio_tungstenite::tungstenite::Message;

use common::api::{rng, username, PASSWORD};
use common::server::TestServer;
use common::tls::{connect, peer_sha256, pem_sha256, replace, write_pair, TestCa};
use common::TestDb;

/// A server on `db` serving a certificate of `ca` from files polled every second.
async fn tls_server(
    db: &TestDb,
    ca: &TestCa,
    dir: &std::path::Path,
    tweak: impl FnOnce(&mut sesame_server::config::Config),
) -> (TestServer, (String, String)) {
    let pair = ca.leaf();
    let (cert, key) = write_pair(dir, "server", &pair);
    let srv = TestServer::start_with(db, |c| {
        c.tls_cert = Some(cert);
        c.tls_key = Some(key);
        c.tls_reload_interval_secs = 1;
        tweak(c);
    })
    .await;
    (srv, pair)
}

fn https_client(ca: &TestCa) -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls((*ca.client_config()).clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn http_addr(srv: &TestServer) -> std::net::SocketAddr {
    srv.base
        .trim_start_matches("https://")
        .parse()
        .expect("https base")
}

#[tokio::test]
async fn https_answers_with_hsts_and_https_discovery_and_plain_http_is_redirected() {
    let db = TestDb::sqlite();
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    // A free port for the redirect listener.
    let redirect = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let redirect_addr = redirect.local_addr().unwrap();
    drop(redirect);
    let (srv, _) = tls_server(&db, &ca, dir.path(), |c| {
        c.http_redirect_listen = Some(redirect_addr);
    })
    .await;
    assert!(srv.base.starts_with("https://"), "{}", srv.base);
    assert!(srv.sesame.served_over_tls());

    let c = https_client(&ca);
    let answer = c.get(srv.url("/.well-known/sesame")).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    let info: Value = answer.json().await.unwrap();
    assert_eq!(info["issuer"], format!("https://{}", srv.config.listen));

    // Over TLS the browser app's cookie is Secure, with the __Host- prefix (docs/web.md §3).
    let name = username("tlsweb");
    common::api::register(&c, &srv, &name).await;
    let (_, session) = common::api::tokens(&c, &srv, &name, PASSWORD).await;
    let answer = c
        .post(srv.url("/web/session"))
        .header("sec-fetch-site", "same-origin")
        .json(&json!({ "session_token": session }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let cookie = answer.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("__Host-sesame_session="), "{cookie}");
    assert!(
        cookie.contains("; Secure") && cookie.contains("; HttpOnly"),
        "{cookie}"
    );

    // Plain HTTP on the TLS port is not served.
    let plain = reqwest::Client::new()
        .get(format!("http://{}/healthz", http_addr(&srv)))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP on the TLS listener: {plain:?}");

    // The redirect listener answers 308 to the same path and query over HTTPS.
    let answer = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("http://{redirect_addr}/api/login?x=1"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 308);
    let location = answer.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(location, format!("{}/api/login?x=1", srv.base));
    srv.stop().await;
}

/// Sends one line over the TLS TCP connection and reads the answer.
async fn tcp_call<S>(stream: &mut BufReader<S>, line: &str) -> String
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    stream
        .get_mut()
        .write_all(format!("{line}\n").as_bytes())
        .await
        .unwrap();
    let mut answer = String::new();
    let read = stream.read_line(&mut answer);
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("an answer in time")
        .unwrap();
    answer.trim_end().to_owned()
}

#[tokio::test]
async fn tcp_line_protocol_over_tls_accepts_the_password_verbs() {
    let db = TestDb::sqlite();
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    // `tcp_allow_password` unset: allowed because the listener speaks TLS.
    let (srv, pair) = tls_server(&db, &ca, dir.path(), |c| c.tcp_allow_password = None).await;
    let tls = connect(srv.tcp, ca.client_config()).await.unwrap();
    assert_eq!(peer_sha256(&tls), pem_sha256(&pair.0));
    let mut tls = BufReader::new(tls);
    assert_eq!(tcp_call(&mut tls, "PING").await, "PONG");
    let user = username("tcptls");
    let answer = tcp_call(&mut tls, &format!("REGISTER|{user}|{PASSWORD}")).await;
    assert!(answer.starts_with("REGISTER|SUCCESS|"), "{answer}");
    let answer = tcp_call(&mut tls, &format!("AUTH|{user}|{PASSWORD}")).await;
    assert!(answer.starts_with("AUTH|SUCCESS|"), "{answer}");

    // A plain-text client gets no line protocol from the TLS listener.
    let mut plain = tokio::net::TcpStream::connect(srv.tcp).await.unwrap();
    plain.write_all(b"PING\n").await.unwrap();
    let mut buf = Vec::new();
    let read = tokio::io::AsyncReadExt::read_to_end(&mut plain, &mut buf);
    let _ = tokio::time::timeout(Duration::from_secs(15), read).await;
    assert!(!String::from_utf8_lossy(&buf).contains("PONG"));
    srv.stop().await;

    // Over TLS but `tcp_allow_password = false`: refused.
    let (srv, _) = tls_server(&db, &ca, dir.path(), |c| c.tcp_allow_password = Some(false)).await;
    let mut tls = BufReader::new(connect(srv.tcp, ca.client_config()).await.unwrap());
    let answer = tcp_call(&mut tls, &format!("AUTH|{user}|{PASSWORD}")).await;
    assert!(answer.contains("password_verbs_disabled"), "{answer}");
    srv.stop().await;

    // Without TLS and unset: refused.
    let srv = TestServer::start_with(&db, |c| c.tcp_allow_password = None).await;
    let mut plain = BufReader::new(tokio::net::TcpStream::connect(srv.tcp).await.unwrap());
    let answer = tcp_call(&mut plain, &format!("AUTH|{user}|{PASSWORD}")).await;
    assert!(answer.contains("password_verbs_disabled"), "{answer}");
    srv.stop().await;
}

/// Connects until the server presents the certificate `want` (bounded: 15 s).
async fn wait_for_certificate(srv: &TestServer, ca: &TestCa, want: [u8; 32]) {
    for _ in 0..150 {
        let tls = connect(http_addr(srv), ca.client_config()).await.unwrap();
        if peer_sha256(&tls) == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the server never presented the new certificate");
}

#[tokio::test]
async fn reload_keeps_an_open_websocket_and_new_connections_get_the_new_certificate() {
    let db = TestDb::sqlite();
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let (srv, old) = tls_server(&db, &ca, dir.path(), |_| {}).await;
    let user = username("reload");
    common::api::register(&https_client(&ca), &srv, &user).await;

    // A WSS connection opened on the old certificate.
    let tls = connect(http_addr(&srv), ca.client_config()).await.unwrap();
    assert_eq!(peer_sha256(&tls), pem_sha256(&old.0));
    let url = format!("wss://{}/auth/login", http_addr(&srv));
    let (mut ws, _) = tokio_tungstenite::client_async(url, tls).await.unwrap();
    ws.send(Message::Ping(b"before".to_vec().into()))
        .await
        .unwrap();
    assert_eq!(next_pong(&mut ws).await, b"before");

    // New files: new connections get the new certificate.
    let new = ca.leaf();
    replace(&dir.path().join("server.key"), &new.1);
    replace(&dir.path().join("server.crt"), &new.0);
    wait_for_certificate(&srv, &ca, pem_sha256(&new.0)).await;

    // The old connection still works, and carries a real login step.
    assert_eq!(peer_sha256(ws.get_ref()), pem_sha256(&old.0));
    let (_, start) = sesame_proto::client::start_login(&mut rng(), &user, PASSWORD).unwrap();
    let mut frame = serde_json::to_value(&start).unwrap();
    frame["type"] = json!("login_start");
    ws.send(Message::text(frame.to_string())).await.unwrap();
    let challenge = next_json(&mut ws).await;
    assert_eq!(challenge["type"], "login_challenge", "{challenge}");
    srv.stop().await;
}

#[tokio::test]
async fn a_corrupt_new_certificate_keeps_the_old_one() {
    let db = TestDb::sqlite();
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let (srv, old) = tls_server(&db, &ca, dir.path(), |_| {}).await;
    // Serving (the certificate is loaded when the server task starts).
    wait_for_certificate(&srv, &ca, pem_sha256(&old.0)).await;
    let cert = dir.path().join("server.crt");
    replace(&cert, "-----BEGIN CERTIFICATE-----\nnot base64 at all\n");
    // Three poll intervals: every handshake still gets the old certificate.
    for _ in 0..30 {
        let tls = connect(http_addr(&srv), ca.client_config()).await.unwrap();
        assert_eq!(peer_sha256(&tls), pem_sha256(&old.0));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A certificate that does not match the key is refused too.
    let other = ca.leaf();
    replace(&cert, &other.0);
    for _ in 0..30 {
        let tls = connect(http_addr(&srv), ca.client_config()).await.unwrap();
        assert_eq!(peer_sha256(&tls), pem_sha256(&old.0));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The watcher is alive: a good pair is picked up.
    replace(&dir.path().join("server.key"), &other.1);
    wait_for_certificate(&srv, &ca, pem_sha256(&other.0)).await;
    srv.stop().await;
}

#[tokio::test]
async fn the_self_signed_certificate_is_kept_private_and_reused() {
    let data = tempfile::tempdir().unwrap();
    let ip = "127.0.0.1".parse().unwrap();
    let first = sesame_server::tls::self_signed::load_or_create(data.path(), ip).unwrap();
    assert!(first.created);
    let again = sesame_server::tls::self_signed::load_or_create(data.path(), ip).unwrap();
    assert!(!again.created);
    assert_eq!(first.cert, again.cert);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&first.key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "key mode {mode:o}");
    }
    // It loads, and its fingerprint is what `openssl x509 -fingerprint -sha256` prints.
    let key = sesame_server::tls::load_certified_key(&first.cert, &first.key).unwrap();
    let pem = std::fs::read_to_string(&first.cert).unwrap();
    assert_eq!(
        key.cert[0].as_ref(),
        {
            use rustls::pki_types::pem::PemObject as _;
            rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
        }
        .as_ref()
    );
    let fp = sesame_server::tls::certificate_fingerprint(&key.cert[0]);
    assert_eq!(fp.len(), 32 * 3 - 1);

    // A config naming a missing or bad file is refused with the file's name.
    let bad = data.path().join("bad.crt");
    std::fs::write(&bad, "garbage").unwrap();
    let err = sesame_server::tls::load_certified_key(&bad, &first.key).unwrap_err();
    assert!(err.to_string().contains("bad.crt"), "{err}");
}

type Wss =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

async fn next_message(ws: &mut Wss) -> Message {
    tokio::time::timeout(Duration::from_secs(30), ws.next())
        .await
        .expect("a frame in time")
        .expect("the socket is open")
        .expect("a frame")
}

async fn next_pong(ws: &mut Wss) -> Vec<u8> {
    match next_message(ws).await {
        Message::Pong(data) => data.to_vec(),
        other => panic!("expected a pong, got {other:?}"),
    }
}

async fn next_json(ws: &mut Wss) -> Value {
    match next_message(ws).await {
        Message::Text(text) => serde_json::from_str(&text).unwrap(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}
