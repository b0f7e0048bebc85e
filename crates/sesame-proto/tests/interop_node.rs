//! Wire compatibility with `@serenity-kit/opaque` 1.1 (opaque-ke compiled to WebAssembly),
//! the package browsers and Node clients use: registration and login in both directions.
//!
//! Needs `npm ci --prefix crates/sesame-proto/tests/interop` (`.ci/run` does it). Without it
//! the test says so loudly and skips, unless `SESAME_REQUIRE_SERVICES=1`.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use common::{alice, keys, policy, rng, NOW, PASSWORD};
use serde_json::{json, Value};
use sesame_proto::b64::{self, Bytes};
use sesame_proto::client;
use sesame_proto::messages::{
    LoginChallenge, LoginConfirmation, LoginFinish, LoginStart, RegistrationChallenge,
    RegistrationFinish, RegistrationStart,
};
use sesame_proto::server::{self, ServerKeys, DEFAULT_LOGIN_TTL_SECS};
use sesame_proto::{KeyStretching, KsfParams, KsfPolicy};

struct Node {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Node {
    fn start() -> Option<Node> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
        let required = std::env::var("SESAME_REQUIRE_SERVICES").as_deref() == Ok("1");
        if !dir.join("node_modules/@serenity-kit/opaque").exists() {
            let msg =
                "node_modules missing: run `npm ci --prefix crates/sesame-proto/tests/interop`";
            assert!(!required, "SESAME_REQUIRE_SERVICES=1 but {msg}");
            eprintln!("\n*** SKIPPING @serenity-kit/opaque interop test: {msg} ***\n");
            return None;
        }
        let mut child = match Command::new("node")
            .arg("driver.mjs")
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => {
                assert!(
                    !required,
                    "SESAME_REQUIRE_SERVICES=1 but node does not start: {e}"
                );
                eprintln!("\n*** SKIPPING @serenity-kit/opaque interop test: node: {e} ***\n");
                return None;
            }
        };
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Some(Node {
            child,
            stdin,
            stdout,
        })
    }

    fn call(&mut self, op: &str, params: Value) -> Value {
        let line = json!({ "op": op, "params": params }).to_string();
        writeln!(self.stdin, "{line}").unwrap();
        let mut answer = String::new();
        self.stdout.read_line(&mut answer).unwrap();
        let mut v: Value = serde_json::from_str(&answer).unwrap();
        if let Some(err) = v.get("error") {
            panic!("node {op} failed: {err}");
        }
        v["ok"].take()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn s(v: &Value) -> &str {
    v.as_str().expect("string")
}

fn bytes(v: &Value) -> Bytes {
    Bytes(b64::decode(s(v)).expect("base64url"))
}

fn ksf_json() -> Value {
    serde_json::to_value(KeyStretching::from(KsfParams::DEFAULT)).unwrap()
}

#[test]
fn node_client_registers_and_logs_in_against_the_rust_server_core() {
    let Some(mut node) = Node::start() else {
        return;
    };
    let keys = keys();
    let mut srng = rng(2);

    // Registration: Node client, Rust server.
    let start = node.call("clientStartRegistration", json!({ "password": PASSWORD }));
    let msg = RegistrationStart {
        username: "alice".into(),
        registration_request: bytes(&start["registrationRequest"]),
    };
    let ch = server::registration_challenge(&keys, &alice(), &msg, KsfParams::DEFAULT).unwrap();
    let ch_json = serde_json::to_value(&ch).unwrap();
    let reg = node.call(
        "clientFinishRegistration",
        json!({
            "password": PASSWORD,
            "clientRegistrationState": start["clientRegistrationState"],
            "registrationResponse": ch_json["registration_response"],
            "keyStretching": ch_json["key_stretching"],
        }),
    );
    assert_eq!(bytes(&reg["serverStaticPublicKey"]).0, keys.public_key());
    let record = server::registration_record(
        &RegistrationFinish {
            username: "alice".into(),
            registration_record: bytes(&reg["registrationRecord"]),
            key_stretching: serde_json::from_value(ch_json["key_stretching"].clone()).unwrap(),
        },
        &KsfPolicy::DEFAULT,
    )
    .unwrap();

    // Login: Node client, Rust server, and the confirmation opened in JavaScript.
    let start = node.call("clientStartLogin", json!({ "password": PASSWORD }));
    let ke1 = bytes(&start["startLoginRequest"]);
    let login_start = LoginStart {
        username: "alice".into(),
        ke1: ke1.clone(),
    };
    let (state, ch) = server::start_login(
        &mut srng,
        &keys,
        &alice(),
        Some(&record),
        &login_start,
        NOW,
        DEFAULT_LOGIN_TTL_SECS,
    )
    .unwrap();
    let ch_json = serde_json::to_value(&ch).unwrap();
    let fin = node.call(
        "clientFinishLogin",
        json!({
            "clientLoginState": start["clientLoginState"],
            "loginResponse": ch_json["ke2"],
            "password": PASSWORD,
            "keyStretching": ch_json["key_stretching"],
        }),
    );
    // OPAQUE's export key is the same at registration and at login.
    assert_eq!(fin["exportKey"], reg["exportKey"]);
    let ke3 = bytes(&fin["finishLoginRequest"]);
    let (verified, sealer) = state
        .finish(
            &LoginFinish {
                login_id: ch.login_id.clone(),
                ke3: ke3.clone(),
                device_key_id: None,
                device_signature: None,
            },
            NOW,
        )
        .unwrap();
    assert_eq!(verified.username().as_str(), "alice");
    let confirmation = sealer.seal(&mut srng, br#"{"session":"s3cr3t"}"#).unwrap();
    let opened = node.call(
        "openConfirmation",
        json!({
            "loginId": ch.login_id,
            "ke1": b64::encode(&ke1.0),
            "ke2": ch_json["ke2"],
            "ke3": b64::encode(&ke3.0),
            "sessionKey": fin["sessionKey"],
            "sealed": b64::encode(&confirmation.sealed.0),
        }),
    );
    assert_eq!(s(&opened), r#"{"session":"s3cr3t"}"#);

    // A wrong password fails in the Node client (finishLogin returns undefined).
    let start = node.call(
        "clientStartLogin",
        json!({ "password": "not the password" }),
    );
    let login_start = LoginStart {
        username: "alice".into(),
        ke1: bytes(&start["startLoginRequest"]),
    };
    let (_state, ch) = server::start_login(
        &mut srng,
        &keys,
        &alice(),
        Some(&record),
        &login_start,
        NOW,
        DEFAULT_LOGIN_TTL_SECS,
    )
    .unwrap();
    let fin = node.call(
        "clientFinishLogin",
        json!({
            "clientLoginState": start["clientLoginState"],
            "loginResponse": b64::encode(&ch.ke2.0),
            "password": "not the password",
            "keyStretching": ksf_json(),
        }),
    );
    assert!(fin.is_null());

    // The record a Node client made also serves a server-assisted password login.
    assert!(
        server::login_with_password(&mut srng, &keys, &alice(), Some(&record), PASSWORD).is_ok()
    );
}

#[test]
fn rust_client_registers_and_logs_in_against_node_server_functions() {
    let Some(mut node) = Node::start() else {
        return;
    };
    let mut crng = rng(1);
    let setup = node.call("createServerSetup", json!({}));
    let node_pk = bytes(&node.call("getServerPublicKey", json!({ "serverSetup": setup })));
    // The same setup loads in Rust: one serialization on both sides.
    let keys = ServerKeys::from_bytes(&bytes(&setup).0).unwrap();
    assert_eq!(keys.public_key().as_slice(), node_pk.as_slice());

    // Registration: Rust client, Node server.
    let (state, start) = client::start_registration(&mut crng, "alice", PASSWORD).unwrap();
    let resp = node.call(
        "serverCreateRegistrationResponse",
        json!({
            "serverSetup": setup,
            "userIdentifier": "alice",
            "registrationRequest": b64::encode(&start.registration_request.0),
        }),
    );
    let ch = RegistrationChallenge {
        registration_response: bytes(&resp["registrationResponse"]),
        key_stretching: KsfParams::DEFAULT.into(),
        server_public_key: node_pk.clone(),
    };
    let reg = state.finish(&mut crng, &ch, &policy()).unwrap();
    let record_b64 = b64::encode(&reg.message.registration_record.0);

    // Login: Rust client, Node server, confirmation sealed in JavaScript.
    let (state, start) = client::start_login(&mut crng, "alice", PASSWORD).unwrap();
    let resp = node.call(
        "serverStartLogin",
        json!({
            "serverSetup": setup,
            "registrationRecord": record_b64,
            "startLoginRequest": b64::encode(&start.ke1.0),
            "userIdentifier": "alice",
        }),
    );
    let login_id = "node-login-0000000000a".to_string();
    let ch = LoginChallenge {
        login_id: login_id.clone(),
        ke2: bytes(&resp["loginResponse"]),
        key_stretching: KsfParams::DEFAULT.into(),
        server_public_key: node_pk.clone(),
        expires_in: 60,
    };
    let done = state.finish(&mut crng, &ch, &policy()).unwrap();
    assert_eq!(*done.export_key, *reg.export_key);
    let fin = node.call(
        "serverFinishLogin",
        json!({
            "serverLoginState": resp["serverLoginState"],
            "finishLoginRequest": b64::encode(&done.message.ke3.0),
        }),
    );
    let sealed = node.call(
        "sealConfirmation",
        json!({
            "loginId": login_id,
            "ke1": b64::encode(&start.ke1.0),
            "ke2": resp["loginResponse"],
            "ke3": b64::encode(&done.message.ke3.0),
            "sessionKey": fin["sessionKey"],
            "payload": "hello from node",
        }),
    );
    let payload = done
        .confirmation
        .open(&LoginConfirmation {
            login_id,
            sealed: bytes(&sealed),
        })
        .unwrap();
    assert_eq!(payload.as_slice(), b"hello from node");

    // The Rust server core accepts the record the Rust client made for the Node server.
    let record = server::registration_record(&reg.message, &KsfPolicy::DEFAULT).unwrap();
    assert!(
        server::login_with_password(&mut rng(7), &keys, &alice(), Some(&record), PASSWORD).is_ok()
    );

    // An unknown user on the Node server: the Rust client refuses the fake response.
    let (state, start) = client::start_login(&mut crng, "alice", PASSWORD).unwrap();
    let resp = node.call(
        "serverStartLogin",
        json!({
            "serverSetup": setup,
            "registrationRecord": null,
            "startLoginRequest": b64::encode(&start.ke1.0),
            "userIdentifier": "mallory",
        }),
    );
    let ch = LoginChallenge {
        ke2: bytes(&resp["loginResponse"]),
        ..ch
    };
    assert!(state.finish(&mut crng, &ch, &policy()).is_err());
}

#[test]
fn rust_server_setup_drives_node_server_functions() {
    let Some(mut node) = Node::start() else {
        return;
    };
    let keys = keys();
    let setup = b64::encode(&*keys.to_bytes());
    let pk = bytes(&node.call("getServerPublicKey", json!({ "serverSetup": setup })));
    assert_eq!(pk.0, keys.public_key());
    // A record registered by the Rust server core verifies a Node-client login run by the
    // Node server functions with the same setup.
    let record =
        server::register_with_password(&mut rng(3), &keys, &alice(), PASSWORD, KsfParams::DEFAULT)
            .unwrap();
    let upload = b64::encode(&record.to_bytes()[13..]);
    let start = node.call("clientStartLogin", json!({ "password": PASSWORD }));
    let resp = node.call(
        "serverStartLogin",
        json!({
            "serverSetup": setup,
            "registrationRecord": upload,
            "startLoginRequest": start["startLoginRequest"],
            "userIdentifier": "alice",
        }),
    );
    let fin = node.call(
        "clientFinishLogin",
        json!({
            "clientLoginState": start["clientLoginState"],
            "loginResponse": resp["loginResponse"],
            "password": PASSWORD,
            "keyStretching": ksf_json(),
        }),
    );
    assert!(
        !fin.is_null(),
        "node client refused a login on a Rust-made record"
    );
    let server_fin = node.call(
        "serverFinishLogin",
        json!({ "serverLoginState": resp["serverLoginState"], "finishLoginRequest": fin["finishLoginRequest"] }),
    );
    assert_eq!(server_fin["sessionKey"], fin["sessionKey"]);
}
