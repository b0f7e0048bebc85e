//! `sesame chat USER`: a line-based interactive chat over one relay connection, reconnecting
//! when it drops.

use std::io::Write as _;
use std::time::Duration;

use sesame_client::messaging::{Messenger, Relay, ResolvedContact, ServerFrame, Verdict};
use sesame_client::profile::StoredSession;
use sesame_proto::e2e::SealedMessage;

use super::{
    announce_contact, clean, clock, describe, trust_line, ChatArgs, Clock, MsgCtx, HISTORY_LINES,
};

/// `sesame chat USER`: a line-based interactive chat.
pub async fn chat(server: &str, args: ChatArgs) -> anyhow::Result<()> {
    let ctx = MsgCtx::new(server).await?;
    let mut session = ctx.stored_session()?;
    let messenger = ctx.messenger(&session)?;
    let (m, user) = (&messenger, &args.user);
    let peer = ctx
        .authed(&mut session, |token| async move {
            m.resolve(&token, user).await
        })
        .await?;
    show_chat_start(&ctx, &messenger, &peer)?;
    let mut chat = Chat {
        ctx: &ctx,
        messenger: &messenger,
        session,
        name: peer.username.clone(),
        peer,
        outstanding: Vec::new(),
        noticed: Vec::new(),
    };
    chat.run().await?;
    say!("Bye.");
    Ok(())
}

/// The greeting of `sesame chat`: who, where, the peer's keys and the last messages.
fn show_chat_start(
    ctx: &MsgCtx,
    messenger: &Messenger,
    peer: &ResolvedContact,
) -> anyhow::Result<()> {
    let name = &peer.username;
    say!(
        "Chat with {name} on {} as {}, end-to-end encrypted.",
        ctx.server,
        messenger.username()
    );
    announce_contact(peer);
    say!("  {name}'s keys: {}", trust_line(peer));
    let history = messenger.history(name)?;
    if !history.is_empty() {
        say!("--- last messages ---");
        for e in history.iter().rev().take(HISTORY_LINES).rev() {
            let who = match e.direction {
                sesame_client::messaging::Direction::Incoming => name.as_str(),
                sesame_client::messaging::Direction::Outgoing => "you",
            };
            say!(
                "[{}] {who}: {}",
                clock(e.sent_at, Clock::Time),
                clean(&e.text)
            );
        }
        say!("---");
    }
    say!("Type a message and press Enter to send. /verify shows the safety number, /quit leaves.");
    Ok(())
}

/// One `sesame chat` with one peer.
struct Chat<'a> {
    ctx: &'a MsgCtx,
    messenger: &'a Messenger,
    session: StoredSession,
    /// The peer's canonical username.
    name: String,
    peer: ResolvedContact,
    /// Sent but not yet confirmed by the server: the message and its text.
    outstanding: Vec<(SealedMessage, String)>,
    /// Ids of waiting messages from other users already pointed out.
    noticed: Vec<String>,
}

/// What the chat does after a line, a frame or a timeout.
enum Next {
    /// Go on with this connection.
    Go,
    /// The connection is lost: open another.
    Reconnect,
    /// Leave the chat.
    Quit,
}

impl Chat<'_> {
    /// Reads lines and frames until the user leaves, reconnecting when the connection drops.
    async fn run(&mut self) -> anyhow::Result<()> {
        let mut stdin = stdin_lines();
        let mut stdin_open = true;
        let mut first = true;
        'connection: loop {
            let mut relay = match self.ctx.relay(&mut self.session).await {
                Ok(relay) => relay,
                Err(e) if first => return Err(e),
                Err(e) => {
                    say!("(cannot reconnect: {e:#}; retrying in 2 s)");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    continue;
                }
            };
            if !first {
                say!("(reconnected)");
            }
            first = false;
            // Messages sent but not confirmed before the connection dropped: the same ids
            // again, so the server stores each once.
            for (msg, _) in &self.outstanding {
                relay.send(&self.name, msg).await?;
            }
            let give_up = tokio::time::sleep(Duration::from_secs(30));
            tokio::pin!(give_up);
            loop {
                let next = tokio::select! {
                    line = stdin.recv(), if stdin_open => match line {
                        Some(line) => self.on_line(&mut relay, &line).await,
                        None => {
                            stdin_open = false;
                            if self.outstanding.is_empty() {
                                Next::Quit
                            } else {
                                give_up
                                    .as_mut()
                                    .reset(tokio::time::Instant::now() + Duration::from_secs(30));
                                Next::Go
                            }
                        }
                    },
                    frame = relay.next() => match frame {
                        Ok(Some(frame)) => match self.on_frame(&mut relay, frame).await? {
                            Next::Go if !stdin_open && self.outstanding.is_empty() => Next::Quit,
                            next => next,
                        },
                        Ok(None) | Err(_) => {
                            say!("(connection lost; reconnecting)");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            Next::Reconnect
                        }
                    },
                    () = &mut give_up, if !stdin_open => {
                        say!("!! {} message(s) were not confirmed by the server", self.outstanding.len());
                        Next::Quit
                    }
                };
                match next {
                    Next::Go => {}
                    Next::Reconnect => continue 'connection,
                    Next::Quit => break 'connection,
                }
            }
        }
        Ok(())
    }

    /// A line the user typed: a command, or a message to seal and send.
    async fn on_line(&mut self, relay: &mut Relay, line: &str) -> Next {
        let name = &self.name;
        let text = line.trim_end_matches(['\r', '\n']);
        match text.trim() {
            "" => return Next::Go,
            "/quit" | "/exit" => return Next::Quit,
            "/help" => {
                say!("Type a message and press Enter. /verify: safety number; /quit: leave.");
                return Next::Go;
            }
            "/verify" => {
                let number = self
                    .messenger
                    .safety_number(name, &self.peer.contact.identity);
                say!(
                    "Safety number of {} and {name}: {number}",
                    self.messenger.username()
                );
                say!("Compare it with {name}; if it matches run `sesame keys verify {name} --confirm`.");
                return Next::Go;
            }
            _ => {}
        }
        // Any other `/word` is a mistyped command, never a message; `//` sends a leading `/`.
        let text = match text.trim_start().strip_prefix('/') {
            Some(rest) if rest.starts_with('/') => rest,
            Some(rest) => {
                let word = rest.split_whitespace().next().unwrap_or("");
                say!("!! unknown command /{word}: nothing was sent (type /help; start a message with // to send a leading /)");
                return Next::Go;
            }
            None => text,
        };
        let msg = match self.messenger.seal_for(&self.peer, text) {
            Ok(msg) => msg,
            Err(e) => {
                say!("!! not sent: {e}");
                return Next::Go;
            }
        };
        self.outstanding.push((msg.clone(), text.to_owned()));
        if let Err(e) = relay.send(name, &msg).await {
            say!("(connection lost: {e}; reconnecting)");
            return Next::Reconnect;
        }
        Next::Go
    }

    /// A frame from the relay: a confirmation, an error or a message.
    async fn on_frame(&mut self, relay: &mut Relay, frame: ServerFrame) -> anyhow::Result<Next> {
        let name = &self.name;
        match frame {
            ServerFrame::Accepted { id } => {
                if let Some(pos) = self.outstanding.iter().position(|(m, _)| m.id == id) {
                    let (msg, text) = self.outstanding.remove(pos);
                    if let Err(e) = self.messenger.record_outgoing(name, &msg, &text) {
                        say!("(not saved in the history: {e})");
                    }
                    say!("  (sent)");
                }
            }
            ServerFrame::Error { id, error } => {
                let text = id
                    .and_then(|id| self.outstanding.iter().position(|(m, _)| m.id == id))
                    .map(|pos| self.outstanding.remove(pos).1);
                match text {
                    Some(text) => say!(
                        "!! NOT DELIVERED: \"{}\": {} ({})",
                        clean(&text),
                        clean(&error.message),
                        error.code
                    ),
                    None => say!(
                        "!! server error: {} ({})",
                        clean(&error.message),
                        error.code
                    ),
                }
            }
            ServerFrame::Message { from, message, .. } => {
                if from != *name {
                    if !self.noticed.contains(&message.id) {
                        self.noticed.push(message.id.clone());
                        say!(
                            "(a message from {} is waiting: read it with `sesame inbox`)",
                            clean(&from)
                        );
                    }
                    return Ok(Next::Go);
                }
                let token = self.ctx.access_token(&mut self.session).await?;
                let received = self.messenger.receive(&token, &from, &message).await?;
                if let Verdict::Valid {
                    first_use: true, ..
                } = received.verdict
                {
                    // Re-read the pin: verification state may have changed.
                    if let Ok(Some(c)) = self.messenger.pinned(name) {
                        self.peer.contact = c;
                    }
                }
                if let Some(line) = describe(&received, Clock::Time) {
                    say!("{line}");
                }
                if received.should_ack() {
                    if let Err(e) = relay.ack(&received.id).await {
                        say!("(connection lost: {e}; reconnecting)");
                        return Ok(Next::Reconnect);
                    }
                }
            }
        }
        Ok(Next::Go)
    }
}

/// The lines of standard input, read on a thread of their own (not joined: the process may
/// end while it waits for a line). The channel closes at end of input.
fn stdin_lines() -> tokio::sync::mpsc::Receiver<String> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    rx
}
