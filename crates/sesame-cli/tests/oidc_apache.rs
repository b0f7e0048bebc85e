//! Apache httpd with mod_auth_openidc as a relying party of Sesame: Chromium opens a
//! protected page, is sent to Sesame, signs in, and sees the page with the user's claims;
//! logging out at the application ends both sessions (`tests/web/oidc_apache.mjs`). Apache
//! runs on a loopback port with its own configuration (`tests/oidc/httpd.conf`, the file
//! docs/oidc.md shows), started and stopped here. Needs `apache2`,
//! `libapache2-mod-auth-openidc`, Chromium and `npm ci --prefix crates/sesame-cli/tests/web`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::oidc::{free_port, run_node, serve_with_issuer, wait_for_port};
use common::{Process, SESAME};

const APACHE: &str = "/usr/sbin/apache2";
const MODULE: &str = "/usr/lib/apache2/modules/mod_auth_openidc.so";

fn missing() -> Option<&'static str> {
    if !Path::new(APACHE).exists() || !Path::new(MODULE).exists() {
        return Some("apache2 and libapache2-mod-auth-openidc (apt-get install)");
    }
    if !Path::new("/usr/bin/chromium").exists() {
        return Some("Chromium (apt-get install -y chromium)");
    }
    if !web_dir().join("node_modules/playwright-core").exists() {
        return Some("playwright-core (npm ci --prefix crates/sesame-cli/tests/web)");
    }
    None
}

fn web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/web")
}

/// Apache in the foreground; stopped (gracefully, with its children) when dropped.
struct Apache {
    conf: PathBuf,
    process: Process,
}

impl Drop for Apache {
    fn drop(&mut self) {
        let _ = Command::new(APACHE)
            .arg("-f")
            .arg(&self.conf)
            .args(["-k", "stop"])
            .status();
        if let Some(child) = self.process.0.as_mut() {
            let _ = child.wait();
        }
        self.process.0 = None;
    }
}

/// Registers the client and starts Apache with `tests/oidc/httpd.conf` filled in.
fn apache(dir: &Path, sesame: &str, data: &Path) -> (Apache, String) {
    let port = free_port();
    let app = format!("http://localhost:{port}");
    let out = Command::new(SESAME)
        .args(["admin", "--data-dir"])
        .arg(data)
        .args([
            "--json",
            "oidc",
            "client",
            "add",
            "Apache",
            "--consent",
            "skip",
        ])
        .args(["--redirect-uri", &format!("{app}/protected/redirect_uri")])
        .args([
            "--post-logout-redirect-uri",
            &format!("{app}/loggedout.html"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let client: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let docs = dir.join("htdocs");
    std::fs::create_dir_all(docs.join("protected")).unwrap();
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc");
    for page in ["protected/index.shtml", "loggedout.html"] {
        std::fs::copy(here.join(page), docs.join(page)).unwrap();
    }
    let template = std::fs::read_to_string(here.join("httpd.conf")).unwrap();
    let conf = template
        .replace("@DIR@", &dir.display().to_string())
        .replace("@PORT@", &port.to_string())
        .replace("@ISSUER@", sesame)
        .replace("@APP@", &app)
        .replace("@CLIENT_ID@", client["client_id"].as_str().unwrap())
        .replace("@CLIENT_SECRET@", client["client_secret"].as_str().unwrap());
    let conf_path = dir.join("httpd.conf");
    std::fs::write(&conf_path, conf).unwrap();
    // Apache's workers run as www-data: they read the pages, nothing else of the test's.
    use std::os::unix::fs::PermissionsExt as _;
    for p in [dir.to_path_buf(), docs.clone(), docs.join("protected")] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let child = Command::new(APACHE)
        .arg("-f")
        .arg(&conf_path)
        .arg("-DFOREGROUND")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let apache = Apache {
        conf: conf_path,
        process: Process(Some(child)),
    };
    let log = dir.join("error.log");
    assert!(
        wait_for_port(port, Duration::from_secs(20)),
        "Apache did not start: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
    (apache, app)
}

#[test]
fn mod_auth_openidc_signs_in_through_sesame() {
    if let Some(what) = missing() {
        let required = std::env::var("SESAME_REQUIRE_SERVICES").as_deref() == Ok("1");
        assert!(!required, "SESAME_REQUIRE_SERVICES=1 but {what} is missing");
        eprintln!("*** SKIPPED: oidc_apache: {what} is missing ***");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (_server, url) = serve_with_issuer(&data);
    let (apache, app) = apache(dir.path(), &url, &data);
    let ok = run_node(
        &web_dir().join("oidc_apache.mjs"),
        &url,
        &data,
        &[("APP_URL", app)],
        Duration::from_secs(180),
    );
    let log = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
    drop(apache);
    assert!(
        ok,
        "the mod_auth_openidc flow failed (output above). Apache's log:\n{log}"
    );
}
