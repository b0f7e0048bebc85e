//! `sesame admin` never creates an installation, and `sesame serve` creates one only in an
//! absent or empty directory, saying where (a mistyped `--data-dir` used to give a fresh,
//! empty installation and a new master key, silently).

mod common;

use std::process::Stdio;

use common::sesame_command;

#[test]
fn admin_on_a_directory_without_sesame_data_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sesame-data");
    let out = sesame_command()
        .args(["admin", "--data-dir"])
        .arg(&dir)
        .args(["users", "list"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no Sesame data in"), "{err}");
    assert!(err.contains("pass --data-dir or --database-url"), "{err}");
    assert!(err.contains(&dir.display().to_string()), "{err}");
    assert!(!dir.exists(), "admin created {}", dir.display());
}

#[test]
fn serve_refuses_a_directory_with_other_files_and_names_a_new_one() {
    let tmp = tempfile::tempdir().unwrap();
    let busy = tmp.path().join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("notes.txt"), "not sesame").unwrap();
    let out = sesame_command()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&busy)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is not empty and holds no Sesame database"),
        "{err}"
    );
    assert!(!busy.join("master.key").exists());
    assert!(!busy.join("sesame.db").exists());

    // An absent directory is a new installation, announced with its absolute path.
    let fresh = tmp.path().join("fresh");
    let mut child = sesame_command()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&fresh)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = common::stdout_lines(&mut child);
    let wanted = format!("sesame: creating a new installation in {}", fresh.display());
    let mut seen = Vec::new();
    let found = loop {
        match lines.recv_timeout(std::time::Duration::from_secs(30)) {
            Ok(line) if line == wanted => break true,
            Ok(line) if line.starts_with(common::LISTENING) => break false,
            Ok(line) => seen.push(line),
            Err(_) => break false,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(found, "no `{wanted}` line: {seen:?}");
}
