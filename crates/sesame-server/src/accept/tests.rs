//! The descriptor split and the accept back-off.

use super::*;

#[test]
fn caps_fit_the_descriptor_limit() {
    let unlimited = DescriptorBudget {
        soft: None,
        hard: None,
    };
    assert_eq!(unlimited.caps(8192, 4096), (8192, 4096));
    let roomy = DescriptorBudget {
        soft: Some(1 << 20),
        hard: Some(1 << 20),
    };
    assert_eq!(roomy.caps(8192, 4096), (8192, 4096));
    let tight = DescriptorBudget {
        soft: Some(1024),
        hard: Some(1024),
    };
    let (http, tcp) = tight.caps(8192, 4096);
    assert!(
        http + tcp <= 1024 - RESERVED_DESCRIPTORS as usize,
        "{http} {tcp}"
    );
    assert!(http > tcp && tcp >= 16);
}

#[tokio::test(start_paused = true)]
async fn resource_errors_back_off_and_connection_errors_do_not() {
    let mut errors = AcceptErrors::new("test");
    let start = Instant::now();
    errors
        .failed(&io::Error::from(io::ErrorKind::ConnectionAborted))
        .await;
    assert_eq!(start.elapsed(), Duration::ZERO);
    let emfile = io::Error::from_raw_os_error(24);
    for _ in 0..10 {
        errors.failed(&emfile).await;
    }
    // 10 + 20 + … capped at 1 s.
    assert!(
        start.elapsed() >= Duration::from_millis(4000),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(errors.delay, BACKOFF_MAX);
    assert_eq!(errors.unlogged, 9, "one line logged, the rest counted");
    errors.accepted();
    assert_eq!(errors.delay, BACKOFF_MIN);
}
