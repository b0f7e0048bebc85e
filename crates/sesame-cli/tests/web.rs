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
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{command, serve, Process, SESAME};

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
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/web-screenshots");
    let child = command("node")
        .arg(web_dir().join("flows.mjs"))
        .env("SESAME_URL", &server.url)
        .env("SESAME_BIN", SESAME)
        .env("SESAME_DATA_DIR", server.data_dir())
        .env("SESAME_SCREENSHOTS", &shots)
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node starts");
    let mut node = Process(Some(child));
    let deadline = Instant::now() + RUN_TIMEOUT;
    let status = loop {
        let child = node.0.as_mut().unwrap();
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the browser run took over {RUN_TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    node.0 = None;
    assert!(
        status.success(),
        "a browser flow failed (its output is above; screenshots in {})",
        shots.display()
    );
}
