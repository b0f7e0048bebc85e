//! The interactive chat as a person uses it: a real `sesame serve`, and two `sesame chat`
//! processes in real terminals (tmux), typed into with `send-keys` and read with
//! `capture-pane`.
//!
//! Skipped (loudly) when tmux is not installed, unless `SESAME_REQUIRE_SERVICES=1`, when its
//! absence fails the test. `apt-get install -y tmux` provides it.

// Bounds on waits for sockets and processes: wall time on purpose.
#![allow(clippy::disallowed_methods)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use common::{command, ok, serve, Server, PASSWORD, SESAME};

/// How long a line may take to appear on a screen.
const WAIT: Duration = Duration::from_secs(20);

/// A private tmux server (its own socket), killed when dropped.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> Output {
        command("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux")
    }

    /// Opens a 150x40 terminal named `name` running `sesame chat PEER` with profile `home`.
    fn chat(&self, name: &str, server: &Server, home: &Path, peer: &str) {
        // The pane stays after the chat exits, so its last screen can still be read.
        let line = format!(
            "env SESAME_HOME='{}' SESAME_SERVER='{}' '{SESAME}' chat {peer}; echo '[chat exited]'; sleep 60",
            home.display(),
            server.url
        );
        let out = self.run(&[
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            "150",
            "-y",
            "40",
            &line,
        ]);
        assert!(out.status.success(), "tmux new-session: {out:?}");
    }

    fn type_line(&self, name: &str, text: &str) {
        let out = self.run(&["send-keys", "-t", name, "-l", text]);
        assert!(out.status.success(), "tmux send-keys: {out:?}");
        let out = self.run(&["send-keys", "-t", name, "Enter"]);
        assert!(out.status.success(), "tmux send-keys: {out:?}");
    }

    fn screen(&self, name: &str) -> String {
        let out = self.run(&["capture-pane", "-p", "-J", "-t", name]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen of `name` shows a line containing every part of `parts`.
    fn wait_for(&self, name: &str, parts: &[&str]) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let screen = self.screen(name);
            if screen
                .lines()
                .any(|line| parts.iter().all(|p| line.contains(p)))
            {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "the screen of {name} never showed a line with {parts:?}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(150));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

fn tmux_available() -> bool {
    let required = std::env::var("SESAME_REQUIRE_SERVICES").as_deref() == Ok("1");
    let found = command("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            !required,
            "SESAME_REQUIRE_SERVICES=1 but tmux is not installed (apt-get install -y tmux)"
        );
        eprintln!("SKIPPED: chat_tmux: tmux is not installed (apt-get install -y tmux)");
    }
    found
}

#[test]
fn two_people_chat_in_real_terminals() {
    if !tmux_available() {
        return;
    }
    let server = serve();
    let tmp = tempfile::tempdir().unwrap();
    let pw = format!("{PASSWORD}\n");
    let alice = tmp.path().join("alice");
    let bob = tmp.path().join("bob");
    for (name, home) in [("alice", &alice), ("bob", &bob)] {
        ok(&server, home, &["register", name, "--password-stdin"], &pw);
        let out = ok(&server, home, &["login", name, "--password-stdin"], &pw);
        assert!(out.contains("Messaging: "), "{out}");
    }
    // Sent while alice is not chatting: waiting on the server.
    let out = ok(&server, &bob, &["send", "alice", "are you there?"], "");
    assert!(out.contains("Sent to alice"), "{out}");

    let tmux = Tmux {
        socket: tmp.path().join("tmux.sock"),
    };
    tmux.chat("alice", &server, &alice, "bob");
    // The waiting message is delivered when alice opens the chat.
    tmux.wait_for("alice", &["bob (unverified", "are you there?"]);
    tmux.chat("bob", &server, &bob, "alice");
    tmux.wait_for("bob", &["Type a message"]);
    // bob's history shows what he sent before.
    tmux.wait_for("bob", &["you: are you there?"]);

    // Live, both ways, while the other side is sitting at its prompt.
    tmux.type_line("alice", "yes, hello bob!");
    tmux.wait_for("alice", &["(sent)"]);
    tmux.wait_for("bob", &["alice (unverified", "yes, hello bob!"]);
    tmux.type_line("bob", "great, the relay works");
    tmux.wait_for("alice", &["bob (unverified)", "great, the relay works"]);

    // After comparing the safety number, bob's chat shows alice as verified.
    let number = ok(&server, &bob, &["keys", "verify", "alice"], "");
    let theirs = ok(&server, &alice, &["keys", "verify", "bob"], "");
    let digits = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| l.starts_with("    ") && l.trim().split(' ').count() == 6)
            .map(|l| l.trim().to_owned())
            .collect()
    };
    assert_eq!(digits(&number).len(), 2, "{number}");
    assert_eq!(digits(&number), digits(&theirs));
    ok(&server, &bob, &["keys", "verify", "alice", "--confirm"], "");
    tmux.type_line("alice", "verified now?");
    tmux.wait_for("bob", &["alice (verified)", "verified now?"]);

    // A message with terminal escape codes cannot repaint the other screen.
    tmux.type_line("alice", "\u{1b}[2Jgotcha");
    tmux.wait_for("bob", &["alice (verified)", "[2Jgotcha"]);
    let screen = tmux.screen("bob");
    assert!(screen.contains("great, the relay works"), "{screen}");

    // A mistyped command is never sent; `//` sends a leading slash.
    tmux.type_line("alice", "/frobnicate now");
    tmux.wait_for("alice", &["unknown command /frobnicate: nothing was sent"]);
    tmux.type_line("alice", "//shrug");
    tmux.wait_for("bob", &["alice (verified)", "/shrug"]);
    let screen = tmux.screen("bob");
    assert!(!screen.contains("frobnicate"), "{screen}");

    tmux.type_line("alice", "/quit");
    tmux.wait_for("alice", &["[chat exited]"]);
    tmux.type_line("bob", "/quit");
    tmux.wait_for("bob", &["[chat exited]"]);

    // Everything was read and acknowledged; the histories stay on each side.
    let out = ok(&server, &alice, &["inbox", "--wait", "0.5"], "");
    assert!(out.contains("No new messages"), "{out}");
}
