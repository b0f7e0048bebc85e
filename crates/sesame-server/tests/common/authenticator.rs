//! A software WebAuthn authenticator for the passkey tests: it answers the server's options
//! the way a browser and a platform authenticator together would, in WebAuthn JSON form.
//!
//! Keys are P-256 (ES256, RustCrypto's `p256`), derived from a seed so runs repeat; the
//! attestation is `none` (CBOR by ciborium); every credential is discoverable (it keeps the
//! user handle) and user verification is always reported. The test controls what a real
//! authenticator would not let it: the origin the client data claims, and the signature
//! counter (to play a cloned authenticator).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ciborium::Value as Cbor;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

/// One credential the authenticator holds.
pub struct Credential {
    /// The credential id.
    pub id: Vec<u8>,
    key: SigningKey,
    /// The user handle it was created for.
    pub user_handle: Vec<u8>,
    /// The signature counter of its last use.
    pub counter: u32,
}

/// The authenticator, with the origin its client claims.
pub struct SoftAuthenticator {
    /// The origin written into the client data.
    pub origin: String,
    seed: u64,
    /// The credentials, in creation order.
    pub credentials: Vec<Credential>,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(v: &Value) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(v.as_str().expect("a base64url string"))
        .expect("base64url")
}

fn cbor(value: &Cbor) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).unwrap();
    out
}

fn int(i: i64) -> Cbor {
    Cbor::Integer(i.into())
}

impl SoftAuthenticator {
    /// An authenticator whose keys derive from `seed`, claiming `origin`.
    pub fn new(origin: &str, seed: u64) -> SoftAuthenticator {
        SoftAuthenticator {
            origin: origin.to_owned(),
            seed,
            credentials: Vec::new(),
        }
    }

    fn client_data(&self, kind: &str, options: &Value) -> Vec<u8> {
        let challenge = options["publicKey"]["challenge"].as_str().unwrap();
        serde_json::to_vec(&json!({
            "type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": false,
        }))
        .unwrap()
    }

    /// Answers registration options (`{"publicKey": …}`) with a new credential.
    pub fn register(&mut self, options: &Value) -> Value {
        let pk = &options["publicKey"];
        let rp_id = pk["rp"]["id"].as_str().unwrap();
        let n = self.credentials.len() as u64;
        let digest = Sha256::digest(format!("{}:{n}", self.seed));
        let key = SigningKey::from_slice(&digest).unwrap();
        let id = Sha256::digest(format!("credential {}:{n}", self.seed))[..16].to_vec();
        let point = key.verifying_key().to_encoded_point(false);
        let cose = Cbor::Map(vec![
            (int(1), int(2)),
            (int(3), int(-7)),
            (int(-1), int(1)),
            (int(-2), Cbor::Bytes(point.x().unwrap().to_vec())),
            (int(-3), Cbor::Bytes(point.y().unwrap().to_vec())),
        ]);
        let mut auth_data = Sha256::digest(rp_id.as_bytes()).to_vec();
        auth_data.push(0x45); // user present, user verified, attested credential data
        auth_data.extend_from_slice(&0u32.to_be_bytes());
        auth_data.extend_from_slice(&[0u8; 16]); // AAGUID
        auth_data.extend_from_slice(&u16::try_from(id.len()).unwrap().to_be_bytes());
        auth_data.extend_from_slice(&id);
        auth_data.extend_from_slice(&cbor(&cose));
        let attestation = Cbor::Map(vec![
            (Cbor::Text("fmt".into()), Cbor::Text("none".into())),
            (Cbor::Text("attStmt".into()), Cbor::Map(vec![])),
            (Cbor::Text("authData".into()), Cbor::Bytes(auth_data)),
        ]);
        let client_data = self.client_data("webauthn.create", options);
        self.credentials.push(Credential {
            id: id.clone(),
            key,
            user_handle: unb64(&pk["user"]["id"]),
            counter: 0,
        });
        json!({
            "id": b64(&id), "rawId": b64(&id), "type": "public-key",
            "response": {
                "attestationObject": b64(&cbor(&attestation)),
                "clientDataJSON": b64(&client_data),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
        })
    }

    /// Answers request options with the first allowed credential it holds (any, for a
    /// discoverable sign-in), its counter one up.
    pub fn assert(&mut self, options: &Value) -> Value {
        let allowed: Vec<Vec<u8>> = options["publicKey"]["allowCredentials"]
            .as_array()
            .map(|a| a.iter().map(|c| unb64(&c["id"])).collect())
            .unwrap_or_default();
        let index = self
            .credentials
            .iter()
            .position(|c| allowed.is_empty() || allowed.contains(&c.id))
            .expect("no credential for these options");
        self.credentials[index].counter += 1;
        let counter = self.credentials[index].counter;
        self.assert_with(options, index, counter)
    }

    /// Answers request options with credential `index`, reporting `counter`.
    pub fn assert_with(&self, options: &Value, index: usize, counter: u32) -> Value {
        let rp_id = options["publicKey"]["rpId"].as_str().unwrap();
        let cred = &self.credentials[index];
        let mut auth_data = Sha256::digest(rp_id.as_bytes()).to_vec();
        auth_data.push(0x05); // user present, user verified
        auth_data.extend_from_slice(&counter.to_be_bytes());
        let client_data = self.client_data("webauthn.get", options);
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&Sha256::digest(&client_data));
        let signature: Signature = cred.key.sign(&signed);
        json!({
            "id": b64(&cred.id), "rawId": b64(&cred.id), "type": "public-key",
            "response": {
                "authenticatorData": b64(&auth_data),
                "clientDataJSON": b64(&client_data),
                "signature": b64(signature.to_der().as_bytes()),
                "userHandle": b64(&cred.user_handle),
            },
            "clientExtensionResults": {},
        })
    }
}
