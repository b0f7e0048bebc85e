use super::*;
use crate::ClientPolicy;

#[test]
fn relay_url_follows_the_base() {
    let c = Client::new("http://127.0.0.1:7878", ClientPolicy::default()).unwrap();
    assert_eq!(c.relay_url().unwrap().as_str(), "ws://127.0.0.1:7878/ws");
    let c = Client::new("https://example.com/sesame/", ClientPolicy::default()).unwrap();
    assert_eq!(
        c.relay_url().unwrap().as_str(),
        "wss://example.com/sesame/ws"
    );
}

#[test]
fn unknown_frames_are_skipped_and_bad_ones_refused() {
    assert!(parse_frame(r#"{"type":"backlog_done"}"#).unwrap().is_none());
    assert!(parse_frame(r#"{"no":"type"}"#).unwrap().is_none());
    assert!(parse_frame("not json").is_err());
    assert!(parse_frame(r#"{"type":"accepted"}"#).is_err());
    assert_eq!(
        parse_frame(r#"{"type":"accepted","id":"a"}"#).unwrap(),
        Some(ServerFrame::Accepted { id: "a".into() })
    );
}
