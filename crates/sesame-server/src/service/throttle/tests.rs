use super::ThrottleSettings;

#[test]
fn delays_double_after_the_free_attempts_and_are_capped() {
    let t = ThrottleSettings::default();
    let delays: Vec<u64> = (1..=17).map(|n| t.delay_for(n)).collect();
    assert_eq!(
        delays,
        [0, 0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900]
    );
    assert_eq!(t.delay_for(u64::MAX), 900);
    // The limiter rule closes the same gates.
    let backoff = t.account_rule().backoff.unwrap();
    for n in 1..=40 {
        assert_eq!(backoff.delay_ms(n), t.delay_for(n) * 1000, "attempt {n}");
    }
}
