use rand_chacha::rand_core::SeedableRng as _;
use rand_chacha::ChaCha20Rng;

use hkdf::Hkdf;
use sha2::Sha512;

use super::*;

const T: u64 = 1_767_225_600_000;

fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

fn pair() -> (IdentityKeys, IdentityKeys) {
    (
        IdentityKeys::generate(&mut rng(1)),
        IdentityKeys::generate(&mut rng(2)),
    )
}

fn sealed(alice: &IdentityKeys, bob: &IdentityKeys, text: &[u8]) -> SealedMessage {
    let mut r = rng(9);
    let id = new_message_id(&mut r);
    seal(&mut r, alice, "alice", "bob", &bob.public(), &id, T, text).unwrap()
}

#[test]
fn identities_round_trip_and_verify() {
    let (alice, _) = pair();
    let bytes = alice.to_bytes();
    let again = IdentityKeys::from_bytes(&bytes[..]).unwrap();
    assert_eq!(alice.public(), again.public());
    assert!(alice.matches(&again.public()));
    alice.public().verify().unwrap();
    assert_eq!(
        IdentityKeys::from_bytes(&bytes[..63]).unwrap_err(),
        E2eError::InvalidKey
    );
    // The layout is seed || secret, in generation order.
    let mut raw = [0u8; 64];
    rng(1).fill_bytes(&mut raw);
    assert_eq!(&raw[..], &bytes[..]);
    assert!(!format!("{alice:?}").contains(&b64::encode(&bytes[..32])));
}

#[test]
fn the_encryption_key_must_be_signed_by_the_signing_key() {
    let (alice, bob) = pair();
    let mut p = alice.public();
    p.encryption_key = bob.public().encryption_key;
    assert_eq!(p.verify(), Err(E2eError::InvalidKey));
    let mut p = alice.public();
    p.encryption_key_signature[0] ^= 1;
    assert_eq!(p.verify(), Err(E2eError::InvalidKey));
    let mut p = alice.public();
    p.signing_key = bob.public().signing_key;
    assert_eq!(p.verify(), Err(E2eError::InvalidKey));
}

#[test]
fn low_order_keys_are_refused() {
    // The identity point (small order) as the signing key.
    let mut p = pair().0.public();
    p.signing_key = [0; 32];
    p.signing_key[0] = 1;
    assert_eq!(p.verify(), Err(E2eError::InvalidKey));
    // An all-zero (low-order) encryption key, correctly signed.
    let signer = SigningKey::from_bytes(&[7; 32]);
    let enc = [0u8; 32];
    let p = PublicIdentity {
        signing_key: signer.verifying_key().to_bytes(),
        encryption_key: enc,
        encryption_key_signature: signer.sign(&identity_signing_bytes(&enc)).to_bytes(),
    };
    assert_eq!(p.verify(), Err(E2eError::InvalidKey));
}

#[test]
fn public_identities_are_base64url_json() {
    let p = pair().0.public();
    let json = serde_json::to_value(&p).unwrap();
    let obj = json.as_object().unwrap();
    assert_eq!(obj.len(), 3);
    assert_eq!(json["signing_key"], b64::encode(p.signing_key));
    assert_eq!(json["encryption_key"], b64::encode(p.encryption_key));
    assert_eq!(
        json["encryption_key_signature"],
        b64::encode(p.encryption_key_signature)
    );
    let back: PublicIdentity = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(back, p);
    let mut short = json;
    short["signing_key"] = b64::encode([1u8; 31]).into();
    assert!(serde_json::from_value::<PublicIdentity>(short).is_err());
}

#[test]
fn messages_open_for_the_recipient_only() {
    let (alice, bob) = pair();
    let msg = sealed(&alice, &bob, b"hello bob");
    assert_eq!(msg.ciphertext.0.len(), 9 + SEAL_OVERHEAD);
    assert_eq!(msg.signature.0.len(), SIGNATURE_LEN);
    let text = open(&bob, "alice", "bob", &msg, &alice.public()).unwrap();
    assert_eq!(&text[..], b"hello bob");
    // Alice cannot open what she sent: a sealed box is for the recipient's key only.
    let carol = IdentityKeys::generate(&mut rng(3));
    assert_eq!(
        open(&carol, "alice", "bob", &msg, &alice.public()),
        Err(E2eError::DecryptFailed)
    );
}

#[test]
fn every_signed_field_is_covered() {
    let (alice, bob) = pair();
    let msg = sealed(&alice, &bob, b"hello");
    let ap = alice.public();
    let bad = |from: &str, to: &str, m: &SealedMessage| open(&bob, from, to, m, &ap).unwrap_err();
    assert_eq!(bad("mallory", "bob", &msg), E2eError::BadSignature);
    assert_eq!(bad("alice", "carol", &msg), E2eError::BadSignature);
    let mut m = msg.clone();
    m.id = "other-id".into();
    assert_eq!(bad("alice", "bob", &m), E2eError::BadSignature);
    let mut m = msg.clone();
    m.sent_at += 1;
    assert_eq!(bad("alice", "bob", &m), E2eError::BadSignature);
    let mut m = msg.clone();
    let last = m.ciphertext.0.len() - 1;
    m.ciphertext.0[last] ^= 1;
    assert_eq!(bad("alice", "bob", &m), E2eError::BadSignature);
    let mut m = msg.clone();
    m.signature.0[0] ^= 1;
    assert_eq!(bad("alice", "bob", &m), E2eError::BadSignature);
    let mut m = msg.clone();
    m.signature.0.pop();
    assert_eq!(bad("alice", "bob", &m), E2eError::BadSignature);
    // Signed by someone else's key.
    assert_eq!(
        open(&bob, "alice", "bob", &msg, &bob.public()).unwrap_err(),
        E2eError::BadSignature
    );
}

#[test]
fn a_validly_signed_but_broken_box_fails_to_decrypt() {
    let (alice, bob) = pair();
    let mut ct = sealed(&alice, &bob, b"hello").ciphertext.0;
    ct[40] ^= 0x80;
    let sig = alice.sign(&signing_bytes("alice", "bob", "x", T, &ct));
    let m = SealedMessage {
        id: "x".into(),
        sent_at: T,
        ciphertext: Bytes(ct),
        signature: Bytes(sig.to_vec()),
    };
    assert_eq!(
        open(&bob, "alice", "bob", &m, &alice.public()),
        Err(E2eError::DecryptFailed)
    );
}

#[test]
fn seal_checks_the_recipient_and_the_id() {
    let (alice, bob) = pair();
    let mut p = bob.public();
    p.encryption_key_signature[5] ^= 1;
    let r = seal(&mut rng(4), &alice, "alice", "bob", &p, "id", T, b"x");
    assert_eq!(r.unwrap_err(), E2eError::InvalidKey);
    for id in ["", "has space", "é", &"a".repeat(65)] {
        let r = seal(
            &mut rng(4),
            &alice,
            "alice",
            "bob",
            &bob.public(),
            id,
            T,
            b"x",
        );
        assert_eq!(r.unwrap_err(), E2eError::InvalidMessage("id"), "{id:?}");
    }
    validate_message_id(&"a".repeat(64)).unwrap();
    validate_message_id("01ARZ3NDEKTSV4RRFFQ69G5FAV").unwrap();
}

#[test]
fn message_ids_are_uuid_v4() {
    let id = new_message_id(&mut rng(5));
    assert_eq!(id.len(), 36);
    let parts: Vec<_> = id.split('-').map(str::len).collect();
    assert_eq!(parts, [8, 4, 4, 4, 12]);
    assert_eq!(&id[14..15], "4");
    assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"));
    assert_ne!(id, new_message_id(&mut rng(6)));
}

#[test]
fn signing_bytes_are_length_prefixed() {
    let b = signing_bytes("al", "bo", "i", 0x0102030405060708, b"ct");
    let mut want = Vec::new();
    want.extend_from_slice(&17u32.to_be_bytes());
    want.extend_from_slice(b"sesame/v1/message");
    want.extend_from_slice(&[
        0, 0, 0, 2, b'a', b'l', 0, 0, 0, 2, b'b', b'o', 0, 0, 0, 1, b'i',
    ]);
    want.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
    want.extend_from_slice(&[0, 0, 0, 2, b'c', b't']);
    assert_eq!(b, want);
    // Moving a byte between fields changes the bytes.
    assert_ne!(
        signing_bytes("ab", "c", "i", 0, b""),
        signing_bytes("a", "bc", "i", 0, b"")
    );
}

#[test]
fn the_backup_opens_with_the_same_export_key_only() {
    let (alice, _) = pair();
    let export = [7u8; 64];
    let blob = wrap_identity(&mut rng(8), &export, &alice);
    assert_eq!(blob.len(), WRAP_OVERHEAD + IDENTITY_SECRET_LEN);
    assert_eq!(blob[0], WRAP_VERSION);
    let back = unwrap_identity(&export, &blob).unwrap();
    assert_eq!(back.public(), alice.public());
    assert_eq!(
        unwrap_identity(&[8u8; 64], &blob).unwrap_err(),
        E2eError::DecryptFailed
    );
    let mut t = blob.clone();
    t[30] ^= 1;
    assert_eq!(
        unwrap_identity(&export, &t).unwrap_err(),
        E2eError::DecryptFailed
    );
    let mut v = blob.clone();
    v[0] = 2;
    assert_eq!(
        unwrap_identity(&export, &v).unwrap_err(),
        E2eError::UnsupportedVersion(2)
    );
    assert_eq!(
        unwrap_identity(&export, &blob[..20]).unwrap_err(),
        E2eError::InvalidMessage("blob")
    );
    assert_eq!(
        unwrap_identity(&export, &[]).unwrap_err(),
        E2eError::InvalidMessage("blob")
    );
    // The associated data separates kinds of blobs under one key.
    let key = WrapKey::derive(&export);
    let other = key.seal(&mut rng(8), b"sesame/v1/history", &alice.to_bytes()[..]);
    assert_eq!(
        key.unwrap_identity(&other).unwrap_err(),
        E2eError::DecryptFailed
    );
    assert_eq!(
        &key.open(b"sesame/v1/history", &other).unwrap()[..],
        &alice.to_bytes()[..]
    );
}

#[test]
fn the_wrap_key_is_hkdf_sha256_of_the_export_key() {
    let export = [3u8; 64];
    let hk = Hkdf::<Sha256>::new(Some(b"sesame/v1/key-backup"), &export);
    let mut want = [0u8; 32];
    hk.expand(b"identity-keys", &mut want).unwrap();
    assert_eq!(*WrapKey::derive(&export).to_bytes(), want);
    assert_eq!(
        format!("{:?}", WrapKey::derive(&export)),
        "WrapKey(<redacted>)"
    );
}

#[test]
fn safety_numbers_agree_and_change_with_any_key() {
    let (alice, bob) = pair();
    let (a, b) = (alice.public(), bob.public());
    let n = safety_number("alice", &a, "bob", &b);
    assert_eq!(n, safety_number("bob", &b, "alice", &a));
    let groups: Vec<_> = n.split(' ').collect();
    assert_eq!(groups.len(), 12);
    assert!(groups
        .iter()
        .all(|g| g.len() == 5 && g.bytes().all(|c| c.is_ascii_digit())));
    let carol = IdentityKeys::generate(&mut rng(3)).public();
    assert_ne!(n, safety_number("alice", &a, "bob", &carol));
    assert_ne!(n, safety_number("alice", &a, "bobby", &b));
    let mut enc_changed = b.clone();
    enc_changed.encryption_key = carol.encryption_key;
    assert_ne!(n, safety_number("alice", &a, "bob", &enc_changed));
}

#[test]
fn safety_number_derivation_is_as_documented() {
    let (alice, bob) = pair();
    let (a, b) = (alice.public(), bob.public());
    let mut h = Sha512::new();
    h.update(b"sesame/v1/safety-number");
    for (u, p) in [("alice", &a), ("bob", &b)] {
        for f in [u.as_bytes(), &p.signing_key[..], &p.encryption_key[..]] {
            h.update((f.len() as u32).to_be_bytes());
            h.update(f);
        }
    }
    let d = h.finalize();
    let first = u64::from_be_bytes([0, 0, 0, d[0], d[1], d[2], d[3], d[4]]) % 100_000;
    let n = safety_number("bob", &b, "alice", &a);
    assert_eq!(&n[..5], format!("{first:05}"));
}

#[test]
fn frames_have_the_documented_json_shape() {
    let (alice, bob) = pair();
    let msg = sealed(&alice, &bob, b"hi");
    let send = ClientFrame::Send {
        to: "bob".into(),
        message: msg.clone(),
    };
    let v = serde_json::to_value(&send).unwrap();
    assert_eq!(v["type"], "send");
    assert_eq!(v["to"], "bob");
    assert_eq!(v["id"], msg.id.as_str());
    assert_eq!(v["sent_at"], T);
    assert_eq!(v["ciphertext"], b64::encode(&msg.ciphertext.0));
    assert_eq!(v["signature"], b64::encode(&msg.signature.0));
    assert_eq!(v.as_object().unwrap().len(), 6);
    assert_eq!(serde_json::from_value::<ClientFrame>(v).unwrap(), send);

    let ack: ClientFrame = serde_json::from_str(r#"{"type":"ack","id":"x"}"#).unwrap();
    assert_eq!(ack, ClientFrame::ack("x"));
    assert_eq!(
        serde_json::to_string(&ClientFrame::ack("x")).unwrap(),
        r#"{"type":"ack","id":"x"}"#
    );
    let many = ClientFrame::ack_many(vec!["a".into(), "b".into()]);
    assert_eq!(
        serde_json::to_string(&many).unwrap(),
        r#"{"type":"ack","ids":["a","b"]}"#
    );
    let both: ClientFrame = serde_json::from_str(r#"{"type":"ack","id":"x","ids":["y"]}"#).unwrap();
    assert_eq!(
        both,
        ClientFrame::Ack {
            id: Some("x".into()),
            ids: vec!["y".into()]
        }
    );

    let delivered = ServerFrame::Message {
        from: "alice".into(),
        to: "bob".into(),
        message: msg.clone(),
    };
    let v = serde_json::to_value(&delivered).unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["from"], "alice");
    assert_eq!(v.as_object().unwrap().len(), 7);
    assert_eq!(serde_json::from_value::<ServerFrame>(v).unwrap(), delivered);

    let err: ServerFrame = serde_json::from_str(
        r#"{"type":"error","id":"x","error":{"code":"mailbox_full","message":"full"}}"#,
    )
    .unwrap();
    assert!(
        matches!(err, ServerFrame::Error { id: Some(ref i), ref error } if i == "x" && error.code == "mailbox_full")
    );
    let err: ServerFrame = serde_json::from_str(
        r#"{"type":"error","error":{"code":"invalid_message","message":"?"}}"#,
    )
    .unwrap();
    assert!(matches!(err, ServerFrame::Error { id: None, .. }));
    let ok: ServerFrame = serde_json::from_str(r#"{"type":"accepted","id":"x"}"#).unwrap();
    assert_eq!(ok, ServerFrame::Accepted { id: "x".into() });
}

#[test]
fn fingerprints_are_short_hex_groups() {
    let p = pair().0.public();
    let f = p.fingerprint();
    assert_eq!(f.len(), 8 * 4 + 7);
    assert_eq!(f.split(':').count(), 8);
    assert_ne!(f, pair().1.public().fingerprint());
}

#[test]
fn error_codes_are_stable() {
    assert_eq!(E2eError::BadSignature.code(), "bad_signature");
    assert_eq!(E2eError::DecryptFailed.code(), "decrypt_failed");
    assert_eq!(E2eError::InvalidKey.code(), "invalid_key");
    assert_eq!(E2eError::InvalidMessage("id").code(), "invalid_message");
}
