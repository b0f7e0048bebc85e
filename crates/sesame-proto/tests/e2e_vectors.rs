//! Recomputes the end-to-end messaging vectors in docs/test-vectors/e2e-*.json from fixed
//! seeds, byte for byte, and checks the formats against an independent implementation
//! (PyNaCl, i.e. libsodium) when Python has it.
//!
//! To regenerate after a deliberate format change:
//! `SESAME_WRITE_VECTORS=1 cargo test -p sesame-proto --test e2e_vectors`.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use rand_chacha::rand_core::SeedableRng as _;
use rand_chacha::ChaCha20Rng;
use serde_json::{json, Value};
use sesame_proto::b64;
use sesame_proto::e2e::{self, ClientFrame, IdentityKeys, SealedMessage, ServerFrame, WrapKey};

const ALICE_SEED: u8 = 11;
const BOB_SEED: u8 = 12;
const SEAL_SEED: u8 = 13;
const WRAP_SEED: u8 = 14;
const SENT_AT: u64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z in milliseconds
const PLAINTEXT: &str = "Hello Bob! Meet at the usual place at 6.";
/// An export key as OPAQUE would give one (here fixed, so the vector stands alone).
const EXPORT_KEY: [u8; 64] = {
    let mut k = [0u8; 64];
    let mut i = 0;
    while i < 64 {
        k[i] = i as u8;
        i += 1;
    }
    k
};

fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

fn rng_note() -> &'static str {
    "ChaCha20Rng (rand_chacha 0.3) from_seed([seed; 32])"
}

fn alice() -> IdentityKeys {
    IdentityKeys::generate(&mut rng(ALICE_SEED))
}

fn bob() -> IdentityKeys {
    IdentityKeys::generate(&mut rng(BOB_SEED))
}

fn identity_json(name: &str, seed: u8, keys: &IdentityKeys) -> Value {
    json!({
        "username": name,
        "seed": seed,
        "secret": b64::encode(&keys.to_bytes()[..]),
        "public": keys.public(),
        "fingerprint": keys.public().fingerprint(),
    })
}

fn identity_vector() -> Value {
    let a = alice();
    let p = a.public();
    let mut signed = e2e::IDENTITY_KEY_CONTEXT.to_vec();
    signed.extend_from_slice(&p.encryption_key);
    json!({
        "description": "Identity keys: secret = 64 bytes from the RNG (Ed25519 seed || X25519 secret); \
                        the encryption key signed by the signing key",
        "rng": rng_note(),
        "identity": identity_json("alice", ALICE_SEED, &a),
        "encryption_key_signed_bytes": hex::encode(signed),
    })
}

/// The message vector and the sealed message.
fn message_parts() -> (Value, SealedMessage) {
    let (a, b) = (alice(), bob());
    let mut r = rng(SEAL_SEED);
    let id = e2e::new_message_id(&mut r);
    let msg = e2e::seal(
        &mut r,
        &a,
        "alice",
        "bob",
        &b.public(),
        &id,
        SENT_AT,
        PLAINTEXT.as_bytes(),
    )
    .unwrap();
    let signed = e2e::signing_bytes("alice", "bob", &msg.id, msg.sent_at, &msg.ciphertext.0);
    let v = json!({
        "description": "A message from alice to bob: crypto_box_seal to bob's X25519 key, Ed25519 \
                        signature by alice over the length-prefixed signing bytes",
        "rng": rng_note(),
        "seal_seed": SEAL_SEED,
        "rng_use": "from the seal RNG: 16 bytes for the message id (UUID v4), then 32 bytes for \
                    the sealed box's ephemeral X25519 secret",
        "alice": identity_json("alice", ALICE_SEED, &a),
        "bob": identity_json("bob", BOB_SEED, &b),
        "from": "alice",
        "to": "bob",
        "plaintext": PLAINTEXT,
        "signing_bytes": hex::encode(&signed),
        "message": msg,
        "send_frame": ClientFrame::Send { to: "bob".into(), message: msg.clone() },
        "delivery_frame": ServerFrame::Message {
            from: "alice".into(),
            to: "bob".into(),
            message: msg.clone(),
        },
    });
    (v, msg)
}

fn backup_vector() -> Value {
    let a = alice();
    let key = WrapKey::derive(&EXPORT_KEY);
    let blob = e2e::wrap_identity(&mut rng(WRAP_SEED), &EXPORT_KEY, &a);
    json!({
        "description": "Key backup: HKDF-SHA256(salt \"sesame/v1/key-backup\", ikm export key, info \
                        \"identity-keys\") -> 32-byte key; blob = 0x01 || nonce(24, from the RNG) || \
                        XChaCha20-Poly1305(aad \"sesame/v1/key-backup\", identity secret)",
        "rng": rng_note(),
        "wrap_seed": WRAP_SEED,
        "export_key": b64::encode(EXPORT_KEY),
        "wrap_key": hex::encode(&key.to_bytes()[..]),
        "identity": identity_json("alice", ALICE_SEED, &a),
        "blob": b64::encode(&blob),
    })
}

fn safety_vector() -> Value {
    let (a, b) = (alice(), bob());
    json!({
        "description": "Safety number of alice and bob: tuples ordered by username, SHA-512 over \
                        \"sesame/v1/safety-number\" || lp(user) || lp(signing_key) || lp(encryption_key) \
                        for each, 12 groups of 5 digits from 5-byte big-endian chunks mod 100000",
        "alice": identity_json("alice", ALICE_SEED, &a),
        "bob": identity_json("bob", BOB_SEED, &b),
        "safety_number": e2e::safety_number("alice", &a.public(), "bob", &b.public()),
    })
}

fn vector_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/test-vectors")
        .join(format!("{name}.json"))
}

fn check(name: &str, actual: Value) {
    let path = vector_path(name);
    let text = serde_json::to_string_pretty(&actual).unwrap() + "\n";
    if std::env::var("SESAME_WRITE_VECTORS").as_deref() == Ok("1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (SESAME_WRITE_VECTORS=1 writes it)", path.display()));
    assert!(
        expected == text,
        "{name}.json differs from the recomputed vector"
    );
}

fn stored(name: &str) -> Option<Value> {
    let text = std::fs::read_to_string(vector_path(name)).ok()?;
    Some(serde_json::from_str(&text).unwrap())
}

fn decode(v: &Value) -> Vec<u8> {
    b64::decode(v.as_str().unwrap()).unwrap()
}

#[test]
fn identity_vectors() {
    check("e2e-identity", identity_vector());
}

#[test]
fn message_vectors() {
    check("e2e-message", message_parts().0);
}

#[test]
fn backup_vectors() {
    check("e2e-key-backup", backup_vector());
}

#[test]
fn safety_number_vectors() {
    check("e2e-safety-number", safety_vector());
}

/// The stored files, read back without the generator: what another implementation would do.
#[test]
fn stored_vectors_open_with_this_build() {
    let (Some(m), Some(k)) = (stored("e2e-message"), stored("e2e-key-backup")) else {
        return assert!(std::env::var("SESAME_WRITE_VECTORS").is_ok());
    };
    let bob = IdentityKeys::from_bytes(&decode(&m["bob"]["secret"])).unwrap();
    let alice_pub: e2e::PublicIdentity =
        serde_json::from_value(m["alice"]["public"].clone()).unwrap();
    let frame: ServerFrame = serde_json::from_value(m["delivery_frame"].clone()).unwrap();
    let ServerFrame::Message { from, to, message } = frame else {
        panic!("not a message frame")
    };
    let text = e2e::open(&bob, &from, &to, &message, &alice_pub).unwrap();
    assert_eq!(&text[..], m["plaintext"].as_str().unwrap().as_bytes());

    let export: [u8; 64] = decode(&k["export_key"]).try_into().unwrap();
    let restored = e2e::unwrap_identity(&export, &decode(&k["blob"])).unwrap();
    assert_eq!(
        b64::encode(&restored.to_bytes()[..]),
        k["identity"]["secret"].as_str().unwrap()
    );
}

/// Checks the formats with PyNaCl (libsodium): the sealed box opens with `SealedBox`, both
/// signatures verify with `VerifyKey` over signing bytes the script rebuilds itself, and a
/// message the script seals and signs opens with [`e2e::open`].
const NACL_SCRIPT: &str = r#"
import base64, json, struct, sys
from nacl.public import PrivateKey, PublicKey, SealedBox
from nacl.signing import SigningKey, VerifyKey

def d(s): return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
def e(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
def lp(b): return struct.pack(">I", len(b)) + b
def signing_bytes(frm, to, mid, sent_at, ct):
    return (lp(b"sesame/v1/message") + lp(frm.encode()) + lp(to.encode()) + lp(mid.encode())
            + struct.pack(">Q", sent_at) + lp(ct))

v = json.load(sys.stdin)
alice, bob, msg = v["alice"], v["bob"], v["message"]
bob_secret = d(bob["secret"])
bob_x = PrivateKey(bob_secret[32:])
assert bob_x.public_key.encode() == d(bob["public"]["encryption_key"]), "x25519 public key"
alice_sign = SigningKey(d(alice["secret"])[:32])
assert alice_sign.verify_key.encode() == d(alice["public"]["signing_key"]), "ed25519 public key"

# The identity signature over the encryption key.
for who in (alice, bob):
    p = who["public"]
    VerifyKey(d(p["signing_key"])).verify(
        b"sesame/v1/identity-encryption-key" + d(p["encryption_key"]),
        d(p["encryption_key_signature"]))

# The message from Rust.
ct = d(msg["ciphertext"])
sb = signing_bytes("alice", "bob", msg["id"], msg["sent_at"], ct)
assert sb.hex() == v["signing_bytes"], "signing bytes differ"
VerifyKey(d(alice["public"]["signing_key"])).verify(sb, d(msg["signature"]))
plain = SealedBox(bob_x).decrypt(ct)
assert plain.decode() == v["plaintext"], "plaintext differs"

# A message the other way round, made by libsodium.
reply = "Sealed by libsodium".encode()
ct2 = SealedBox(PublicKey(d(alice["public"]["encryption_key"]))).encrypt(reply)
bob_sign = SigningKey(bob_secret[:32])
sig2 = bob_sign.sign(signing_bytes("bob", "alice", "py-reply-1", 42, ct2)).signature
print(json.dumps({"ok": True, "reply": {"id": "py-reply-1", "sent_at": 42,
                  "ciphertext": e(ct2), "signature": e(sig2)}}))
"#;

#[test]
fn pynacl_opens_and_verifies_what_seal_makes() {
    let required = std::env::var("SESAME_REQUIRE_SERVICES").as_deref() == Ok("1");
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let has_nacl = Command::new(&python)
        .args(["-c", "import nacl.public, nacl.signing"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_nacl {
        assert!(
            !required,
            "SESAME_REQUIRE_SERVICES=1 but `{python} -c 'import nacl'` fails: pip install pynacl"
        );
        eprintln!(
            "SKIPPED: pynacl_opens_and_verifies_what_seal_makes: PyNaCl is not importable by \
             {python} (pip install pynacl)"
        );
        return;
    }
    let (v, _) = message_parts();
    let mut child = Command::new(&python)
        .args(["-c", NACL_SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(v.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the PyNaCl check failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    let reply: SealedMessage = serde_json::from_value(answer["reply"].clone()).unwrap();
    let text = e2e::open(&alice(), "bob", "alice", &reply, &bob().public()).unwrap();
    assert_eq!(&text[..], b"Sealed by libsodium");
    // And a libsodium box whose signature covers other fields is refused.
    assert_eq!(
        e2e::open(&alice(), "bob", "carol", &reply, &bob().public()).unwrap_err(),
        e2e::E2eError::BadSignature
    );
}
