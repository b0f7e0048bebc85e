use super::*;

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap()
}

#[test]
fn server_urls_are_normalised_to_a_base_and_an_id() {
    let base = parse_server_url("http://127.0.0.1:7878").unwrap();
    assert_eq!(base.as_str(), "http://127.0.0.1:7878/");
    assert_eq!(
        server_id("http://127.0.0.1:7878/").unwrap(),
        "http://127.0.0.1:7878"
    );
    assert_eq!(
        server_id("https://Example.COM:443/sesame?x=1#y").unwrap(),
        "https://example.com/sesame"
    );
    let c = Client::new("https://example.com/sesame", ClientPolicy::default()).unwrap();
    assert_eq!(
        c.url("api/login/start").unwrap().as_str(),
        "https://example.com/sesame/api/login/start"
    );
    assert_eq!(
        c.url(".well-known/sesame").unwrap().as_str(),
        "https://example.com/sesame/.well-known/sesame"
    );
}

#[test]
fn bad_server_urls_are_refused() {
    for url in [
        "ftp://x",
        "not a url",
        "ws://127.0.0.1:1",
        "http://u:p@host/",
    ] {
        assert!(
            matches!(parse_server_url(url), Err(Error::InvalidUrl { .. })),
            "{url}"
        );
    }
}

#[test]
fn pin_mismatch_names_both_fingerprints() {
    let pinned = [1u8; 32];
    let policy = ClientPolicy {
        pinned_server_key: Some(pinned),
        ..ClientPolicy::default()
    };
    let c = Client::new("http://127.0.0.1:7878", policy).unwrap();
    assert!(c.check_pin(&Bytes(pinned.to_vec())).is_ok());
    match c.check_pin(&Bytes(vec![2u8; 32])) {
        Err(Error::ServerKeyMismatch {
            server,
            pinned: p,
            presented,
        }) => {
            assert_eq!(server, "http://127.0.0.1:7878");
            assert_eq!(p, sesame_proto::fingerprint(&[1u8; 32]));
            assert_eq!(presented, sesame_proto::fingerprint(&[2u8; 32]));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn password_bodies_serialise_as_the_api_expects() {
    assert_eq!(
        to_json(&password_body("alice", "pw")),
        r#"{"username":"alice","password":"pw"}"#
    );
    assert_eq!(
        to_json(&RefreshRequest {
            session_token: "t".into()
        }),
        r#"{"session_token":"t"}"#
    );
}

#[tokio::test]
async fn policy_errors_are_returned_before_contacting_the_server() {
    // Port 9 (discard) on loopback: nothing may be sent, so nothing must listen.
    let c = Client::new("http://127.0.0.1:9", ClientPolicy::default()).unwrap();
    assert!(matches!(
        c.register("a", "correct horse battery staple").await,
        Err(Error::Username(_))
    ));
    assert!(matches!(
        c.register("alice", "short").await,
        Err(Error::Password(_))
    ));
    assert!(matches!(
        c.register_with_password("alice", "password").await,
        Err(Error::Password(_))
    ));
}
