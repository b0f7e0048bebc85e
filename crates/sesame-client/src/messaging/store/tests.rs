use super::*;
use sesame_proto::b64;

const SERVER: &str = "http://127.0.0.1:7878";

fn store() -> (tempfile::TempDir, MessagingStore) {
    let tmp = tempfile::tempdir().unwrap();
    let profile = Profile::at(tmp.path().join("sesame"));
    (tmp, MessagingStore::new(&profile))
}

fn keys(seed: u8) -> IdentityKeys {
    IdentityKeys::from_bytes(&[seed; 64]).unwrap()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn identities_are_stored_wrapped_and_private() {
    let (_tmp, s) = store();
    let k = keys(1);
    let wrap = WrapKey::derive(&[9; 64]);
    assert_eq!(s.load_identity(SERVER, "alice").unwrap(), None);
    let stored = s.save_identity(SERVER, "alice", &k, &wrap, 5).unwrap();
    let back = s.load_identity(SERVER, "alice").unwrap().unwrap();
    assert_eq!(back, stored);
    assert_eq!(back.public, k.public());
    let text = std::fs::read_to_string(s.identity_path(SERVER, "alice")).unwrap();
    assert!(!text.contains(&b64::encode(&k.to_bytes()[..32])));
    let opened = wrap.unwrap_identity(back.wrapped.as_slice()).unwrap();
    assert!(opened.matches(&k.public()));
    assert!(WrapKey::derive(&[8; 64])
        .unwrap_identity(back.wrapped.as_slice())
        .is_err());
    // Another server on the same host and port does not see it.
    assert_eq!(
        s.load_identity("https://127.0.0.1:7878", "alice").unwrap(),
        None
    );
    #[cfg(unix)]
    {
        assert_eq!(mode(&s.identity_path(SERVER, "alice")), 0o600);
        assert_eq!(
            mode(s.identity_path(SERVER, "alice").parent().unwrap()),
            0o700
        );
    }
}

#[test]
fn the_unlock_key_belongs_to_one_session() {
    let (_tmp, s) = store();
    let wrap = WrapKey::derive(&[9; 64]);
    let (one, two) = (Uuid::from_u128(1), Uuid::from_u128(2));
    assert!(s.load_unlock(SERVER, "alice", one).unwrap().is_none());
    s.save_unlock(SERVER, "alice", one, &wrap).unwrap();
    let back = s.load_unlock(SERVER, "alice", one).unwrap().unwrap();
    assert_eq!(*back.to_bytes(), *wrap.to_bytes());
    // Another session: ignored and removed.
    assert!(s.load_unlock(SERVER, "alice", two).unwrap().is_none());
    assert!(s.load_unlock(SERVER, "alice", one).unwrap().is_none());
    s.save_unlock(SERVER, "alice", one, &wrap).unwrap();
    assert!(s.remove_unlock(SERVER, "alice").unwrap());
    assert!(!s.remove_unlock(SERVER, "alice").unwrap());
}

#[test]
fn contacts_are_pinned_per_server() {
    let (_tmp, s) = store();
    let c = Contact {
        identity: keys(2).public(),
        trust: ContactTrust::Unverified,
        pinned_at: 7,
        changed_to: None,
    };
    s.save_contact(SERVER, "bob", &c).unwrap();
    assert_eq!(s.contact(SERVER, "bob").unwrap(), Some(c.clone()));
    assert_eq!(s.contact(SERVER, "carol").unwrap(), None);
    assert_eq!(s.contact("https://example.com", "bob").unwrap(), None);
    assert_eq!(
        s.contacts_path(SERVER),
        s.root().join("contacts").join("127.0.0.1-7878.json")
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.contacts_path(SERVER)).unwrap()).unwrap();
    assert_eq!(json["bob"]["trust"], "unverified");
}

#[test]
fn history_is_encrypted_deduplicated_and_bounded() {
    let (_tmp, s) = store();
    let wrap = WrapKey::derive(&[9; 64]);
    let entry = |id: &str, text: &str| HistoryEntry {
        id: id.into(),
        direction: Direction::Incoming,
        sent_at: 1,
        text: text.into(),
        verified: false,
    };
    assert!(s.history(&wrap, SERVER, "alice", "bob").unwrap().is_empty());
    assert!(s
        .append_history(&wrap, SERVER, "alice", "bob", entry("1", "secret words"))
        .unwrap());
    assert!(!s
        .append_history(&wrap, SERVER, "alice", "bob", entry("1", "again"))
        .unwrap());
    let raw = std::fs::read(s.history_path(SERVER, "alice", "bob")).unwrap();
    assert!(!String::from_utf8_lossy(&raw).contains("secret words"));
    let h = s.history(&wrap, SERVER, "alice", "bob").unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].text, "secret words");
    assert!(s.has_incoming(&wrap, SERVER, "alice", "bob", "1").unwrap());
    // A file moved to another conversation does not open: it is set aside (never in the way),
    // and said so once.
    std::fs::copy(
        s.history_path(SERVER, "alice", "bob"),
        s.history_path(SERVER, "alice", "carol"),
    )
    .unwrap();
    assert!(s
        .history(&wrap, SERVER, "alice", "carol")
        .unwrap()
        .is_empty());
    let moved = s.take_set_aside();
    assert_eq!(moved.len(), 1);
    assert!(moved[0]
        .to
        .to_string_lossy()
        .ends_with("carol.bin.unreadable"));
    assert!(moved[0].to.exists() && !moved[0].from.exists());
    assert!(s.take_set_aside().is_empty());
    // Another key does not open it either: re-keying from the right key keeps it readable.
    let other = WrapKey::derive(&[1; 64]);
    let bob = Contact {
        identity: keys(2).public(),
        trust: ContactTrust::Unverified,
        pinned_at: 7,
        changed_to: None,
    };
    s.save_contact(SERVER, "bob", &bob).unwrap();
    let report = s.rekey_history(&wrap, &other, SERVER, "alice").unwrap();
    assert_eq!((report.rekeyed, report.set_aside.len()), (1, 0));
    assert_eq!(s.history(&other, SERVER, "alice", "bob").unwrap().len(), 1);
    assert!(s.history(&wrap, SERVER, "alice", "bob").unwrap().is_empty());
    assert_eq!(
        s.take_set_aside().len(),
        1,
        "the old key no longer opens it"
    );
    let s = s.with_history_limit(10);
    for i in 0..15 {
        s.append_history(&wrap, SERVER, "alice", "dave", entry(&i.to_string(), "x"))
            .unwrap();
    }
    let h = s.history(&wrap, SERVER, "alice", "dave").unwrap();
    assert_eq!(h.len(), 10);
    assert_eq!(h[0].id, "5");
}

#[test]
fn file_names_cannot_escape() {
    assert_eq!(file_name("alice"), "alice");
    assert_eq!(file_name("../x"), "_.._x");
    assert_eq!(file_name(""), "_");
    assert_eq!(file_name("a/b"), "a_b");
}
