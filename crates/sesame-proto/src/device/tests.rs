use super::*;
use rand_chacha::rand_core::SeedableRng as _;
use rand_chacha::ChaCha20Rng;

#[test]
fn layout_is_length_prefixed() {
    let bytes = device_login_bytes("id", b"k");
    let mut want = Vec::new();
    want.extend_from_slice(&22u32.to_be_bytes());
    want.extend_from_slice(b"sesame/v1/device-login");
    want.extend_from_slice(&2u32.to_be_bytes());
    want.extend_from_slice(b"id");
    want.extend_from_slice(&1u32.to_be_bytes());
    want.extend_from_slice(b"k");
    assert_eq!(bytes, want);
}

#[test]
fn signatures_bind_login_and_challenge() {
    let key = SigningKey::generate(&mut ChaCha20Rng::seed_from_u64(7));
    let pk = key.verifying_key().to_bytes();
    let sig = sign_device_login(&key, "login", &[1, 2, 3]);
    assert!(verify_device_login(&pk, "login", &[1, 2, 3], &sig));
    assert!(!verify_device_login(&pk, "login2", &[1, 2, 3], &sig));
    assert!(!verify_device_login(&pk, "login", &[1, 2, 4], &sig));
    assert!(!verify_device_login(&pk, "login", &[1, 2, 3], &sig[..63]));
    let other = SigningKey::generate(&mut ChaCha20Rng::seed_from_u64(8));
    let other_pk = other.verifying_key().to_bytes();
    assert!(!verify_device_login(&other_pk, "login", &[1, 2, 3], &sig));
    // The identity point is of small order: refused as a key.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert!(!is_valid_device_key(&identity));
    assert!(!verify_device_login(&identity, "login", &[1, 2, 3], &sig));
    assert!(is_valid_device_key(&pk));
    assert!(!is_valid_device_key(&pk[..31]));
}
