//! The web app in a real browser: `sesame serve` on a loopback port, and Debian's Chromium
//! driven by playwright-core (`tests/web/flows.mjs`) through sign-up, sign-in with both second
//! factors, session revocation, the cookie and CSRF rules, recovery, chat between two browsers
//! and between a browser and the CLI, and the admin page.
//!
//! Needs Node.js, `/usr/bin/chromium` (`apt-get install -y chromium`) and `npm ci --prefix
//! crates/sesame-cli/tests/web`. Skipped (loudly) when one is missing, unless
//! `SESAME_REQUIRE_SERVICES=1`, when that is a failure. Screenshots (of every page on a failure,
//! and of the app at 375 px and on a desktop) go to `target/web-screenshots`.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{command, serve};

/// The whole browser run may take this long before it is killed.
const RUN_TIMEOUT: Duration = Duration::from_secs(600);

fn web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/web")
}

/// What is missing to run the browser test, if anything.
fn missing() -> Option<&'static str> {
    if !Path::new("/usr/bin/chromium").exists() {
        return Some("Chromium (apt-get install -y chromium)");
    }
    if !command("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return Some("Node.js");
    }
    if !web_dir().join("node_modules/playwright-core").exists() {
        return Some("playwright-core (npm ci --prefix crates/sesame-cli/tests/web)");
    }
    None
}

#[test]
fn the_web_app_in_chromium() {
    if let Some(what) = missing() {
        let required = std::env::var("SESAME_REQUIRE_SERVICES").as_deref() == Ok("1");
        assert!(!required, "SESAME_REQUIRE_SERVICES=1 but {what} is missing");
        eprintln!("*** SKIPPED: web: {what} is missing ***");
        return;
    }
    let server = serve();
    let ok = common::oidc::run_node(
        &web_dir().join("flows.mjs"),
        &server.url,
        &server.data_dir(),
        &[],
        RUN_TIMEOUT,
    );
    assert!(
        ok,
        "a browser flow failed (its output is above; screenshots in target/web-screenshots)"
    );
}
