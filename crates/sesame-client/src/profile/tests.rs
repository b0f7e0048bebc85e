use super::*;

const SERVER: &str = "http://127.0.0.1:7878";

fn profile() -> (tempfile::TempDir, Profile) {
    let tmp = tempfile::tempdir().unwrap();
    // A directory that does not exist yet, so the module creates it.
    let profile = Profile::at(tmp.path().join("home").join("sesame"));
    (tmp, profile)
}

fn session(server: &str) -> StoredSession {
    StoredSession {
        server: server.into(),
        username: "alice".into(),
        user_id: Uuid::from_u128(1),
        session_id: Uuid::from_u128(2),
        session_token: "st-secret".into(),
        access_token: "at-secret".into(),
        access_expires_at: 1_000,
        session_expires_at: 100_000,
        session_idle_timeout: 900,
    }
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn root_comes_from_sesame_home_else_the_config_dir() {
    assert_eq!(
        resolve_root(Some("/x/y".into()), Some("/cfg".into())).unwrap(),
        PathBuf::from("/x/y")
    );
    assert_eq!(
        resolve_root(Some("".into()), Some("/cfg".into())).unwrap(),
        PathBuf::from("/cfg/sesame")
    );
    assert_eq!(
        resolve_root(None, Some("/cfg".into())).unwrap(),
        PathBuf::from("/cfg/sesame")
    );
    assert!(matches!(
        resolve_root(None, None),
        Err(ProfileError::NoHome)
    ));
}

#[test]
fn first_use_pins_the_key_and_a_changed_key_is_refused() {
    let (_tmp, p) = profile();
    assert_eq!(p.pinned_key(SERVER).unwrap(), None);
    assert_eq!(p.trust_server(SERVER, &[7; 32]).unwrap(), Trust::Pinned);
    assert_eq!(p.pinned_key(SERVER).unwrap(), Some([7; 32]));
    assert_eq!(
        p.trust_server(SERVER, &[7; 32]).unwrap(),
        Trust::AlreadyPinned
    );
    let err = p.trust_server(SERVER, &[8; 32]).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&sesame_proto::fingerprint(&[7; 32])),
        "{text}"
    );
    assert!(
        text.contains(&sesame_proto::fingerprint(&[8; 32])),
        "{text}"
    );
    assert!(text.contains(KNOWN_SERVERS_FILE), "{text}");
    assert!(text.contains("\"http://127.0.0.1:7878\""), "{text}");
    // The stale key is still the pinned one.
    assert_eq!(p.pinned_key(SERVER).unwrap(), Some([7; 32]));
    // Other servers are independent.
    assert_eq!(
        p.trust_server("https://example.com", &[8; 32]).unwrap(),
        Trust::Pinned
    );
    // Forgetting allows re-pinning.
    assert!(p.forget_server(SERVER).unwrap());
    assert!(!p.forget_server(SERVER).unwrap());
    assert_eq!(p.trust_server(SERVER, &[8; 32]).unwrap(), Trust::Pinned);
}

#[test]
fn known_servers_is_a_plain_map_of_base64url_keys() {
    let (_tmp, p) = profile();
    p.trust_server(SERVER, &[0xff; 32]).unwrap();
    let text = std::fs::read_to_string(p.known_servers_path()).unwrap();
    let map: BTreeMap<String, String> = serde_json::from_str(&text).unwrap();
    assert_eq!(map[SERVER], sesame_proto::b64::encode([0xff; 32]));
    assert_eq!(p.known_servers().unwrap(), map);
}

#[test]
fn a_bad_pinned_key_or_a_corrupt_file_is_reported() {
    let (_tmp, p) = profile();
    std::fs::create_dir_all(p.root()).unwrap();
    std::fs::write(
        p.known_servers_path(),
        r#"{"http://127.0.0.1:7878":"short"}"#,
    )
    .unwrap();
    assert!(matches!(
        p.pinned_key(SERVER),
        Err(ProfileError::BadPinnedKey { .. })
    ));
    std::fs::write(p.known_servers_path(), "not json").unwrap();
    assert!(matches!(
        p.pinned_key(SERVER),
        Err(ProfileError::Corrupt { .. })
    ));
}

#[test]
fn sessions_round_trip_per_server_and_are_removed() {
    let (_tmp, p) = profile();
    assert_eq!(p.load_session(SERVER).unwrap(), None);
    let s = session(SERVER);
    p.save_session(&s).unwrap();
    assert_eq!(
        p.session_path(SERVER),
        p.root().join("sessions").join("127.0.0.1-7878.json")
    );
    assert_eq!(p.load_session(SERVER).unwrap(), Some(s.clone()));
    // Same host and port, other scheme: not this server's session.
    assert_eq!(p.load_session("https://127.0.0.1:7878").unwrap(), None);
    // Saving again replaces the file (atomically) and leaves no temporary behind.
    let mut s2 = s.clone();
    s2.access_token = "at-2".into();
    p.save_session(&s2).unwrap();
    assert_eq!(p.load_session(SERVER).unwrap(), Some(s2));
    let names: Vec<_> = std::fs::read_dir(p.root().join(SESSIONS_DIR))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![OsString::from("127.0.0.1-7878.json")]);
    assert!(p.remove_session(SERVER).unwrap());
    assert!(!p.remove_session(SERVER).unwrap());
    assert_eq!(p.load_session(SERVER).unwrap(), None);
}

#[test]
fn session_file_names_use_host_and_port() {
    assert_eq!(session_file_stem("https://example.com"), "example.com-443");
    assert_eq!(
        session_file_stem("https://example.com:8443/sesame"),
        "example.com-8443"
    );
    assert_eq!(session_file_stem("http://[::1]:7878"), "__1-7878");
    assert_eq!(session_file_stem("../../etc/passwd"), ".._.._etc_passwd");
}

#[cfg(unix)]
#[test]
fn files_are_0600_and_directories_0700() {
    let (_tmp, p) = profile();
    p.trust_server(SERVER, &[1; 32]).unwrap();
    p.save_session(&session(SERVER)).unwrap();
    assert_eq!(mode(p.root()), 0o700);
    assert_eq!(mode(&p.root().join(SESSIONS_DIR)), 0o700);
    assert_eq!(mode(&p.known_servers_path()), 0o600);
    assert_eq!(mode(&p.session_path(SERVER)), 0o600);
    // Rewriting keeps the modes.
    p.trust_server("https://example.com", &[2; 32]).unwrap();
    assert_eq!(mode(&p.known_servers_path()), 0o600);
}

#[test]
fn stored_sessions_track_expiry_and_refresh_and_hide_tokens() {
    let issued = SessionIssued {
        user_id: Uuid::from_u128(1),
        username: "alice".into(),
        session_id: Uuid::from_u128(2),
        session_token: "st-secret".into(),
        access_token: "at-secret".into(),
        token_type: "Bearer".into(),
        expires_in: 900,
        session_expires_at: 50_000,
        session_idle_timeout: 600,
    };
    let mut s = StoredSession::from_issued(SERVER, &issued, 10_000);
    assert_eq!(s.access_expires_at, 10_900);
    assert_eq!(s.session_idle_timeout, 600);
    assert!(!s.access_expired(10_000));
    assert!(s.access_expired(10_900 - EXPIRY_MARGIN_SECS));
    assert!(!s.session_expired(49_999));
    assert!(s.session_expired(50_000));
    s.apply_refresh(
        &Refreshed {
            access_token: "at-2".into(),
            token_type: "Bearer".into(),
            expires_in: 600,
        },
        11_000,
    );
    assert_eq!(s.access_token, "at-2");
    assert_eq!(s.access_expires_at, 11_600);
    assert!(!format!("{s:?}").contains("secret"));
}
