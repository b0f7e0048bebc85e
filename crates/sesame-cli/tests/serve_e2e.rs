//! What `sesame serve` says: the configuration file and the database it uses, a mistyped key
//! with the nearest known one, and a taken address once.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{sesame_command, stdout_lines, Process, LISTENING};

#[test]
fn serve_names_its_files_and_explains_its_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("sesame.toml");
    std::fs::write(&config, "listne = \"127.0.0.1:0\"\n").unwrap();
    let out = sesame_command()
        .args(["serve", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(tmp.path().join("data"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("unknown key `listne`") && err.contains("did you mean `listen`?"),
        "{err}"
    );
    assert!(
        !err.contains("tcp_max_connections"),
        "no list of every key: {err}"
    );

    // A good file: named at start, with the database's path.
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\n").unwrap();
    let mut child = sesame_command()
        .args(["serve", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(tmp.path().join("data"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = stdout_lines(&mut child);
    let _server = Process(Some(child));
    let mut said = Vec::new();
    let url = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(60))
            .expect("serve starts");
        if let Some(url) = line.strip_prefix(LISTENING) {
            break url.trim().to_owned();
        }
        said.push(line);
    };
    let said = said.join("\n");
    let canonical = std::fs::canonicalize(&config).unwrap();
    assert!(
        said.contains(&format!("sesame: configuration {}", canonical.display())),
        "{said}"
    );
    assert!(
        said.contains("sesame: database sqlite /") && said.contains("sesame.db"),
        "{said}"
    );

    // The same address again: one clear line, the cause said once.
    let addr = url.trim_start_matches("http://");
    let out = sesame_command()
        .args(["serve", "--listen", addr, "--data-dir"])
        .arg(tmp.path().join("other"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(err.matches("Address already in use").count(), 1, "{err}");
}
