//! Sealed request envelopes (`{"encryptedData": …}`, libsodium `crypto_box_seal`): opening
//! any body never panics; a body that opens yields a JSON object without the client key.
#![no_main]
#![forbid(unsafe_code)]

use crypto_box::SecretKey;
use libfuzzer_sys::fuzz_target;
use sesame_server::envelope::{open_body, CLIENT_KEY_FIELD};

fuzz_target!(|data: &[u8]| {
    let server = SecretKey::from_bytes([9u8; 32]);
    if let Ok(Some((inner, _client))) = open_body(&server, data) {
        let v: serde_json::Value = serde_json::from_slice(&inner).expect("inner body is JSON");
        assert!(v.is_object());
        assert!(v.get(CLIENT_KEY_FIELD).is_none());
    }
    // The same bytes as the base64 of a sealed box.
    let body = serde_json::json!({ "encryptedData": String::from_utf8_lossy(data) });
    let _ = open_body(&server, body.to_string().as_bytes());
});
