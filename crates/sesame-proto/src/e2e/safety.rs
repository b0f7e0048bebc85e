//! Safety numbers: what two users compare out of band to verify each other's keys.

use sha2::{Digest as _, Sha512};

use super::{put_lp, PublicIdentity, SAFETY_NUMBER_CONTEXT};

/// The safety number of two users, the same on both sides: 60 decimal digits in 12 groups of
/// 5 separated by single spaces.
///
/// Derivation: the two `(username, signing_key, encryption_key)` tuples are ordered by
/// username (bytewise; then by the keys if the usernames are equal); `H` = SHA-512 of
/// [`SAFETY_NUMBER_CONTEXT`] `|| lp(user1) || lp(sign1) || lp(enc1) || lp(user2) || lp(sign2)
/// || lp(enc2)` with `lp` as in [`signing_bytes`](super::signing_bytes). Group `i` (0..12) is the big-endian
/// integer of `H[5i..5i+5]` (40 bits) modulo 100000, zero-padded to 5 digits. (The first 60
/// of the 64 bytes are used; the bias of 2^40 mod 10^5 is below 10^-7.)
pub fn safety_number(
    a_username: &str,
    a: &PublicIdentity,
    b_username: &str,
    b: &PublicIdentity,
) -> String {
    let ta = (a_username.as_bytes(), &a.signing_key, &a.encryption_key);
    let tb = (b_username.as_bytes(), &b.signing_key, &b.encryption_key);
    let (first, second) = if ta <= tb { (ta, tb) } else { (tb, ta) };
    let mut buf = Vec::new();
    for (user, sign, enc) in [first, second] {
        put_lp(&mut buf, user);
        put_lp(&mut buf, sign);
        put_lp(&mut buf, enc);
    }
    let mut h = Sha512::new();
    h.update(SAFETY_NUMBER_CONTEXT);
    h.update(&buf);
    let digest = h.finalize();
    digest[..60]
        .chunks(5)
        .map(|c| {
            let n = c.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x));
            format!("{:05}", n % 100_000)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------------------------------
// Relay frames (WebSocket `/ws`)
// ---------------------------------------------------------------------------------------
