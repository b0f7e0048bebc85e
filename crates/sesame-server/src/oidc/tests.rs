//! Unit tests of the provider's pure parts; the flows are in `tests/oidc.rs`.

use super::token::pkce_ok;
use super::{params, IdTokenAlg};

#[test]
fn pkce_s256_is_base64url_of_sha256_of_the_verifier() {
    let verifier = "dBjftJeZ4CVP-mJ92K1mMmexlCqIZ8M8G6JmXnr9G9U";
    let challenge = "htz_ueQIeLyw3V5nsUE_hmGjDJhGs7hKFm5AkV9hO34";
    assert!(pkce_ok(Some(challenge), Some(verifier)));
    let wrong = "dBjftJeZ4CVP-mJ92K1mMmexlCqIZ8M8G6JmXnr9G9V";
    assert!(!pkce_ok(Some(challenge), Some(wrong)));
    assert!(!pkce_ok(Some(challenge), None));
    assert!(!pkce_ok(None, Some(verifier)));
    assert!(!pkce_ok(Some(challenge), Some("short")));
    assert!(pkce_ok(None, None));
}

#[test]
fn repeated_parameters_are_refused_and_empty_ones_ignored() {
    assert!(params(b"a=1&a=2").is_err());
    let p = params(b"a=1&b=&c=x%20y").unwrap();
    assert_eq!(
        p,
        vec![("a".into(), "1".into()), ("c".into(), "x y".into())]
    );
}

#[test]
fn id_token_algorithms_parse() {
    assert_eq!(IdTokenAlg::parse("rs256"), Some(IdTokenAlg::RS256));
    assert_eq!(IdTokenAlg::parse("EdDSA"), Some(IdTokenAlg::EdDSA));
    assert_eq!(IdTokenAlg::parse("HS256"), None);
    assert_eq!(IdTokenAlg::default(), IdTokenAlg::RS256);
}
