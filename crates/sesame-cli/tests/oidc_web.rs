//! Sesame as an OpenID Connect provider for `openid-client` (Node), with Debian's Chromium
//! signing in through the web app (password and authenticator code) and consenting:
//! `tests/web/oidc.mjs`. Needs Chromium and `npm ci --prefix crates/sesame-cli/tests/web`;
//! skipped loudly without them, failing under `SESAME_REQUIRE_SERVICES=1`.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::oidc::{run_node, serve_with_issuer};

const RUN_TIMEOUT: Duration = Duration::from_secs(300);

fn web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/web")
}

fn missing() -> Option<&'static str> {
    if !Path::new("/usr/bin/chromium").exists() {
        return Some("Chromium (apt-get install -y chromium)");
    }
    if !web_dir().join("node_modules/openid-client").exists() {
        return Some("openid-client (npm ci --prefix crates/sesame-cli/tests/web)");
    }
    None
}

#[test]
fn openid_client_signs_in_through_sesame_in_chromium() {
    if let Some(what) = missing() {
        let required = std::env::var("SESAME_REQUIRE_SERVICES").as_deref() == Ok("1");
        assert!(!required, "SESAME_REQUIRE_SERVICES=1 but {what} is missing");
        eprintln!("*** SKIPPED: oidc_web: {what} is missing ***");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (_server, url) = serve_with_issuer(&data);
    let ok = run_node(&web_dir().join("oidc.mjs"), &url, &data, &[], RUN_TIMEOUT);
    assert!(
        ok,
        "an OpenID Connect flow failed (output above; screenshots in target/web-screenshots)"
    );
}
