//! The client over HTTPS and WSS against the real server with built-in TLS (a self-signed
//! certificate, as `sesame serve --tls-self-signed` makes): trusted as a private CA, pinned
//! by its SHA-256, pinned on first use, and refused when the pin does not match or when
//! only the public roots are trusted.

mod real;

use real::{Server, PASSWORD};
use sesame_client::{Client, ClientPolicy, Error, LoginOutcome, TlsOptions};

struct Tls {
    server: Server,
    pem: String,
    sha256: [u8; 32],
    _dir: tempfile::TempDir,
}

async fn tls_server() -> Tls {
    let dir = tempfile::tempdir().unwrap();
    let ip = "127.0.0.1".parse().unwrap();
    let pair = sesame_server::tls::self_signed::load_or_create(dir.path(), ip).unwrap();
    let pem = std::fs::read_to_string(&pair.cert).unwrap();
    let key = sesame_server::tls::load_certified_key(&pair.cert, &pair.key).unwrap();
    let sha256 = {
        use sha2::Digest as _;
        sha2::Sha256::digest(key.cert[0].as_ref()).into()
    };
    let server = Server::start_with(|c| {
        c.tls_cert = Some(pair.cert.clone());
        c.tls_key = Some(pair.key.clone());
    })
    .await;
    assert!(server.base.starts_with("https://"));
    Tls {
        server,
        pem,
        sha256,
        _dir: dir,
    }
}

fn client(t: &Tls, tls: TlsOptions) -> Client {
    Client::with_tls(&t.server.base, ClientPolicy::default(), tls).unwrap()
}

async fn login_ws(c: &Client, user: &str) -> sesame_client::Login {
    match c.login_ws(user, PASSWORD).await.unwrap() {
        LoginOutcome::Session(login) => login,
        LoginOutcome::SecondFactor(_) => panic!("no second factor expected"),
    }
}

#[tokio::test]
async fn https_and_wss_login_with_a_private_ca_and_with_a_pinned_certificate() {
    let t = tls_server().await;

    // The certificate as a private CA: register over HTTPS, log in over HTTPS and WSS.
    let c = client(&t, TlsOptions::with_ca_pem(t.pem.as_bytes()).unwrap());
    let reg = c.register("tlsalice", PASSWORD).await.unwrap();
    let rest = match c.login("tlsalice", PASSWORD).await.unwrap() {
        LoginOutcome::Session(login) => login,
        LoginOutcome::SecondFactor(_) => panic!("no second factor expected"),
    };
    assert_eq!(rest.server_public_key, reg.server_public_key);
    let ws = login_ws(&c, "tlsalice").await;
    let me = c.me(&ws.session.access_token).await.unwrap();
    assert_eq!(me.username, "tlsalice");

    // Pinned by its SHA-256: the same, and the pin reports what it saw.
    let pinned = TlsOptions::pinned(Some(t.sha256)).unwrap();
    let c = client(&t, pinned.clone());
    let ws = login_ws(&c, "tlsalice").await;
    assert_eq!(ws.server_public_key, reg.server_public_key);
    assert_eq!(pinned.presented(), Some(t.sha256));

    // Nothing pinned: accepted, and the certificate is reported for pinning.
    let first = TlsOptions::pinned(None).unwrap();
    client(&t, first.clone()).health().await.unwrap();
    assert_eq!(first.presented(), Some(t.sha256));
    t.server.stop().await;
}

#[tokio::test]
async fn a_wrong_pin_or_the_public_roots_alone_refuse_the_certificate() {
    let t = tls_server().await;
    let wrong = TlsOptions::pinned(Some([7u8; 32])).unwrap();
    let c = client(&t, wrong.clone());
    assert!(matches!(c.health().await, Err(Error::Http(_))));
    assert!(matches!(
        c.login_ws("nobody", PASSWORD).await,
        Err(Error::WebSocket(_))
    ));
    // The pin saw the real certificate, for the caller's message.
    assert_eq!(wrong.presented(), Some(t.sha256));

    let public = client(&t, TlsOptions::web_pki().unwrap());
    assert!(matches!(public.health().await, Err(Error::Http(_))));
    // The default client (public roots) refuses it too.
    let default = Client::new(&t.server.base, ClientPolicy::default()).unwrap();
    assert!(default.health().await.is_err());

    assert!(matches!(
        TlsOptions::with_ca_pem(b"no certificate here"),
        Err(Error::Tls(_))
    ));
    t.server.stop().await;
}
