use super::parse_fingerprint;
use crate::profile::{Profile, ProfileError, Trust};

#[test]
fn fingerprints_round_trip() {
    let hash = [0xAB; 32];
    let text = crate::tls::certificate_fingerprint(&hash);
    assert_eq!(parse_fingerprint(&text), Some(hash));
    assert_eq!(parse_fingerprint("AB:CD"), None);
    assert_eq!(parse_fingerprint("not hex"), None);
}

#[test]
fn first_certificate_is_pinned_and_a_changed_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let profile = Profile::at(dir.path());
    let server = "https://127.0.0.1:7878";
    assert_eq!(profile.pinned_tls_certificate(server).unwrap(), None);
    let first = [1u8; 32];
    assert_eq!(
        profile.trust_tls_certificate(server, &first).unwrap(),
        Trust::Pinned
    );
    assert_eq!(
        profile.trust_tls_certificate(server, &first).unwrap(),
        Trust::AlreadyPinned
    );
    let err = profile
        .trust_tls_certificate(server, &[2u8; 32])
        .unwrap_err();
    assert!(matches!(err, ProfileError::TlsCertificateChanged { .. }));
    let text = err.to_string();
    assert!(
        text.contains(&crate::tls::certificate_fingerprint(&first)),
        "{text}"
    );
    assert!(text.contains("known_tls_certs.json"), "{text}");
    assert!(profile.forget_tls_certificate(server).unwrap());
    assert_eq!(profile.pinned_tls_certificate(server).unwrap(), None);
}
