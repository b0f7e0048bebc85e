//! Relay frames (`/ws` JSON, shared by client and server): decoding never panics, decoded
//! frames round-trip, and checking a decoded message's id and signature never panics.
#![no_main]
#![forbid(unsafe_code)]

use libfuzzer_sys::fuzz_target;
use sesame_proto::e2e::{self, ClientFrame, IdentityKeys, ServerFrame};

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = serde_json::from_slice::<ClientFrame>(data) {
        let text = serde_json::to_string(&frame).unwrap();
        assert_eq!(serde_json::from_str::<ClientFrame>(&text).unwrap(), frame);
        if let ClientFrame::Send { to, message } = &frame {
            let _ = e2e::validate_message_id(&message.id);
            // A fixed identity: the signature check and the opening run on attacker-chosen
            // bytes (neither may succeed on a forgery, and neither may panic).
            if let Ok(keys) = IdentityKeys::from_bytes(&[7u8; e2e::IDENTITY_SECRET_LEN]) {
                let public = keys.public();
                let _ = e2e::verify_message("alice", to, message, &public);
                let _ = e2e::open(&keys, "alice", to, message, &public);
            }
        }
    }
    if let Ok(frame) = serde_json::from_slice::<ServerFrame>(data) {
        let text = serde_json::to_string(&frame).unwrap();
        assert_eq!(serde_json::from_str::<ServerFrame>(&text).unwrap(), frame);
    }
});
