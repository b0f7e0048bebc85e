use super::*;

#[test]
fn addresses_are_validated_and_the_domain_lowercased() {
    let ok = |s: &str| EmailAddress::parse(s).map(|e| e.as_str().to_owned());
    assert_eq!(ok("Alice@Example.COM").unwrap(), "Alice@example.com");
    assert_eq!(ok("bob@localhost").unwrap(), "bob@localhost");
    assert_eq!(
        ok("a.b+tag@mail.example.org").unwrap(),
        "a.b+tag@mail.example.org"
    );
    let long = format!("{}@example.com", "a".repeat(243));
    assert_eq!(long.len(), 255);
    for bad in [
        "",
        "plain",
        "@example.com",
        "alice@",
        "a@b@example.com",
        "alice@example",
        "ali ce@example.com",
        " bob@example.com",
        "bob@example.com\n",
        "alice@exa\tmple.com",
        "alice\r\n@example.com",
        "alice@.example.com",
        "alice@example..com",
        "alice@example.com.",
        "al\u{7}ice@example.com",
        long.as_str(),
    ] {
        let err = EmailAddress::parse(bad).unwrap_err();
        assert_eq!(err.code, InputError::EmailInvalid.into(), "{bad:?}");
    }
    assert!(ok(&format!("{}@example.com", "a".repeat(60))).is_ok());
}

#[test]
fn codes_are_six_digits() {
    let rng = Rng::seeded(7);
    for _ in 0..200 {
        let c = new_code(&rng);
        assert_eq!(c.len(), 6);
        assert!(c.bytes().all(|b| b.is_ascii_digit()));
    }
}
