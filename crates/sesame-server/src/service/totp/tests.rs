use super::TOTP_DIGITS;
use totp_rs::{Algorithm, TOTP};

/// RFC 6238 Appendix B, SHA-1 rows (8 digits, the RFC's 20-byte ASCII secret), through
/// the same library and step arithmetic the server uses.
#[test]
fn rfc6238_appendix_b_sha1_vectors() {
    let totp = TOTP::new(
        Algorithm::SHA1,
        8,
        1,
        30,
        b"12345678901234567890".to_vec(),
        None,
        String::new(),
    )
    .unwrap();
    for (time, code) in [
        (59u64, "94287082"),
        (1_111_111_109, "07081804"),
        (1_111_111_111, "14050471"),
        (1_234_567_890, "89005924"),
        (2_000_000_000, "69279037"),
        (20_000_000_000, "65353130"),
    ] {
        assert_eq!(totp.generate(time), code, "T = {time}");
    }
    let six = TOTP::new(
        Algorithm::SHA1,
        TOTP_DIGITS,
        1,
        30,
        b"12345678901234567890".to_vec(),
        None,
        String::new(),
    )
    .unwrap();
    assert_eq!(
        six.generate(59),
        "287082",
        "6 digits are the low digits of the same value"
    );
}
