//! Deterministic harness: seeded RNGs and a fixed clock, both halves in one process.
#![allow(dead_code)]

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use sesame_proto::client::{self, ClientPolicy};
use sesame_proto::messages::LoginChallenge;
use sesame_proto::policy::Username;
use sesame_proto::server::{self, ServerKeys};
use sesame_proto::{CredentialRecord, KsfParams, KsfPolicy, Timestamp};

pub const NOW: Timestamp = Timestamp(1_767_225_600); // 2026-01-01T00:00:00Z
pub const PASSWORD: &str = "correct horse battery staple";

pub fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

pub fn keys() -> ServerKeys {
    ServerKeys::generate(&mut rng(0))
}

pub fn alice() -> Username {
    Username::parse("alice").unwrap()
}

pub fn policy() -> ClientPolicy {
    ClientPolicy {
        ksf: KsfPolicy::DEFAULT,
        pinned_server_key: None,
    }
}

/// Client-side registration of `password` for alice; returns the stored record.
pub fn register(keys: &ServerKeys, password: &str, crng: &mut ChaCha20Rng) -> CredentialRecord {
    let (state, start) = client::start_registration(crng, "alice", password).unwrap();
    let challenge =
        server::registration_challenge(keys, &alice(), &start, KsfParams::DEFAULT).unwrap();
    let done = state.finish(crng, &challenge, &policy()).unwrap();
    server::registration_record(&done.message, &KsfPolicy::DEFAULT).unwrap()
}

/// Runs login steps 1–2 and returns everything the next steps need.
pub fn challenge(
    keys: &ServerKeys,
    record: Option<&CredentialRecord>,
    password: &str,
    crng: &mut ChaCha20Rng,
    srng: &mut ChaCha20Rng,
) -> (
    client::ExpectLoginChallenge,
    server::ExpectLoginFinish,
    LoginChallenge,
) {
    let (cstate, start) = client::start_login(crng, "alice", password).unwrap();
    let (sstate, challenge) = server::start_login(
        srng,
        keys,
        &alice(),
        record,
        &start,
        NOW,
        server::DEFAULT_LOGIN_TTL_SECS,
    )
    .unwrap();
    (cstate, sstate, challenge)
}
