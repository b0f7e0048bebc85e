//! The command line explains itself: examples and the environment in `--help`, how to leave
//! the chat, and shell completions generated from the same definition.

mod common;

use common::sesame_command;

fn run(args: &[&str]) -> String {
    let out = sesame_command().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn help_has_examples_and_the_environment() {
    let help = run(&["--help"]);
    for needle in [
        "Examples:",
        "sesame register alice",
        "SESAME_HOME",
        "SESAME_SERVER",
    ] {
        assert!(help.contains(needle), "{needle} missing from:\n{help}");
    }
    let chat = run(&["chat", "--help"]);
    assert!(chat.contains("/quit (or Ctrl-D) leaves"), "{chat}");
}

#[test]
fn completions_cover_every_command() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = run(&["completions", shell]);
        for command in [
            "register",
            "login",
            "send",
            "chat",
            "serve",
            "admin",
            "completions",
        ] {
            assert!(script.contains(command), "{shell}: {command} missing");
        }
    }
    // bash accepts what it generates.
    let script = run(&["completions", "bash"]);
    let mut bash = std::process::Command::new("bash")
        .arg("-n")
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut bash.stdin.take().unwrap(), script.as_bytes()).unwrap();
    let check = bash.wait_with_output().unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}
