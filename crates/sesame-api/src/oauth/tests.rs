use super::*;

#[test]
fn codes_round_trip_their_rfc_strings() {
    for c in OAuthErrorCode::ALL {
        assert_eq!(OAuthErrorCode::parse(c.as_str()), Some(c));
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json, format!("\"{}\"", c.as_str()));
    }
    assert_eq!(OAuthErrorCode::InvalidClient.status(), 401);
}
