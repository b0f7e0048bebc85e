use super::{FieldCrypto, MasterKey, SecretsError};

#[test]
fn master_key_parses_base64url_and_hex_and_refuses_the_rest() {
    let key = MasterKey::generate();
    let text = key.to_text();
    assert_eq!(text.len(), 43);
    assert!(MasterKey::parse(&text).is_ok());
    assert!(MasterKey::parse(&format!("  {}\n", &*text)).is_ok());
    assert!(MasterKey::parse(&"ab".repeat(32)).is_ok());
    for bad in ["", "short", &"ab".repeat(31), &"zz".repeat(32)] {
        assert!(
            matches!(MasterKey::parse(bad), Err(SecretsError::MasterKeyFormat)),
            "{bad}"
        );
    }
}

#[test]
fn secrets_open_only_under_their_key_and_name() {
    let key = MasterKey::generate();
    let sealed = key.seal("a", b"secret");
    assert_eq!(key.open("a", &sealed).unwrap().as_slice(), b"secret");
    assert!(matches!(
        key.open("b", &sealed),
        Err(SecretsError::WrongMasterKey(_))
    ));
    assert!(MasterKey::generate().open("a", &sealed).is_err());
    let mut flipped = sealed.clone();
    flipped[20] ^= 1;
    assert!(key.open("a", &flipped).is_err());
}

#[test]
fn fields_are_bound_to_their_row_and_indexes_are_keyed() {
    let f = FieldCrypto::new(&[1; 32], &[2; 32]).unwrap();
    let other = FieldCrypto::new(&[3; 32], &[2; 32]).unwrap();
    assert_eq!(f.index("username", "alice"), f.index("username", "alice"));
    assert_ne!(f.index("username", "alice"), f.index("email", "alice"));
    assert_ne!(
        f.index("username", "alice"),
        other.index("username", "alice")
    );
    let sealed = f.seal("username", b"row-1", "alice");
    assert_eq!(
        f.open("username", b"row-1", &sealed).as_deref(),
        Some("alice")
    );
    assert_eq!(
        f.open("username", b"row-2", &sealed),
        None,
        "swapped rows do not open"
    );
    assert_eq!(f.open("email", b"row-1", &sealed), None);
}

#[cfg(unix)]
#[test]
fn key_files_are_created_owner_only_and_reused() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.key");
    assert!(MasterKey::load_or_create(&path, false).is_err());
    let (k1, created) = MasterKey::load_or_create(&path, true).unwrap();
    assert!(created);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let (k2, created) = MasterKey::load_or_create(&path, true).unwrap();
    assert!(!created);
    assert_eq!(*k1.to_text(), *k2.to_text());
}
