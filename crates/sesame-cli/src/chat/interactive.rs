//! `sesame chat USER`: an interactive chat over one relay connection, reconnecting when it
//! drops. The terminal side (line editor or plain lines) is in [`super::terminal`].

use std::io::Write as _;
use std::pin::Pin;
use std::time::Duration;

use sesame_client::messaging::{
    MessagingError, Messenger, Relay, ResolvedContact, ServerFrame, Verdict,
};
use sesame_client::profile::StoredSession;
use sesame_proto::e2e::SealedMessage;
use tokio::time::{sleep, Sleep};

use super::terminal::{self, is_quit, Keyboard, Screen};
use super::{
    announce_contact, clean, clock, describe, trust_line, ChatArgs, Clock, MsgCtx, HISTORY_LINES,
};

/// The wait before connecting again after the connection was lost; it doubles after each
/// attempt, up to [`RETRY_MAX`], and starts again from here once a connection has carried a
/// frame (so a server that accepts and drops connections at once is not hammered either).
const RETRY_FIRST: Duration = Duration::from_millis(250);
/// The longest wait between two attempts to reconnect.
const RETRY_MAX: Duration = Duration::from_secs(4);
/// How long the chat waits for the server to confirm the messages sent before the input
/// ended (the end of a pipe, Ctrl-D).
const CONFIRM_WAIT: Duration = Duration::from_secs(30);

/// `sesame chat USER`: an interactive chat.
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
    // Connected before the editor takes the terminal: a server that is not there is an
    // error of the command, not of the chat.
    let relay = ctx.relay(&mut session).await?;
    let (screen, mut keyboard) = terminal::open();
    let mut chat = Chat {
        ctx: &ctx,
        messenger: &messenger,
        session,
        name: peer.username.clone(),
        peer,
        outstanding: Vec::new(),
        noticed: Vec::new(),
        screen,
        input_open: true,
        give_up: None,
        retry: RETRY_FIRST,
    };
    let result = chat.run(relay, &mut keyboard).await;
    if let Err(e) = &result {
        if keyboard.editing() {
            chat.screen.show(&format!(
                "!! the chat stopped: {e:#}\n(press Enter to leave)"
            ));
        }
    }
    keyboard.close().await;
    result?;
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
    screen: Screen,
    /// Whether lines may still come (false after Ctrl-D or the end of a pipe).
    input_open: bool,
    /// Once the input ended: when to stop waiting for the server's confirmations.
    give_up: Option<Pin<Box<Sleep>>>,
    /// The wait before the next attempt to reconnect.
    retry: Duration,
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
    /// Reads lines and frames until the person leaves; a lost connection is reported once
    /// and opened again, with a bounded backoff, while the person goes on typing.
    async fn run(&mut self, relay: Relay, keys: &mut Keyboard) -> anyhow::Result<()> {
        let mut relay = Some(relay);
        loop {
            let mut live = match relay.take() {
                Some(live) => live,
                None => match self.reconnect(keys).await? {
                    Some(live) => {
                        self.screen.show("(reconnected)");
                        live
                    }
                    None => return Ok(()),
                },
            };
            match self.converse(&mut live, keys).await? {
                Next::Quit => {
                    live.close().await;
                    return Ok(());
                }
                Next::Go | Next::Reconnect => {
                    self.screen.show("(connection lost; reconnecting…)");
                }
            }
        }
    }

    /// One connection: resends what the server has not confirmed, then handles lines and
    /// frames until the connection is lost or the chat ends.
    async fn converse(&mut self, relay: &mut Relay, keys: &mut Keyboard) -> anyhow::Result<Next> {
        // Messages sent but not confirmed before the connection dropped: the same ids
        // again, so the server stores each once.
        for (msg, _) in &self.outstanding {
            if relay.send(&self.name, msg).await.is_err() {
                return Ok(Next::Reconnect);
            }
        }
        loop {
            let next = tokio::select! {
                line = keys.next(), if self.input_open => self.on_input(Some(&mut *relay), line).await,
                frame = relay.next() => match frame {
                    Ok(Some(frame)) => {
                        self.retry = RETRY_FIRST;
                        self.on_frame(relay, frame).await?
                    }
                    Ok(None) | Err(_) => Next::Reconnect,
                },
                () = expired(&mut self.give_up), if !self.input_open => self.unconfirmed(),
            };
            match next {
                Next::Go if !self.input_open && self.outstanding.is_empty() => {
                    return Ok(Next::Quit)
                }
                Next::Go => {}
                next => return Ok(next),
            }
        }
    }

    /// Connects again, waiting before each attempt, longer each time (up to [`RETRY_MAX`]),
    /// and taking lines meanwhile; `None` if the person left. Only a failure that may pass
    /// (the server unreachable or overloaded) is retried; any other ends the chat.
    async fn reconnect(&mut self, keys: &mut Keyboard) -> anyhow::Result<Option<Relay>> {
        loop {
            let wake = sleep(self.retry);
            tokio::pin!(wake);
            self.retry = (self.retry * 2).min(RETRY_MAX);
            loop {
                let next = tokio::select! {
                    () = &mut wake => break,
                    line = keys.next(), if self.input_open => self.on_input(None, line).await,
                    () = expired(&mut self.give_up), if !self.input_open => self.unconfirmed(),
                };
                if let Next::Quit = next {
                    return Ok(None);
                }
            }
            match self.ctx.relay(&mut self.session).await {
                Ok(relay) => return Ok(Some(relay)),
                Err(e) if transient(&e) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The end of the wait for confirmations: says what was not confirmed, and leaves.
    fn unconfirmed(&mut self) -> Next {
        let n = self.outstanding.len();
        self.screen.show(&format!(
            "!! {n} message(s) were not confirmed by the server; they may not have been delivered"
        ));
        Next::Quit
    }

    /// A line typed (`None`: the input ended), with the connection if there is one.
    async fn on_input(&mut self, relay: Option<&mut Relay>, line: Option<String>) -> Next {
        let Some(line) = line else {
            self.input_open = false;
            if self.outstanding.is_empty() {
                return Next::Quit;
            }
            self.give_up = Some(Box::pin(sleep(CONFIRM_WAIT)));
            return Next::Go;
        };
        if is_quit(&line) {
            return Next::Quit;
        }
        let Some(text) = self.command(&line) else {
            return Next::Go;
        };
        let msg = match self.messenger.seal_for(&self.peer, text) {
            Ok(msg) => msg,
            Err(e) => {
                self.screen
                    .show(&format!("!! NOT SENT: \"{}\": {e}", clean(text)));
                return Next::Go;
            }
        };
        self.outstanding.push((msg.clone(), text.to_owned()));
        match relay {
            Some(relay) => match relay.send(&self.name, &msg).await {
                Ok(()) => Next::Go,
                // It stays outstanding: sent again once connected.
                Err(_) => Next::Reconnect,
            },
            None => {
                self.screen.show(&format!(
                    "(not connected: \"{}\" goes out when the connection is back)",
                    clean(text)
                ));
                Next::Go
            }
        }
    }

    /// Runs a command line (`/verify`, `/help`, a mistyped one); `None` when it was one (or
    /// blank), otherwise the text to send (`//` sends a leading `/`).
    fn command<'l>(&mut self, line: &'l str) -> Option<&'l str> {
        let name = &self.name;
        let text = line.trim_end_matches(['\r', '\n']);
        match text.trim() {
            "" => return None,
            "/help" => {
                self.screen.show(
                    "Type a message and press Enter. /verify: safety number; /quit or Ctrl-D: \
                     leave; up and down arrows: earlier lines; // sends a leading /.",
                );
                return None;
            }
            "/verify" => {
                let number = self
                    .messenger
                    .safety_number(name, &self.peer.contact.identity);
                let me = self.messenger.username();
                self.screen.show(&format!(
                    "Safety number of {me} and {name}: {number}\nCompare it with {name}; if it \
                     matches run `sesame keys verify {name} --confirm`."
                ));
                return None;
            }
            _ => {}
        }
        // Any other `/word` is a mistyped command, never a message; `//` sends a leading `/`.
        match text.trim_start().strip_prefix('/') {
            Some(rest) if rest.starts_with('/') => Some(rest),
            Some(rest) => {
                let word = clean(rest.split_whitespace().next().unwrap_or(""));
                self.screen.show(&format!(
                    "!! unknown command /{word}: nothing was sent (type /help; start a message \
                     with // to send a leading /)"
                ));
                None
            }
            None => Some(text),
        }
    }

    /// A frame from the relay: a confirmation, an error or a message.
    async fn on_frame(&mut self, relay: &mut Relay, frame: ServerFrame) -> anyhow::Result<Next> {
        match frame {
            ServerFrame::Accepted { id } => {
                if let Some(pos) = self.outstanding.iter().position(|(m, _)| m.id == id) {
                    let (msg, text) = self.outstanding.remove(pos);
                    self.screen.show(&own_line(&msg, &text));
                    if let Err(e) = self.messenger.record_outgoing(&self.name, &msg, &text) {
                        self.screen
                            .show(&format!("(delivered, but not saved in the history: {e})"));
                    }
                }
            }
            ServerFrame::Error { id, error } => {
                let failed = id
                    .and_then(|id| self.outstanding.iter().position(|(m, _)| m.id == id))
                    .map(|pos| self.outstanding.remove(pos));
                let why = format!("{} ({})", clean(&error.message), error.code);
                self.screen.show(&match failed {
                    Some((msg, text)) => {
                        format!("!! NOT DELIVERED: {}: {why}", own_line(&msg, &text))
                    }
                    None => format!("!! server error: {why}"),
                });
            }
            ServerFrame::Message { from, message, .. } => {
                return self.on_message(relay, from, message).await;
            }
        }
        Ok(Next::Go)
    }

    /// A message delivered: shown (and acknowledged) if it is from the peer; from anyone
    /// else, pointed out once and left on the server for `sesame inbox`.
    async fn on_message(
        &mut self,
        relay: &mut Relay,
        from: String,
        message: SealedMessage,
    ) -> anyhow::Result<Next> {
        if from != self.name {
            if !self.noticed.contains(&message.id) {
                self.noticed.push(message.id.clone());
                self.screen.show(&format!(
                    "(a message from {} is waiting: read it with `sesame inbox`)",
                    clean(&from)
                ));
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
            if let Ok(Some(c)) = self.messenger.pinned(&self.name) {
                self.peer.contact = c;
            }
        }
        if let Some(line) = describe(&received, Clock::Time) {
            self.screen.show(&line);
        }
        if received.should_ack() && relay.ack(&received.id).await.is_err() {
            return Ok(Next::Reconnect);
        }
        Ok(Next::Go)
    }
}

/// Completes when `timer` does; never without one.
async fn expired(timer: &mut Option<Pin<Box<Sleep>>>) {
    match timer {
        Some(timer) => timer.as_mut().await,
        None => std::future::pending().await,
    }
}

/// How a message of one's own shows, as the peer's do: `[HH:MM] you: text`.
pub(super) fn own_line(msg: &SealedMessage, text: &str) -> String {
    format!("[{}] you: {}", clock(msg.sent_at, Clock::Time), clean(text))
}

/// Whether a failure to connect may pass by itself: the server cannot be reached, did not
/// answer in time, or something in front of it answered instead (no API error body), or it
/// asks to come back later (`Retry-After`). Refused credentials or a changed server key do
/// not pass by waiting.
pub(super) fn transient(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        let client = match cause.downcast_ref::<MessagingError>() {
            Some(MessagingError::Client(c)) => Some(c),
            Some(_) => None,
            None => cause.downcast_ref::<sesame_client::Error>(),
        };
        client.is_some_and(|c| match c {
            sesame_client::Error::Http(_)
            | sesame_client::Error::WebSocket(_)
            | sesame_client::Error::Timeout => true,
            sesame_client::Error::Server {
                code, retry_after, ..
            } => code.is_none() || retry_after.is_some(),
            _ => false,
        })
    })
}
