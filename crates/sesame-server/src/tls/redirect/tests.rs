use super::https_location;
use axum::http::{HeaderMap, HeaderValue, Uri};

fn location(host: &str, uri: &str, port: u16) -> Option<String> {
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_str(host).unwrap());
    https_location(&headers, &uri.parse::<Uri>().unwrap(), port)
}

#[test]
fn redirects_keep_host_path_and_query() {
    assert_eq!(
        location("example.com:80", "/a/b?c=d", 443).as_deref(),
        Some("https://example.com/a/b?c=d")
    );
    assert_eq!(
        location("[::1]:8080", "/", 8443).as_deref(),
        Some("https://[::1]:8443/")
    );
    assert_eq!(location("bad host", "/", 443), None);
    assert_eq!(
        https_location(&HeaderMap::new(), &"/".parse().unwrap(), 443),
        None
    );
}
