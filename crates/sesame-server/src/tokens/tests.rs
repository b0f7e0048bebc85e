use super::*;

fn signer() -> TokenSigner {
    TokenSigner::new(
        &SigningKey::from_bytes(&[7; 32]),
        "https://sesame.test",
        "sesame",
        900,
    )
}

#[test]
fn session_tokens_are_256_bit_and_hashed() {
    let (a, ha) = new_session_token(&Rng::os());
    let (b, _) = new_session_token(&Rng::os());
    assert_ne!(a, b);
    assert!(a.starts_with("sst_"));
    assert_eq!(b64::decode(&a[4..]).unwrap().len(), 32);
    assert_eq!(ha, hash_session_token(&a));
    assert_eq!(ha.len(), 32);
}

#[test]
fn access_tokens_verify_until_they_expire() {
    let s = signer();
    let (user, sid) = (Uuid::new_v4(), Uuid::new_v4());
    let (token, claims) = s
        .issue(user, sid, &["opaque".into()], 1000, &Rng::os())
        .unwrap();
    assert_eq!(claims.exp, 1900);
    assert_eq!(s.verify(&token, 1899).unwrap().sub, user.to_string());
    assert_eq!(s.verify(&token, 1900), Err(InvalidToken));
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(header.alg, Algorithm::EdDSA);
}

#[test]
fn foreign_or_tampered_tokens_are_refused() {
    let s = signer();
    let (token, _) = s
        .issue(Uuid::new_v4(), Uuid::new_v4(), &[], 1000, &Rng::os())
        .unwrap();
    let other = TokenSigner::new(
        &SigningKey::from_bytes(&[8; 32]),
        "https://sesame.test",
        "sesame",
        900,
    );
    assert_eq!(other.verify(&token, 1000), Err(InvalidToken));
    let wrong_aud = TokenSigner::new(
        &SigningKey::from_bytes(&[7; 32]),
        "https://sesame.test",
        "other",
        900,
    );
    assert_eq!(wrong_aud.verify(&token, 1000), Err(InvalidToken));
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[1] = b64::encode(br#"{"sub":"x"}"#);
    assert_eq!(s.verify(&parts.join("."), 1000), Err(InvalidToken));
    // alg=none is refused.
    let none = format!(
        "{}.{}.",
        b64::encode(br#"{"alg":"none","typ":"at+jwt"}"#),
        parts[1]
    );
    assert_eq!(s.verify(&none, 1000), Err(InvalidToken));
}

#[test]
fn ttl_is_capped_at_fifteen_minutes() {
    let s = TokenSigner::new(&SigningKey::from_bytes(&[7; 32]), "i", "a", 86_400);
    assert_eq!(s.ttl(), 900);
}
