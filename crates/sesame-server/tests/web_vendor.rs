//! The browser libraries embedded in the web app are exactly the published ones: `npm ci` on
//! `web/vendor/package-lock.json` (which pins each package by version and integrity hash), then
//! every copy in `web/vendor/` is compared byte for byte with the file npm installed.
//!
//! Needs npm and the npm registry. Skipped (loudly) without npm, unless
//! `SESAME_REQUIRE_SERVICES=1`, when that is a failure.

use std::path::Path;
use std::process::Command;

/// Each embedded copy and the installed file it must equal.
const COPIES: [(&str, &str); 6] = [
    ("opaque.mjs", "@serenity-kit/opaque/esm/index.js"),
    (
        "LICENSE-serenity-kit-opaque.txt",
        "@serenity-kit/opaque/LICENSE",
    ),
    ("libsodium.js", "libsodium/dist/modules/libsodium.js"),
    ("LICENSE-libsodium.txt", "libsodium/LICENSE"),
    (
        "libsodium-wrappers.js",
        "libsodium-wrappers/dist/modules/libsodium-wrappers.js",
    ),
    (
        "LICENSE-libsodium-wrappers.txt",
        "libsodium-wrappers/LICENSE",
    ),
];

#[test]
fn embedded_browser_libraries_match_npm_byte_for_byte() {
    let npm_works = Command::new("npm")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !npm_works {
        let required = std::env::var("SESAME_REQUIRE_SERVICES").as_deref() == Ok("1");
        assert!(!required, "SESAME_REQUIRE_SERVICES=1 but npm is missing");
        eprintln!("*** SKIPPED: web_vendor: npm is missing ***");
        return;
    }
    let vendor = Path::new(env!("CARGO_MANIFEST_DIR")).join("web/vendor");
    let tmp = tempfile::tempdir().unwrap();
    for file in ["package.json", "package-lock.json"] {
        std::fs::copy(vendor.join(file), tmp.path().join(file)).unwrap();
    }
    let out = Command::new("npm")
        .args(["ci", "--ignore-scripts", "--no-audit", "--no-fund"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "npm ci failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let installed = tmp.path().join("node_modules");
    for (copy, published) in COPIES {
        let ours = std::fs::read(vendor.join(copy)).unwrap();
        let theirs = std::fs::read(installed.join(published)).unwrap();
        assert!(
            ours == theirs,
            "web/vendor/{copy} differs from npm's {published}: refresh it from the pinned package"
        );
    }
    // Nothing else is vendored without being checked.
    let mut present: Vec<String> = std::fs::read_dir(&vendor)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with("package"))
        .collect();
    present.sort();
    let mut checked: Vec<String> = COPIES.iter().map(|(c, _)| (*c).to_owned()).collect();
    checked.sort();
    assert_eq!(present, checked);
}
