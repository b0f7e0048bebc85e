use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand_core::SeedableRng as _;
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::pkcs1v15::SigningKey;
use rsa::signature::{SignatureEncoding as _, Signer as _};
use rsa::traits::PublicKeyParts as _;
use serde_json::{json, Value};

fn key(bits: usize, seed: u64) -> rsa::RsaPrivateKey {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    rsa::RsaPrivateKey::new(&mut rng, bits).expect("key")
}

fn der(k: &rsa::RsaPrivateKey) -> Vec<u8> {
    k.to_pkcs1_der().expect("der").as_bytes().to_vec()
}

#[test]
fn rs256_tokens_are_signed_by_ring_and_verify() {
    assert!(super::install());
    assert!(super::install(), "installing twice is not an error");
    let k = key(2048, 7);
    let claims = json!({"sub": "someone", "exp": 4_000_000_000u64});
    let token = encode(
        &Header::new(Algorithm::RS256),
        &claims,
        &EncodingKey::from_rsa_der(&der(&k)),
    )
    .expect("signed");

    // PKCS #1 v1.5 signatures are deterministic: ring's must equal the reference one.
    let (signing_input, sig) = token.rsplit_once('.').expect("three parts");
    let reference = SigningKey::<sha2::Sha256>::new(k.clone()).sign(signing_input.as_bytes());
    assert_eq!(sesame_proto::b64::encode(reference.to_bytes()), sig);

    let n = sesame_proto::b64::encode(k.n().to_bytes_be());
    let e = sesame_proto::b64::encode(k.e().to_bytes_be());
    let public = DecodingKey::from_rsa_components(&n, &e).expect("public key");
    let got = decode::<Value>(&token, &public, &Validation::new(Algorithm::RS256)).expect("valid");
    assert_eq!(got.claims, claims);
}

#[test]
fn rs256_signing_goes_through_ring() {
    assert!(super::install());
    // ring refuses to sign with keys under 2048 bits; the `rsa` crate would sign. A refusal
    // shows which one signs.
    let weak = EncodingKey::from_rsa_der(&der(&key(1024, 8)));
    let refused = encode(&Header::new(Algorithm::RS256), &json!({"sub": "x"}), &weak);
    assert!(refused.is_err(), "a 1024-bit key must be refused");
}

#[test]
fn other_algorithms_still_sign() {
    assert!(super::install());
    let secret = EncodingKey::from_secret(b"a shared secret of enough length!");
    let token = encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": "x"}),
        &secret,
    );
    assert!(token.is_ok_and(|t| t.split('.').count() == 3));
}

#[test]
fn eddsa_tokens_match_the_reference_signer_for_each_key() {
    use ed25519_dalek::pkcs8::EncodePrivateKey as _;
    assert!(super::install());
    let claims = json!({"sub": "someone", "exp": 4_000_000_000u64});
    let mut tokens = Vec::new();
    for seed in [[1u8; 32], [2u8; 32], [1u8; 32]] {
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        let der = key.to_pkcs8_der().expect("der");
        let token = encode(
            &Header::new(Algorithm::EdDSA),
            &claims,
            &EncodingKey::from_ed_der(der.as_bytes()),
        )
        .expect("signed");
        // Ed25519 signatures are deterministic: the cached key must sign like a fresh one.
        let (input, sig) = token.rsplit_once('.').expect("three parts");
        let reference = ed25519_dalek::Signer::sign(&key, input.as_bytes());
        assert_eq!(sesame_proto::b64::encode(reference.to_bytes()), sig);
        let public = DecodingKey::from_ed_der(key.verifying_key().as_bytes());
        decode::<Value>(&token, &public, &Validation::new(Algorithm::EdDSA)).expect("valid");
        tokens.push(token);
    }
    assert_ne!(
        tokens[0], tokens[1],
        "each key signs with itself, not a cached other"
    );
    assert_eq!(tokens[0], tokens[2]);
}
