//! The protocol messages (JSON with strict base64url fields): whatever the bytes, decoding
//! never panics, and a decoded message re-encodes to JSON that decodes to the same value.
#![no_main]
#![forbid(unsafe_code)]

use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sesame_proto::b64;
use sesame_proto::messages::{
    LoginAck, LoginChallenge, LoginConfirmation, LoginFinish, LoginStart, RegistrationChallenge,
    RegistrationFinish, RegistrationStart,
};

fn round_trip<T: DeserializeOwned + Serialize>(data: &[u8]) {
    if let Ok(v) = serde_json::from_slice::<T>(data) {
        let once = serde_json::to_string(&v).expect("a decoded message encodes");
        let again: T = serde_json::from_str(&once).expect("its encoding decodes");
        assert_eq!(serde_json::to_string(&again).unwrap(), once);
    }
}

fuzz_target!(|data: &[u8]| {
    round_trip::<RegistrationStart>(data);
    round_trip::<RegistrationChallenge>(data);
    round_trip::<RegistrationFinish>(data);
    round_trip::<LoginStart>(data);
    round_trip::<LoginChallenge>(data);
    round_trip::<LoginFinish>(data);
    round_trip::<LoginConfirmation>(data);
    round_trip::<LoginAck>(data);
    // Strict base64url: every accepted text is the one encoding of its bytes.
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(bytes) = b64::decode(text) {
            assert_eq!(b64::encode(&bytes), text);
        }
    }
});
