use super::check_loopback;

#[test]
fn brokers_must_be_on_loopback() {
    for ok in [
        "nats://127.0.0.1:4222",
        "redis://127.0.0.1:6379",
        "redis://localhost",
        "nats://[::1]:4222",
        "redis://user:pw@127.0.0.1:6379/0",
    ] {
        assert!(check_loopback(ok).is_ok(), "{ok}");
    }
    for bad in [
        "nats://10.0.0.1:4222",
        "redis://example.com:6379",
        "redis://127.0.0.1@example.com",
    ] {
        assert!(check_loopback(bad).is_err(), "{bad}");
    }
}
