use super::*;

#[test]
fn times_print_in_utc() {
    assert_eq!(fmt_time(0), "1970-01-01 00:00:00 UTC");
    assert_eq!(fmt_time(1_767_225_600), "2026-01-01 00:00:00 UTC");
    assert_eq!(fmt_time(951_825_599), "2000-02-29 11:59:59 UTC");
    assert_eq!(fmt_time(4_102_444_800), "2100-01-01 00:00:00 UTC");
    assert_eq!(fmt_time(-1), "1969-12-31 23:59:59 UTC");
}

#[test]
fn stdin_passwords_lose_only_the_line_ending() {
    let p = |s: &str| password_from_line(Zeroizing::new(s.to_owned()));
    assert_eq!(p("secret pw\n").unwrap().as_str(), "secret pw");
    assert_eq!(p("secret pw\r\n").unwrap().as_str(), "secret pw");
    assert_eq!(p(" spaced \n").unwrap().as_str(), " spaced ");
    assert_eq!(p("no newline").unwrap().as_str(), "no newline");
    assert!(p("\n").is_err());
    assert!(p("").is_err());
}

#[test]
fn loopback_hosts_are_recognised() {
    let url = |s: &str| sesame_client::parse_server_url(s).unwrap();
    assert!(is_loopback(&url("http://127.0.0.1:7878")));
    assert!(is_loopback(&url("http://localhost:7878")));
    assert!(is_loopback(&url("http://[::1]:7878")));
    assert!(!is_loopback(&url("http://example.com")));
    assert!(!is_loopback(&url("http://10.0.0.1")));
}
