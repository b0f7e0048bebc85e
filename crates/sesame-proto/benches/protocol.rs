//! Micro-benchmarks of the protocol core: `cargo bench -p sesame-proto`.
//!
//! The server's half of an OPAQUE login never runs Argon2id, so the login benchmarks use a
//! record made with tiny key-stretching parameters (m = 8 KiB, t = 1) and a client policy that
//! admits them: that keeps the client's part of each setup cheap without changing a single
//! operation the server performs. Registration is measured at the default parameters, where
//! the server-assisted path is all Argon2id.
#![allow(missing_docs)]
// A benchmark of the protocol library, outside the server: randomness straight from the OS.
#![allow(clippy::disallowed_types)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use rand_core::OsRng;
use sesame_proto::client::{self, ClientPolicy, ExpectLoginConfirmation};
use sesame_proto::e2e::{self, IdentityKeys};
use sesame_proto::messages::{LoginConfirmation, RegistrationFinish};
use sesame_proto::policy::Username;
use sesame_proto::server::{self, ConfirmationSealer, ServerKeys};
use sesame_proto::{CredentialRecord, KsfParams, KsfPolicy, Timestamp};

const PASSWORD: &str = "correct horse battery staple";
const NOW: Timestamp = Timestamp(1_800_000_000);

/// Key stretching the server never runs, made cheap for the client side of the setups.
const TINY_KSF: KsfParams = KsfParams {
    memory: 8,
    iterations: 1,
    parallelism: 1,
};

fn tiny_policy() -> ClientPolicy {
    ClientPolicy {
        ksf: KsfPolicy {
            min_memory: 8,
            min_cost: 8,
            ..KsfPolicy::DEFAULT
        },
        pinned_server_key: None,
    }
}

/// A `SessionIssued`-sized confirmation payload (about 420 bytes of JSON).
fn payload() -> Vec<u8> {
    let mut p = br#"{"access_token":""#.to_vec();
    p.extend(std::iter::repeat_n(b'a', 330));
    p.extend_from_slice(br#"","token_type":"Bearer","expires_in":900,"session_id":"x"}"#);
    p
}

struct Fixture {
    keys: ServerKeys,
    user: Username,
    record: CredentialRecord,
}

fn fixture() -> Fixture {
    let keys = ServerKeys::generate(&mut OsRng);
    let user = Username::parse("alice").expect("username");
    let record = server::register_with_password(&mut OsRng, &keys, &user, PASSWORD, TINY_KSF)
        .expect("record");
    Fixture { keys, user, record }
}

/// A whole login up to the server's finish: what `login_finish` consumes.
fn until_finish(
    f: &Fixture,
) -> (
    server::ExpectLoginFinish,
    sesame_proto::messages::LoginFinish,
    ExpectLoginConfirmation,
) {
    let (c, start) = client::start_login(&mut OsRng, "alice", PASSWORD).expect("start");
    let (state, challenge) = server::start_login(
        &mut OsRng,
        &f.keys,
        &f.user,
        Some(&f.record),
        &start,
        NOW,
        60,
    )
    .expect("server start");
    let done = c
        .finish(&mut OsRng, &challenge, &tiny_policy())
        .expect("client finish");
    (state, done.message, done.confirmation)
}

fn sealed_confirmation(f: &Fixture) -> (ConfirmationSealer, ExpectLoginConfirmation) {
    let (state, finish, confirmation) = until_finish(f);
    let (_, sealer) = state.finish(&finish, NOW).expect("server finish");
    (sealer, confirmation)
}

fn login(c: &mut Criterion) {
    let f = fixture();
    let mut g = c.benchmark_group("login");
    g.bench_function("server_start (KE1 -> KE2)", |b| {
        b.iter_batched(
            || {
                client::start_login(&mut OsRng, "alice", PASSWORD)
                    .expect("start")
                    .1
            },
            |start| {
                server::start_login(
                    &mut OsRng,
                    &f.keys,
                    &f.user,
                    Some(&f.record),
                    &start,
                    NOW,
                    60,
                )
                .expect("server start")
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("server_start unknown user", |b| {
        let ghost = Username::parse("ghost-user").expect("username");
        b.iter_batched(
            || {
                client::start_login(&mut OsRng, "ghost-user", PASSWORD)
                    .expect("start")
                    .1
            },
            |start| {
                server::start_login(&mut OsRng, &f.keys, &ghost, None, &start, NOW, 60)
                    .expect("server start")
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("server_state to_bytes + from_bytes", |b| {
        let (state, _, _) = until_finish(&f);
        b.iter(|| {
            let bytes = state.to_bytes();
            server::ExpectLoginFinish::from_bytes(black_box(&bytes)).expect("state")
        })
    });
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("server_finish (KE3 verified)", |b| {
        b.iter_batched(
            || {
                let (state, finish, _) = until_finish(&f);
                (state, finish)
            },
            |(state, finish)| state.finish(&finish, NOW).expect("server finish"),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn confirmation(c: &mut Criterion) {
    let f = fixture();
    let payload = payload();
    let mut g = c.benchmark_group("confirmation");
    let (sealer, _) = sealed_confirmation(&f);
    g.bench_function("seal (server, ~420 B)", |b| {
        b.iter(|| sealer.seal(&mut OsRng, black_box(&payload)).expect("seal"))
    });
    // Opening consumes the client's state, so each iteration needs a fresh login (untimed):
    // keep the measurement short, the setups dominate the wall time.
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(20))
        .measurement_time(Duration::from_millis(50));
    g.bench_function("open (client, ~420 B)", |b| {
        b.iter_batched(
            || {
                let (sealer, confirmation) = sealed_confirmation(&f);
                let sealed: LoginConfirmation = sealer.seal(&mut OsRng, &payload).expect("seal");
                (confirmation, sealed)
            },
            |(confirmation, sealed)| confirmation.open(&sealed).expect("open"),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn registration(c: &mut Criterion) {
    let keys = ServerKeys::generate(&mut OsRng);
    let user = Username::parse("bob").expect("username");
    let mut g = c.benchmark_group("registration");
    g.bench_function("server_challenge", |b| {
        b.iter_batched(
            || {
                client::start_registration(&mut OsRng, "bob", PASSWORD)
                    .expect("start")
                    .1
            },
            |start| {
                server::registration_challenge(&keys, &user, &start, KsfParams::DEFAULT)
                    .expect("challenge")
            },
            BatchSize::SmallInput,
        )
    });
    // One real client-side registration at the default parameters (one Argon2id), then the
    // server's acceptance of its upload, repeatedly.
    let finish: RegistrationFinish = {
        let (state, start) =
            client::start_registration(&mut OsRng, "bob", PASSWORD).expect("start");
        let challenge = server::registration_challenge(&keys, &user, &start, KsfParams::DEFAULT)
            .expect("challenge");
        state
            .finish(&mut OsRng, &challenge, &ClientPolicy::default())
            .expect("client finish")
            .message
    };
    g.bench_function("server_record_accept (client-side upload)", |b| {
        b.iter(|| {
            server::registration_record(black_box(&finish), &KsfPolicy::DEFAULT).expect("record")
        })
    });
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    g.bench_function("server_assisted (Argon2id m=19456 t=2 p=1)", |b| {
        b.iter(|| {
            server::register_with_password(&mut OsRng, &keys, &user, PASSWORD, KsfParams::DEFAULT)
                .expect("record")
        })
    });
    let record =
        server::register_with_password(&mut OsRng, &keys, &user, PASSWORD, KsfParams::DEFAULT)
            .expect("record");
    g.bench_function("password_login server-assisted (Argon2id)", |b| {
        b.iter(|| {
            server::login_with_password(&mut OsRng, &keys, &user, Some(&record), PASSWORD)
                .expect("login")
        })
    });
    g.finish();
}

fn messages(c: &mut Criterion) {
    let alice = IdentityKeys::generate(&mut OsRng);
    let bob = IdentityKeys::generate(&mut OsRng);
    let bob_public = bob.public();
    let alice_public = alice.public();
    let plaintext = vec![0x42u8; 1024];
    let mut g = c.benchmark_group("e2e");
    g.bench_function("seal 1 KiB (crypto_box_seal + Ed25519)", |b| {
        b.iter(|| {
            e2e::seal(
                &mut OsRng,
                &alice,
                "alice",
                "bob",
                &bob_public,
                "0f8fad5b-d9cb-469f-a165-70867728950e",
                1_767_225_600_000,
                black_box(&plaintext),
            )
            .expect("seal")
        })
    });
    let sealed = e2e::seal(
        &mut OsRng,
        &alice,
        "alice",
        "bob",
        &bob_public,
        "0f8fad5b-d9cb-469f-a165-70867728950e",
        1_767_225_600_000,
        &plaintext,
    )
    .expect("seal");
    g.bench_function("open 1 KiB (verify + unseal)", |b| {
        b.iter(|| e2e::open(&bob, "alice", "bob", black_box(&sealed), &alice_public).expect("open"))
    });
    g.bench_function("verify signature only", |b| {
        b.iter(|| {
            e2e::verify_message("alice", "bob", black_box(&sealed), &alice_public).expect("verify")
        })
    });
    g.finish();
}

criterion_group!(benches, login, confirmation, registration, messages);
criterion_main!(benches);
