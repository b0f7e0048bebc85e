//! Access-token (JWT) verification on the authentication path: any text is refused or
//! accepted without panicking, and nothing but the server's own tokens is accepted.
#![no_main]
#![forbid(unsafe_code)]

use ed25519_dalek::SigningKey;
use libfuzzer_sys::fuzz_target;
use sesame_server::tokens::TokenSigner;

const NOW: u64 = 1_760_000_000;

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let signer = TokenSigner::new(
        &SigningKey::from_bytes(&[5u8; 32]),
        "https://sesame.test",
        "sesame",
        900,
    );
    // The fuzzer cannot forge an Ed25519 signature: acceptance would be a bug.
    assert!(signer.verify(token, NOW).is_err(), "accepted {token:?}");
});
