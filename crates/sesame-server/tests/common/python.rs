//! Python for the tests that check the server against independent implementations (PyNaCl,
//! PyJWT, aiosmtpd, pyotp): whether the modules are installed, and running a script.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, PoisonError};

use super::REQUIRE_SERVICES_ENV;

/// Whether `python3` runs `import_line` (for example `"import nacl"`). Otherwise prints
/// `skip` (once per import, past the test harness's capture) and answers `false`, or, with
/// `SESAME_REQUIRE_SERVICES=1`, panics.
pub fn python_ready(skip: &str, import_line: &str) -> bool {
    static READY: Mutex<BTreeMap<String, Result<(), String>>> = Mutex::new(BTreeMap::new());
    let ready = READY
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(import_line.to_owned())
        .or_insert_with(|| {
            let out = Command::new("python3").args(["-c", import_line]).output();
            let result = match out {
                Ok(o) if o.status.success() => Ok(()),
                Ok(o) => Err(String::from_utf8_lossy(&o.stderr).trim().to_owned()),
                Err(e) => Err(format!("python3: {e}")),
            };
            if let Err(why) = &result {
                if std::env::var(REQUIRE_SERVICES_ENV).as_deref() != Ok("1") {
                    let _ = writeln!(std::io::stderr(), "\n{skip}\n    ({why})\n");
                }
            }
            result
        })
        .clone();
    match ready {
        Ok(()) => true,
        Err(why) if std::env::var(REQUIRE_SERVICES_ENV).as_deref() == Ok("1") => {
            panic!("{skip} ({REQUIRE_SERVICES_ENV}=1): {why}")
        }
        Err(_) => false,
    }
}

/// The path of a script in `tests/py`.
pub fn script(name: &str) -> String {
    format!("{}/tests/py/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Runs `python3 script args…` with `input` on stdin, off the async runtime, and waits for
/// it to end.
pub async fn run(script: String, args: &[&str], input: &[u8]) -> Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let input = input.to_vec();
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new("python3")
            .arg(&script)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run python3");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(&input)
            .unwrap_or_else(|e| panic!("write to {script}: {e}"));
        child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("wait for {script}: {e}"))
    })
    .await
    .expect("python task")
}
