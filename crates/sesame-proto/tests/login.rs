//! Registration and login through the sans-IO state machines, positive and negative.

mod common;

use common::{alice, challenge, keys, policy, register, rng, NOW, PASSWORD};
use sesame_proto::b64::Bytes;
use sesame_proto::client::ClientPolicy;
use sesame_proto::messages::{LoginConfirmation, LoginFinish};
use sesame_proto::server::{self, AuthMethod, ExpectLoginFinish};
use sesame_proto::{CredentialRecord, Error, KeyStretching, KsfParams, KsfPolicy, Timestamp};

#[test]
fn client_side_registration_then_login_succeeds_and_confirmation_opens() {
    let keys = keys();
    let (mut crng, mut srng) = (rng(1), rng(2));
    let record = register(&keys, PASSWORD, &mut crng);
    let (cstate, sstate, ch) = challenge(&keys, Some(&record), PASSWORD, &mut crng, &mut srng);
    assert_eq!(ch.login_id.len(), 22);
    assert_eq!(ch.ke2.as_slice().len(), 320);
    assert_eq!(ch.server_public_key.as_slice(), keys.public_key());
    let done = cstate.finish(&mut crng, &ch, &policy()).unwrap();
    assert_eq!(done.message.ke3.as_slice().len(), 64);
    assert_eq!(done.server_public_key, keys.public_key());
    let (verified, sealer) = sstate.finish(&done.message, NOW.plus(1)).unwrap();
    assert_eq!(verified.username().as_str(), "alice");
    assert_eq!(verified.method(), AuthMethod::Opaque);
    let confirmation = sealer.seal(&mut srng, b"{\"token\":\"t\"}").unwrap();
    let payload = done.confirmation.open(&confirmation).unwrap();
    assert_eq!(payload.as_slice(), b"{\"token\":\"t\"}");
}

#[test]
fn export_key_is_stable_between_registration_and_logins() {
    let keys = keys();
    let (mut crng, mut srng) = (rng(1), rng(2));
    let (state, start) =
        sesame_proto::client::start_registration(&mut crng, "alice", PASSWORD).unwrap();
    let ch = server::registration_challenge(&keys, &alice(), &start, KsfParams::DEFAULT).unwrap();
    let reg = state.finish(&mut crng, &ch, &policy()).unwrap();
    let record = server::registration_record(&reg.message, &KsfPolicy::DEFAULT).unwrap();
    for _ in 0..2 {
        let (cstate, _s, ch) = challenge(&keys, Some(&record), PASSWORD, &mut crng, &mut srng);
        let done = cstate.finish(&mut crng, &ch, &policy()).unwrap();
        assert_eq!(*done.export_key, *reg.export_key);
    }
}

#[test]
fn wrong_password_fails_at_the_client_and_a_forged_ke3_fails_at_the_server() {
    let keys = keys();
    let (mut crng, mut srng) = (rng(1), rng(2));
    let record = register(&keys, PASSWORD, &mut crng);
    let (cstate, sstate, ch) = challenge(
        &keys,
        Some(&record),
        "wrong password!",
        &mut crng,
        &mut srng,
    );
    assert_eq!(
        cstate.finish(&mut crng, &ch, &policy()).err(),
        Some(Error::AuthenticationFailed)
    );
    // A client that sends a KE3 anyway (here: random bytes) fails at the server the same way.
    let forged = LoginFinish {
        login_id: ch.login_id.clone(),
        ke3: Bytes(vec![7u8; 64]),
        device_key_id: None,
        device_signature: None,
    };
    assert_eq!(
        sstate.finish(&forged, NOW).err(),
        Some(Error::AuthenticationFailed)
    );
}

#[test]
fn unknown_user_gets_a_challenge_of_the_same_shape_and_fails_like_a_wrong_password() {
    let keys = keys();
    let (mut crng, mut srng) = (rng(1), rng(2));
    let record = register(&keys, PASSWORD, &mut crng);
    let (_c, _s, real) = challenge(&keys, Some(&record), PASSWORD, &mut crng, &mut srng);
    let (cstate, sstate, fake) = challenge(&keys, None, PASSWORD, &mut crng, &mut srng);
    assert_eq!(fake.ke2.as_slice().len(), real.ke2.as_slice().len());
    assert_eq!(fake.login_id.len(), real.login_id.len());
    assert_eq!(fake.key_stretching, real.key_stretching);
    assert_eq!(fake.server_public_key, real.server_public_key);
    assert_eq!(
        serde_json::to_string(&fake).unwrap().len(),
        serde_json::to_string(&real).unwrap().len()
    );
    assert_eq!(
        cstate.finish(&mut crng, &fake, &policy()).err(),
        Some(Error::AuthenticationFailed)
    );
    let forged = LoginFinish {
        login_id: fake.login_id.clone(),
        ke3: Bytes(vec![1u8; 64]),
        device_key_id: None,
        device_signature: None,
    };
    assert_eq!(
        sstate.finish(&forged, NOW).err(),
        Some(Error::AuthenticationFailed)
    );
}

#[test]
fn replayed_ke3_from_an_earlier_login_fails() {
    let keys = keys();
    let (mut crng, mut srng) = (rng(1), rng(2));
    let record = register(&keys, PASSWORD, &mut crng);
    let (cstate, sstate, ch) = challenge(&keys, Some(&record), PASSWORD, &mut crng, &mut srng);
    let done = cstate.finish(&mut crng, &ch, &policy()).unwrap();
    sstate.finish(&done.message, NOW).unwrap();
    // The old KE3, replayed into a fresh login under the new id.
    let (_c2, sstate2, ch2) = challenge(&keys, Some(&record), PASSWORD, &mut crng, &mut srng);
    let replay = LoginFinish {
        login_id: ch2.login_id.clone(),
        ke3: done.message.ke3.clone(),
        device_key_id: None,
        device_signature: None,
    };
    assert_eq!(
        sstate2.finish(&replay, NOW).err(),
        Some(Error::AuthenticationFailed)
    );
}

#[test]
fn login_state_is_bound_to_its_id_and_expires() {
    let keys = keys();
    let (mut crng, mut srng) = (rng(1), rng(2));
    let record = register(&keys, PASSWORD, &mut crng);
    let (cstate, sstate, ch) = challenge(&keys, Some(&record), PASSWORD, &mut crng, &mut srng);
    let done = cstate.finish(&mut crng, &ch, &policy()).unwrap();
    assert_eq!(sstate.expires_at(), NOW.plus(60));
    let bytes = sstate.to_bytes();

    let wrong_id = LoginFinish {
        login_id: "AAAAAAAAAAAAAAAAAAAAAA".into(),
        ..done.message.clone()
    };
    let again = || ExpectLoginFinish::from_bytes(&bytes).unwrap();
    assert_eq!(
        again().finish(&wrong_id, NOW).err(),
        Some(Error::UnknownLogin)
    );
    assert_eq!(
        again().finish(&done.message, NOW.plus(60)).err(),
        Some(Error::LoginExpired)
    );
    // Just inside the window, the restored state still verifies.
    assert!(again().finish(&done.message, NOW.plus(59)).is_ok());
}

#[test]
fn login_state_survives_serialization_and_refuses_corruption() {
    let keys = keys();
    let (mut crng, mut srng) = (rng(1), rng(2));
    let record = register(&keys, PASSWORD, &mut crng);
    let (cstate, sstate, ch) = challenge(&keys, Some(&record), PASSWORD, &mut crng, &mut srng);
    let bytes = sstate.to_bytes();
    let restored = ExpectLoginFinish::from_bytes(&bytes).unwrap();
    assert_eq!(restored.login_id(), ch.login_id);
    assert_eq!(restored.username().as_str(), "alice");
    for cut in [0, 1, 9, 10, 40, bytes.len() - 1] {
        assert!(
            ExpectLoginFinish::from_bytes(&bytes[..cut]).is_err(),
            "cut at {cut}"
        );
    }
    let done = cstate.finish(&mut crng, &ch, &policy()).unwrap();
    assert!(restored.finish(&done.message, NOW).is_ok());
}

#[test]
fn tampered_ke2_fails_at_the_client() {
    let keys = keys();
    let (mut crng, mut srng) = (rng(1), rng(2));
    let record = register(&keys, PASSWORD, &mut crng);
    // Flip one bit in each region of KE2: evaluated element, masking nonce, masked response,
    // server nonce, server key share, server MAC.
    for offset in [0usize, 40, 100, 200, 230, 300] {
        let (cstate, _s, mut ch) = challenge(&keys, Some(&record), PASSWORD, &mut crng, &mut srng);
        ch.ke2.0[offset] ^= 0x01;
        let err = cstate.finish(&mut crng, &ch, &policy()).err().unwrap();
        assert!(
            matches!(
                err,
                Error::AuthenticationFailed | Error::InvalidMessage("ke2")
            ),
            "offset {offset}: {err:?}"
        );
    }
}

#[test]
fn tampered_ke3_fails_at_the_server() {
    let keys = keys();
    let (mut crng, mut srng) = (rng(1), rng(2));
    let record = register(&keys, PASSWORD, &mut crng);
    let (cstate, sstate, ch) = challenge(&keys, Some(&record), PASSWORD, &mut crng, &mut srng);
    let mut done = cstate.finish(&mut crng, &ch, &policy()).unwrap();
    done.message.ke3.0[10] ^= 0x80;
    assert_eq!(
        sstate.finish(&done.message, NOW).err(),
        Some(Error::AuthenticationFailed)
    );
    let short = LoginFinish {
        login_id: ch.login_id.clone(),
        ke3: Bytes(vec![0; 63]),
        device_key_id: None,
        device_signature: None,
    };
    let (_c, sstate, ch2) = challenge(&keys, Some(&record), PASSWORD, &mut crng, &mut srng);
    let short = LoginFinish {
        login_id: ch2.login_id.clone(),
        ..short
    };
    assert_eq!(
        sstate.finish(&short, NOW).err(),
        Some(Error::InvalidMessage("ke3"))
    );
}

#[test]
fn tampered_or_foreign_confirmation_fails_at_the_client() {
    let keys = keys();
    let (mut crng, mut srng) = (rng(1), rng(2));
    let record = register(&keys, PASSWORD, &mut crng);
    // One complete exchange up to step 4: the client's confirmation state and the server's
    // correctly sealed confirmation.
    let mut exchange = || {
        let (c, s, ch) = challenge(&keys, Some(&record), PASSWORD, &mut crng, &mut srng);
        let done = c.finish(&mut crng, &ch, &policy()).unwrap();
        let (_v, sealer) = s.finish(&done.message, NOW).unwrap();
        let good = sealer.seal(&mut srng, b"payload").unwrap();
        (done.confirmation, good)
    };

    let (state, good) = exchange();
    let mut flipped = good.clone();
    let last = flipped.sealed.0.len() - 1;
    flipped.sealed.0[last] ^= 1;
    assert_eq!(state.open(&flipped).err(), Some(Error::ConfirmationInvalid));

    let (state, good) = exchange();
    let truncated = LoginConfirmation {
        sealed: Bytes(good.sealed.0[..20].to_vec()),
        ..good
    };
    assert_eq!(
        state.open(&truncated).err(),
        Some(Error::ConfirmationInvalid)
    );

    let (state, good) = exchange();
    let other_id = LoginConfirmation {
        login_id: "BBBBBBBBBBBBBBBBBBBBBB".into(),
        ..good
    };
    assert_eq!(state.open(&other_id).err(), Some(Error::UnknownLogin));

    // A confirmation sealed for another login does not open under this one.
    let (state, good) = exchange();
    let (_other_state, other) = exchange();
    let foreign = LoginConfirmation {
        login_id: good.login_id,
        ..other
    };
    assert_eq!(state.open(&foreign).err(), Some(Error::ConfirmationInvalid));
}

#[test]
fn downgraded_or_absurd_key_stretching_is_refused_before_any_work() {
    let keys = keys();
    let (mut crng, mut srng) = (rng(1), rng(2));
    let record = register(&keys, PASSWORD, &mut crng);
    let weak = [
        KsfParams {
            memory: 1024,
            iterations: 2,
            parallelism: 1,
        },
        KsfParams {
            memory: 8192,
            iterations: 1,
            parallelism: 1,
        },
        KsfParams {
            memory: 19_456,
            iterations: 0,
            parallelism: 1,
        },
        KsfParams {
            memory: 4_194_304,
            iterations: 2,
            parallelism: 1,
        },
        KsfParams {
            memory: 19_456,
            iterations: 2,
            parallelism: 64,
        },
    ];
    for params in weak {
        let (cstate, _s, mut ch) = challenge(&keys, Some(&record), PASSWORD, &mut crng, &mut srng);
        ch.key_stretching = KeyStretching::Argon2id(params);
        assert!(
            matches!(
                cstate.finish(&mut crng, &ch, &policy()),
                Err(Error::KsfRejected(_))
            ),
            "{params:?} accepted"
        );
        // Registration refuses the same parameters, on both sides.
        let (rstate, start) =
            sesame_proto::client::start_registration(&mut crng, "alice", PASSWORD).unwrap();
        let rch = server::registration_challenge(&keys, &alice(), &start, params).unwrap();
        assert!(matches!(
            rstate.finish(&mut crng, &rch, &policy()),
            Err(Error::KsfRejected(_))
        ));
    }
    // Every OWASP configuration passes the floor.
    for (memory, iterations) in [
        (47_104, 1),
        (19_456, 2),
        (12_288, 3),
        (9_216, 4),
        (7_168, 5),
    ] {
        let p = KsfParams {
            memory,
            iterations,
            parallelism: 1,
        };
        assert_eq!(KsfPolicy::DEFAULT.check(&p), Ok(()), "{p:?}");
    }
}

#[test]
fn stronger_parameters_in_the_challenge_than_in_the_record_fail_authentication() {
    let keys = keys();
    let (mut crng, mut srng) = (rng(1), rng(2));
    let record = register(&keys, PASSWORD, &mut crng);
    let (cstate, _s, mut ch) = challenge(&keys, Some(&record), PASSWORD, &mut crng, &mut srng);
    ch.key_stretching = KeyStretching::Argon2id(KsfParams {
        memory: 19_456,
        iterations: 3,
        parallelism: 1,
    });
    assert_eq!(
        cstate.finish(&mut crng, &ch, &policy()).err(),
        Some(Error::AuthenticationFailed)
    );
}

#[test]
fn server_registration_refuses_records_below_the_floor() {
    let keys = keys();
    let mut crng = rng(1);
    let (state, start) =
        sesame_proto::client::start_registration(&mut crng, "alice", PASSWORD).unwrap();
    let ch = server::registration_challenge(&keys, &alice(), &start, KsfParams::DEFAULT).unwrap();
    let mut done = state.finish(&mut crng, &ch, &policy()).unwrap();
    done.message.key_stretching = KeyStretching::Argon2id(KsfParams {
        memory: 64,
        iterations: 1,
        parallelism: 1,
    });
    assert!(matches!(
        server::registration_record(&done.message, &KsfPolicy::DEFAULT),
        Err(Error::KsfRejected(_))
    ));
    done.message.key_stretching = KsfParams::DEFAULT.into();
    done.message.registration_record.0.truncate(100);
    assert_eq!(
        server::registration_record(&done.message, &KsfPolicy::DEFAULT).err(),
        Some(Error::InvalidMessage("registration_record"))
    );
}

#[test]
fn a_pinned_key_that_does_not_match_is_refused() {
    let keys = keys();
    let (mut crng, mut srng) = (rng(1), rng(2));
    let record = register(&keys, PASSWORD, &mut crng);
    let pinned = ClientPolicy {
        pinned_server_key: Some([9u8; 32]),
        ..policy()
    };
    let (cstate, _s, ch) = challenge(&keys, Some(&record), PASSWORD, &mut crng, &mut srng);
    assert_eq!(
        cstate.finish(&mut crng, &ch, &pinned).err(),
        Some(Error::ServerKeyMismatch)
    );
    // The right pin passes.
    let right = ClientPolicy {
        pinned_server_key: Some(keys.public_key()),
        ..policy()
    };
    let (cstate, _s, ch) = challenge(&keys, Some(&record), PASSWORD, &mut crng, &mut srng);
    assert!(cstate.finish(&mut crng, &ch, &right).is_ok());
}

#[test]
fn a_different_server_cannot_complete_the_login() {
    // An impostor with its own setup but the victim's stolen record: the client's envelope
    // names the real server's key, so the exchange fails at the client.
    let real = keys();
    let impostor = sesame_proto::server::ServerKeys::generate(&mut rng(99));
    let (mut crng, mut srng) = (rng(1), rng(2));
    let record = register(&real, PASSWORD, &mut crng);
    let (cstate, _s, ch) = challenge(&impostor, Some(&record), PASSWORD, &mut crng, &mut srng);
    assert!(cstate.finish(&mut crng, &ch, &policy()).is_err());
}

#[test]
fn server_assisted_registration_then_opaque_login_and_password_login() {
    let keys = keys();
    let (mut crng, mut srng) = (rng(1), rng(2));
    let record =
        server::register_with_password(&mut srng, &keys, &alice(), PASSWORD, KsfParams::DEFAULT)
            .unwrap();
    // OPAQUE login on the server-assisted record.
    let (cstate, sstate, ch) = challenge(&keys, Some(&record), PASSWORD, &mut crng, &mut srng);
    let done = cstate.finish(&mut crng, &ch, &policy()).unwrap();
    assert!(sstate.finish(&done.message, NOW).is_ok());
    // Password login on the same record.
    let ok =
        server::login_with_password(&mut srng, &keys, &alice(), Some(&record), PASSWORD).unwrap();
    assert_eq!(ok.method(), AuthMethod::Password);
    assert_eq!(ok.username().as_str(), "alice");
    assert_eq!(
        server::login_with_password(
            &mut srng,
            &keys,
            &alice(),
            Some(&record),
            "not the password"
        )
        .err(),
        Some(Error::AuthenticationFailed)
    );
    assert_eq!(
        server::login_with_password(&mut srng, &keys, &alice(), None, PASSWORD).err(),
        Some(Error::AuthenticationFailed)
    );
}

#[test]
fn client_side_record_accepts_password_login() {
    let keys = keys();
    let mut crng = rng(1);
    let record = register(&keys, PASSWORD, &mut crng);
    assert!(
        server::login_with_password(&mut rng(5), &keys, &alice(), Some(&record), PASSWORD).is_ok()
    );
}

#[test]
fn passwords_are_nfkc_normalised_on_both_paths() {
    // "ﬁ" (U+FB01) normalises to "fi": a record made with one form opens with the other.
    let keys = keys();
    let record = server::register_with_password(
        &mut rng(3),
        &keys,
        &alice(),
        "pass\u{FB01}ne-words",
        KsfParams::DEFAULT,
    )
    .unwrap();
    assert!(server::login_with_password(
        &mut rng(4),
        &keys,
        &alice(),
        Some(&record),
        "passfine-words"
    )
    .is_ok());
}

#[test]
fn records_and_server_keys_round_trip_and_refuse_corruption() {
    let keys = keys();
    let record = register(&keys, PASSWORD, &mut rng(1));
    let bytes = record.to_bytes();
    assert_eq!(bytes.len(), 1 + 12 + 192);
    let again = CredentialRecord::from_bytes(&bytes).unwrap();
    assert_eq!(again.to_bytes(), bytes);
    assert_eq!(again.ksf(), KsfParams::DEFAULT);
    assert!(CredentialRecord::from_bytes(&bytes[..50]).is_err());
    let mut wrong_version = bytes.clone();
    wrong_version[0] = 9;
    assert!(CredentialRecord::from_bytes(&wrong_version).is_err());

    let kb = keys.to_bytes();
    assert_eq!(kb.len(), 128);
    let k2 = sesame_proto::server::ServerKeys::from_bytes(&kb).unwrap();
    assert_eq!(k2.public_key(), keys.public_key());
    assert!(k2.fingerprint().starts_with("SHA256:"));
    assert_eq!(k2.fingerprint().len(), 7 + 43);
    assert!(sesame_proto::server::ServerKeys::from_bytes(&kb[..100]).is_err());
}

#[test]
fn the_stand_in_record_parses_like_a_real_one_and_no_password_opens_it() {
    let keys = keys();
    let real = register(&keys, PASSWORD, &mut rng(1)).to_bytes();
    let stand_in = CredentialRecord::stand_in_bytes(&mut rng(7), &keys);
    assert_eq!(stand_in.len(), real.len());
    let record = CredentialRecord::from_bytes(&stand_in).unwrap();
    assert_eq!(record.ksf(), KsfParams::DEFAULT);
    for password in [PASSWORD, ""] {
        assert!(matches!(
            server::login_with_password(&mut rng(5), &keys, &alice(), Some(&record), password),
            Err(Error::AuthenticationFailed)
        ));
    }
}

#[test]
fn same_seed_same_transcript() {
    let run = || {
        let keys = keys();
        let (mut crng, mut srng) = (rng(1), rng(2));
        let record = register(&keys, PASSWORD, &mut crng);
        let (_c, _s, ch) = challenge(&keys, Some(&record), PASSWORD, &mut crng, &mut srng);
        serde_json::to_string(&ch).unwrap()
    };
    assert_eq!(run(), run());
    let _ = Timestamp(0);
}
