// Test keys straight from the operating system, outside the service.
#![allow(clippy::disallowed_types)]
use super::*;
use rand_core::OsRng;
use serde_json::json;

#[test]
fn base64_accepts_both_alphabets_with_or_without_padding() {
    let bytes = [0xfb, 0xff, 0xfe, 0x01];
    for text in ["+//+AQ==", "+//+AQ", "-__-AQ==", "-__-AQ", " +//+AQ==\n"] {
        assert_eq!(decode_base64(text).as_deref(), Some(&bytes[..]), "{text}");
    }
    for text in ["+/_-AQ==", "not base64!", "+//+\nAQ=="] {
        assert_eq!(decode_base64(text), None, "{text}");
    }
}

#[test]
fn low_order_client_keys_are_refused() {
    let mut one = [0u8; 32];
    one[0] = 1;
    for key in [[0u8; 32], one] {
        let err = client_key(&STANDARD.encode(key)).unwrap_err();
        assert_eq!(err.code, InputError::EnvelopeMissingClientKey.into());
    }
    let real = SecretKey::generate(&mut OsRng).public_key();
    assert_eq!(client_key(&STANDARD.encode(real.as_bytes())).unwrap(), real);
}

#[test]
fn only_single_key_objects_are_envelopes() {
    assert_eq!(
        envelope_of(br#"{"encryptedData":"abc"}"#)
            .unwrap()
            .as_deref(),
        Some("abc")
    );
    assert_eq!(
        envelope_of(br#"{"encryptedData":"abc","x":1}"#).unwrap(),
        None
    );
    assert_eq!(
        envelope_of(br#"{"username":"a","password":"b"}"#).unwrap(),
        None
    );
    assert_eq!(envelope_of(b"[1,2]").unwrap(), None);
    assert_eq!(envelope_of(b"not json").unwrap(), None);
    let err = envelope_of(br#"{"encryptedData":42}"#).unwrap_err();
    assert_eq!(err.code, InputError::EnvelopeInvalid.into());
}

#[test]
fn open_round_trips_and_strips_the_client_key() {
    let server = SecretKey::generate(&mut OsRng);
    let client = SecretKey::generate(&mut OsRng).public_key();
    let plain = json!({
        "username": "alice",
        "password": "pw",
        "clientPublicKey": STANDARD.encode(client.as_bytes()),
    });
    let sealed = server
        .public_key()
        .seal(&mut OsRng, plain.to_string().as_bytes())
        .unwrap();
    let (inner, key) = open(&server, &STANDARD.encode(sealed)).unwrap();
    assert_eq!(key, client);
    let inner: Value = serde_json::from_slice(&inner).unwrap();
    assert_eq!(inner, json!({"username": "alice", "password": "pw"}));
}
