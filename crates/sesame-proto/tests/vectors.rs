//! Recomputes the JSON transcripts in docs/test-vectors/ from fixed seeds, byte for byte.
//!
//! To regenerate after a deliberate protocol change:
//! `SESAME_WRITE_VECTORS=1 cargo test -p sesame-proto --test vectors`.

mod common;

use std::path::PathBuf;

use common::{alice, policy, rng, NOW, PASSWORD};
use serde_json::{json, Value};
use sesame_proto::b64;
use sesame_proto::client;
use sesame_proto::server::{self, ServerKeys, DEFAULT_LOGIN_TTL_SECS};
use sesame_proto::{CredentialRecord, KsfParams, KsfPolicy};

const SETUP_SEED: u8 = 0;
const CLIENT_SEED: u8 = 1;
const SERVER_SEED: u8 = 2;
const PAYLOAD: &str =
    r#"{"session_token":"example","user_id":"00000000-0000-4000-8000-000000000000"}"#;

fn header(description: &str) -> Value {
    json!({
        "description": description,
        "suite": "OPAQUE-3DH ristretto255-SHA512, Argon2id (v19, 16 zero-byte salt), no context, default identifiers",
        "rng": "ChaCha20Rng (rand_chacha 0.3) from_seed([seed; 32]); setup, client and server each own one",
        "seeds": { "setup": SETUP_SEED, "client": CLIENT_SEED, "server": SERVER_SEED },
        "now": NOW.0,
        "username": "alice",
        "password": PASSWORD,
        "key_stretching": KsfParams::DEFAULT,
    })
}

fn setup() -> ServerKeys {
    ServerKeys::generate(&mut rng(SETUP_SEED))
}

fn with_setup(mut v: Value, keys: &ServerKeys) -> Value {
    v["server_setup"] = json!(b64::encode(&*keys.to_bytes()));
    v["server_public_key"] = json!(b64::encode(keys.public_key()));
    v["server_fingerprint"] = json!(keys.fingerprint());
    v
}

fn registered(keys: &ServerKeys) -> (Value, CredentialRecord) {
    let mut crng = rng(CLIENT_SEED);
    let (state, start) = client::start_registration(&mut crng, "alice", PASSWORD).unwrap();
    let challenge =
        server::registration_challenge(keys, &alice(), &start, KsfParams::DEFAULT).unwrap();
    let done = state.finish(&mut crng, &challenge, &policy()).unwrap();
    let record = server::registration_record(&done.message, &KsfPolicy::DEFAULT).unwrap();
    let steps = json!([
        { "from": "client", "message": "RegistrationStart", "body": start },
        { "from": "server", "message": "RegistrationChallenge", "body": challenge },
        { "from": "client", "message": "RegistrationFinish", "body": done.message },
    ]);
    let v = json!({
        "steps": steps,
        "export_key": b64::encode(*done.export_key),
        "stored_record": b64::encode(record.to_bytes()),
    });
    (v, record)
}

fn registration_client_side() -> Value {
    let keys = setup();
    let mut v = with_setup(
        header("Client-side registration: the password never leaves the client"),
        &keys,
    );
    let (reg, _) = registered(&keys);
    for (k, val) in reg.as_object().unwrap() {
        v[k] = val.clone();
    }
    v
}

fn registration_server_assisted() -> Value {
    let keys = setup();
    let mut v = with_setup(
        header("Server-assisted registration: the server runs the client half on the password it received"),
        &keys,
    );
    let record = server::register_with_password(
        &mut rng(SERVER_SEED),
        &keys,
        &alice(),
        PASSWORD,
        KsfParams::DEFAULT,
    )
    .unwrap();
    v["stored_record"] = json!(b64::encode(record.to_bytes()));
    v
}

fn login(description: &str, password: &str, known: bool) -> Value {
    let keys = setup();
    let mut v = with_setup(header(description), &keys);
    v["login_password"] = json!(password);
    let record = if known {
        let (reg, record) = registered(&keys);
        v["stored_record"] = reg["stored_record"].clone();
        Some(record)
    } else {
        v["stored_record"] = Value::Null;
        None
    };
    let (mut crng, mut srng) = (rng(CLIENT_SEED + 10), rng(SERVER_SEED));
    let (cstate, start) = client::start_login(&mut crng, "alice", password).unwrap();
    let (sstate, challenge) = server::start_login(
        &mut srng,
        &keys,
        &alice(),
        record.as_ref(),
        &start,
        NOW,
        DEFAULT_LOGIN_TTL_SECS,
    )
    .unwrap();
    v["login_client_seed"] = json!(CLIENT_SEED + 10);
    let mut steps = vec![
        json!({ "from": "client", "message": "LoginStart", "body": start }),
        json!({ "from": "server", "message": "LoginChallenge", "body": challenge }),
    ];
    match cstate.finish(&mut crng, &challenge, &policy()) {
        Ok(done) => {
            steps.push(json!({ "from": "client", "message": "LoginFinish", "body": done.message }));
            let (_verified, sealer) = sstate.finish(&done.message, NOW.plus(1)).unwrap();
            let confirmation = sealer.seal(&mut srng, PAYLOAD.as_bytes()).unwrap();
            steps.push(
                json!({ "from": "server", "message": "LoginConfirmation", "body": confirmation }),
            );
            let opened = done.confirmation.open(&confirmation).unwrap();
            v["confirmation_payload"] = json!(String::from_utf8(opened.to_vec()).unwrap());
            v["export_key"] = json!(b64::encode(*done.export_key));
            v["outcome"] = json!("success");
        }
        Err(e) => v["outcome"] = json!({ "client_error": e.code() }),
    }
    v["steps"] = json!(steps);
    v
}

fn check(name: &str, actual: Value) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/test-vectors")
        .join(format!("{name}.json"));
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
        "{name}.json differs from the recomputed transcript"
    );
}

#[test]
fn registration_vectors() {
    check("registration-client-side", registration_client_side());
    check(
        "registration-server-assisted",
        registration_server_assisted(),
    );
}

#[test]
fn login_vectors() {
    check(
        "login-success",
        login("Login with the right password", PASSWORD, true),
    );
    check(
        "login-wrong-password",
        login(
            "Login with a wrong password: the client fails at step 3",
            "wrong password 123",
            true,
        ),
    );
    check(
        "login-unknown-user",
        login(
            "Login for an unknown user: a fake record, failure at step 3",
            PASSWORD,
            false,
        ),
    );
}

#[test]
fn stored_vectors_are_accepted_by_this_build() {
    // The stored record of the success vector still verifies its password.
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/test-vectors/login-success.json");
    let Ok(text) = std::fs::read_to_string(path) else {
        return assert!(std::env::var("SESAME_WRITE_VECTORS").is_ok());
    };
    let v: Value = serde_json::from_str(&text).unwrap();
    let keys =
        ServerKeys::from_bytes(&b64::decode(v["server_setup"].as_str().unwrap()).unwrap()).unwrap();
    let record =
        CredentialRecord::from_bytes(&b64::decode(v["stored_record"].as_str().unwrap()).unwrap())
            .unwrap();
    assert!(
        server::login_with_password(&mut rng(42), &keys, &alice(), Some(&record), PASSWORD).is_ok()
    );
    assert!(server::login_with_password(
        &mut rng(42),
        &keys,
        &alice(),
        Some(&record),
        "nope nope nope"
    )
    .is_err());
}
