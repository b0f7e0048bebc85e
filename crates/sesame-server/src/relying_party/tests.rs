use super::RelyingParty;

#[test]
fn defaults_follow_the_issuer_and_map_addresses_to_localhost() {
    let (id, origins) = RelyingParty::defaults_for("http://127.0.0.1:7878");
    assert_eq!(
        (id.as_str(), origins[0].as_str()),
        ("localhost", "http://localhost:7878")
    );
    let (id, origins) = RelyingParty::defaults_for("https://login.example.com");
    assert_eq!(id, "login.example.com");
    assert_eq!(origins, vec!["https://login.example.com".to_owned()]);
    assert_eq!(RelyingParty::development().id(), "localhost");
}

#[test]
fn origins_that_cannot_match_are_refused() {
    let ok = |id: &str, o: &str| RelyingParty::new(id, &[o.to_owned()]).is_ok();
    assert!(ok("example.com", "https://login.example.com"));
    assert!(ok("localhost", "http://localhost:8080"));
    assert!(!ok("example.com", "https://example.org"));
    assert!(!ok("example.com", "https://notexample.com"));
    assert!(!ok("example.com", "http://example.com"));
    assert!(!ok("127.0.0.1", "http://127.0.0.1:7878"));
    assert!(!ok("localhost", "http://127.0.0.1:7878"));
    assert!(!ok("example.com", "https://example.com/path"));
    assert!(RelyingParty::new("example.com", &[]).is_err());
    // Derived from a plain-HTTP issuer on a domain: accepted, so such a server still starts.
    assert!(RelyingParty::derived("http://chat.internal:7878").is_ok());
}
