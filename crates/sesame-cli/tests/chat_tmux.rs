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
use std::time::Duration;

use common::{command, ok, serve, serve_at, Server, PASSWORD, SESAME};

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
        // The pane stays after the chat exits, so its last screen can still be read; it
        // then shows the terminal's line mode (`stty`), which the editor must have restored.
        let line = format!(
            "env SESAME_HOME='{}' SESAME_SERVER='{}' '{SESAME}' chat {peer}; echo '[chat exited]'; \
             stty -a | tr ' ' '\\n' | grep -x -e '-*icanon' -e '-*echo' | tr '\\n' ' '; \
             echo '[mode]'; sleep 60",
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
        self.type_text(name, text);
        self.press(name, "Enter");
    }

    /// Types `text` without pressing Enter.
    fn type_text(&self, name: &str, text: &str) {
        let out = self.run(&["send-keys", "-t", name, "-l", text]);
        assert!(out.status.success(), "tmux send-keys: {out:?}");
    }

    /// Presses one key (tmux's name for it: `Enter`, `Up`, `C-u`).
    fn press(&self, name: &str, key: &str) {
        let out = self.run(&["send-keys", "-t", name, key]);
        assert!(out.status.success(), "tmux send-keys: {out:?}");
    }

    fn screen(&self, name: &str) -> String {
        let out = self.run(&["capture-pane", "-p", "-J", "-t", name]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen of `name` shows a line containing every part of `parts`.
    fn wait_for(&self, name: &str, parts: &[&str]) -> String {
        let has = |screen: &str| {
            screen
                .lines()
                .any(|line| parts.iter().all(|p| line.contains(p)))
        };
        self.until(name, &format!("a line with {parts:?}"), has)
    }

    /// Waits until the last line of the screen of `name` is `line` (the prompt and what is
    /// typed on it).
    fn wait_for_last_line(&self, name: &str, line: &str) -> String {
        self.until(name, &format!("the last line {line:?}"), |s| {
            last_line(s) == line
        })
    }

    /// Waits (at most [`WAIT`]) until the screen of `name` satisfies `ok`; fails naming `what`.
    fn until(&self, name: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let mut seen = String::new();
        let found = common::poll_until(WAIT, || {
            seen = self.screen(name);
            ok(&seen).then(|| seen.clone())
        });
        found.unwrap_or_else(|| panic!("the screen of {name} never showed {what}:\n{seen}"))
    }

    /// Watches the screen of `name` for `window`, failing as soon as `bad` holds for it.
    fn never_for(&self, name: &str, window: Duration, bad: impl Fn(&str) -> bool) {
        let shown = common::poll_until(window, || Some(self.screen(name)).filter(|s| bad(s)));
        assert!(
            shown.is_none(),
            "unexpected screen of {name}:\n{}",
            shown.unwrap_or_default()
        );
    }
}

/// The last line of a screen that is not blank, without trailing spaces.
fn last_line(screen: &str) -> &str {
    screen
        .lines()
        .rev()
        .map(str::trim_end)
        .find(|l| !l.is_empty())
        .unwrap_or("")
}

/// Whether `screen` has a line `[HH:MM] you: TEXT`: one's own message, as the server took it.
fn shows_own(screen: &str, text: &str) -> bool {
    screen.lines().any(|l| {
        let l = l.trim_end();
        let b = l.as_bytes();
        l.len() > 8
            && b[0] == b'['
            && b[1..3].iter().all(u8::is_ascii_digit)
            && b[3] == b':'
            && b[4..6].iter().all(u8::is_ascii_digit)
            && l.get(6..) == Some(format!("] you: {text}").as_str())
    })
}

/// Waits until `name` shows `text` as its own message.
fn wait_for_own(tmux: &Tmux, name: &str, text: &str) -> String {
    let what = format!("its own message {text:?} as `[HH:MM] you:`");
    tmux.until(name, &what, |s| shows_own(s, text))
}

/// Waits until the chat of `name` has exited and checks that it gave the terminal back in
/// line mode with echo (not left in the editor's raw mode).
fn wait_for_exit(tmux: &Tmux, name: &str) -> String {
    let screen = tmux.wait_for(name, &["[mode]"]);
    assert!(screen.contains("[chat exited]"), "{screen}");
    assert!(screen.contains("icanon echo [mode]"), "{screen}");
    screen
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
    let screen = wait_for_own(&tmux, "alice", "yes, hello bob!");
    assert!(!screen.contains("(sent)"), "{screen}");
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

    // A message with terminal escape codes cannot repaint the other screen (sent with
    // `sesame send`: in the chat, the line editor takes an escape sequence for a key).
    ok(&server, &alice, &["send", "bob", "\u{1b}[2Jgotcha"], "");
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
    wait_for_exit(&tmux, "alice");
    tmux.type_line("bob", "/quit");
    wait_for_exit(&tmux, "bob");

    // Everything was read and acknowledged; the histories stay on each side.
    let out = ok(&server, &alice, &["inbox", "--wait", "0.5"], "");
    assert!(out.contains("No new messages"), "{out}");
}

/// Registers and logs in alice and bob (profiles under `dir`); their profile directories.
fn two_users(server: &Server, dir: &Path) -> (PathBuf, PathBuf) {
    let pw = format!("{PASSWORD}\n");
    let (alice, bob) = (dir.join("alice"), dir.join("bob"));
    for (name, home) in [("alice", &alice), ("bob", &bob)] {
        ok(server, home, &["register", name, "--password-stdin"], &pw);
        ok(server, home, &["login", name, "--password-stdin"], &pw);
    }
    (alice, bob)
}

#[test]
fn a_half_typed_line_survives_incoming_messages() {
    if !tmux_available() {
        return;
    }
    let server = serve();
    let tmp = tempfile::tempdir().unwrap();
    let (alice, bob) = two_users(&server, tmp.path());
    let tmux = Tmux {
        socket: tmp.path().join("tmux.sock"),
    };
    tmux.chat("alice", &server, &alice, "bob");
    tmux.chat("bob", &server, &bob, "alice");
    tmux.wait_for("alice", &["Type a message"]);
    tmux.wait_for("bob", &["Type a message"]);

    // alice is in the middle of a line when bob's message arrives.
    tmux.type_text("alice", "half a thou");
    tmux.wait_for_last_line("alice", "> half a thou");
    tmux.type_line("bob", "interrupting you");
    wait_for_own(&tmux, "bob", "interrupting you");
    let screen = tmux.wait_for("alice", &["bob (unverified", "interrupting you"]);
    // The message is printed above the prompt, which is redrawn with her text intact.
    assert_eq!(last_line(&screen), "> half a thou", "{screen}");
    let lines: Vec<&str> = screen.lines().map(str::trim_end).collect();
    let message = lines
        .iter()
        .position(|l| l.contains("interrupting you"))
        .unwrap();
    let prompt = lines.iter().rposition(|l| *l == "> half a thou").unwrap();
    assert!(message < prompt, "{screen}");
    assert_eq!(
        lines.iter().filter(|l| l.contains("half a thou")).count(),
        1,
        "{screen}"
    );

    // She finishes it: the whole line goes out, shown as hers, and the prompt is empty.
    tmux.type_line("alice", "ght, finished");
    let screen = wait_for_own(&tmux, "alice", "half a thought, finished");
    assert!(!screen.contains("(sent)"), "{screen}");
    tmux.wait_for_last_line("alice", ">");
    tmux.wait_for("bob", &["alice (unverified", "half a thought, finished"]);

    // The up arrow brings back what she sent (kept in memory for this chat only).
    tmux.press("alice", "Up");
    tmux.wait_for_last_line("alice", "> half a thought, finished");
    tmux.press("alice", "Down");
    tmux.wait_for_last_line("alice", ">");

    tmux.type_line("alice", "/quit");
    wait_for_exit(&tmux, "alice");
    tmux.press("bob", "C-d");
    wait_for_exit(&tmux, "bob");
    for name in ["alice", "bob"] {
        let screen = tmux.screen(name);
        assert!(screen.contains("Bye."), "{screen}");
    }
}

#[test]
fn a_server_restart_is_one_calm_line_each_way() {
    if !tmux_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let data = tmp.path().join("data");
    let mut process = serve_at(&addr, &data, &[]);
    let server = Server::external(&format!("http://{addr}"));
    let (alice, bob) = two_users(&server, tmp.path());
    let tmux = Tmux {
        socket: tmp.path().join("tmux.sock"),
    };
    tmux.chat("alice", &server, &alice, "bob");
    tmux.chat("bob", &server, &bob, "alice");
    tmux.wait_for("alice", &["Type a message"]);
    tmux.wait_for("bob", &["Type a message"]);

    // The server goes away while both chats are open.
    process.kill();
    for name in ["alice", "bob"] {
        tmux.wait_for(name, &["(connection lost; reconnecting…)"]);
    }
    // What alice types meanwhile waits for the connection.
    tmux.type_line("alice", "sent while the server was down");
    tmux.wait_for(
        "alice",
        &["(not connected:", "sent while the server was down"],
    );
    // Several attempts to reconnect fail meanwhile; none of them is reported.
    let noisy = |s: &str| s.matches("reconnecting").count() != 1 || s.contains("os error");
    tmux.never_for("alice", Duration::from_secs(3), noisy);

    // Back on the same address with the same data: both chats say so once and go on.
    let _process = serve_at(&addr, &data, &[]);
    for name in ["alice", "bob"] {
        tmux.wait_for(name, &["(reconnected)"]);
    }
    wait_for_own(&tmux, "alice", "sent while the server was down");
    tmux.wait_for(
        "bob",
        &["alice (unverified", "sent while the server was down"],
    );
    tmux.type_line("bob", "and we are back");
    tmux.wait_for("alice", &["bob (unverified", "and we are back"]);
    for name in ["alice", "bob"] {
        let screen = tmux.screen(name);
        assert_eq!(screen.matches("reconnecting").count(), 1, "{screen}");
        assert_eq!(screen.matches("(reconnected)").count(), 1, "{screen}");
        assert!(!screen.contains("os error"), "{screen}");
    }
    tmux.type_line("alice", "/quit");
    wait_for_exit(&tmux, "alice");
}

#[test]
fn a_chat_that_cannot_go_on_says_why_and_gives_the_terminal_back() {
    if !tmux_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let mut process = serve_at(&addr, &tmp.path().join("data"), &[]);
    let server = Server::external(&format!("http://{addr}"));
    let (alice, _bob) = two_users(&server, tmp.path());
    let tmux = Tmux {
        socket: tmp.path().join("tmux.sock"),
    };
    tmux.chat("alice", &server, &alice, "bob");
    tmux.wait_for("alice", &["Type a message"]);
    tmux.type_text("alice", "unfinished");

    // Another installation takes the address: waiting will not bring the session back.
    process.kill();
    tmux.wait_for("alice", &["(connection lost; reconnecting…)"]);
    let _other = serve_at(&addr, &tmp.path().join("other"), &[]);
    tmux.wait_for("alice", &["!! the chat stopped:"]);
    let screen = tmux.wait_for_last_line("alice", "> unfinished");
    assert!(screen.contains("(press Enter to leave)"), "{screen}");
    tmux.press("alice", "Enter");
    let screen = wait_for_exit(&tmux, "alice");
    assert!(screen.contains("sesame: error:"), "{screen}");
    assert!(!screen.contains("Bye."), "{screen}");
}
