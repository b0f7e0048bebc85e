//! End-to-end encrypted messaging commands: `sesame send`, `sesame inbox`, `sesame chat`.
//!
//! The identity keys are unlocked with the key the last `sesame login` kept (see
//! [`sesame_client::messaging`]); contacts' keys are pinned on first use and a changed key
//! stops everything until `sesame keys trust USER`.

use std::io::Write as _;
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use clap::Args;
use sesame_client::messaging::{
    ContactTrust, KeyDirectory, MessagingError, MessagingStore, Messenger, Received, Relay,
    ResolvedContact, ServerFrame, Verdict,
};
use sesame_client::profile::StoredSession;
use sesame_proto::e2e::SealedMessage;

use crate::client_cmds::Ctx;
use crate::keys_cmds::{banner, explain};

/// Prints a line on standard output, ignoring write errors (a closed pipe).
macro_rules! say {
    ($($arg:tt)*) => {{
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, $($arg)*);
        let _ = out.flush();
    }};
}

/// How many history lines `sesame chat` shows when it starts.
const HISTORY_LINES: usize = 20;

/// Flags of `sesame send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// The recipient.
    pub user: String,
    /// The message (several words are joined with spaces).
    #[arg(required = true, num_args = 1.., trailing_var_arg = true, allow_hyphen_values = true)]
    pub text: Vec<String>,
}

/// Flags of `sesame inbox`.
#[derive(Debug, Args)]
pub struct InboxArgs {
    /// Stop once no message arrived for this many seconds.
    #[arg(long, default_value_t = 2.0, value_name = "SECONDS")]
    pub wait: f64,
}

/// Flags of `sesame chat`.
#[derive(Debug, Args)]
pub struct ChatArgs {
    /// Who to chat with.
    pub user: String,
}

/// What the messaging commands work with: the client commands' [`Ctx`] (profile, server,
/// client and session handling) plus the messaging helpers below.
pub(crate) struct MsgCtx {
    base: Ctx,
}

impl std::ops::Deref for MsgCtx {
    type Target = Ctx;

    fn deref(&self) -> &Ctx {
        &self.base
    }
}

impl MsgCtx {
    pub(crate) fn new(server_url: &str) -> anyhow::Result<MsgCtx> {
        Ok(MsgCtx {
            base: Ctx::new(server_url)?,
        })
    }

    /// Runs `call` with a usable access token, refreshing once more if the server refuses
    /// it (it may have expired early, or the server restarted).
    pub(crate) async fn authed<T, F, Fut>(
        &self,
        session: &mut StoredSession,
        call: F,
    ) -> anyhow::Result<T>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Result<T, MessagingError>>,
    {
        let token = self.access_token(session).await?;
        match call(token).await {
            Err(e) if e.is_unauthorized() => {
                self.refresh(session).await?;
                call(session.access_token.clone()).await.map_err(explain)
            }
            other => other.map_err(explain),
        }
    }

    pub(crate) fn messenger(&self, session: &StoredSession) -> anyhow::Result<Messenger> {
        let store = MessagingStore::new(&self.profile);
        let directory = KeyDirectory::new(&self.client)?;
        Ok(Messenger::unlock(store, directory, session)?)
    }

    /// Connects to the relay, refreshing the token once if the server refuses it.
    async fn relay(&self, session: &mut StoredSession) -> anyhow::Result<Relay> {
        let token = self.access_token(session).await?;
        match Relay::connect(&self.client, &token).await {
            Ok(relay) => Ok(relay),
            Err(e) if e.is_unauthorized() => {
                self.refresh(session).await?;
                Ok(Relay::connect(&self.client, &session.access_token).await?)
            }
            Err(e) => Err(e).context("cannot connect to the relay"),
        }
    }
}

/// `sesame send USER TEXT`.
pub async fn send(server: &str, args: SendArgs) -> anyhow::Result<()> {
    let ctx = MsgCtx::new(server)?;
    let mut session = ctx.stored_session()?;
    let messenger = ctx.messenger(&session)?;
    let text = args.text.join(" ");
    let (m, user) = (&messenger, &args.user);
    let contact = ctx
        .authed(&mut session, |token| async move {
            m.resolve(&token, user).await
        })
        .await?;
    announce_contact(&contact);
    let msg = messenger.seal_for(&contact, &text)?;
    let mut relay = ctx.relay(&mut session).await?;
    let sent = relay.send_and_wait(&contact.username, &msg).await;
    relay.close().await;
    sent.map_err(|e| anyhow!(e))
        .with_context(|| format!("the message to {} was not sent", contact.username))?;
    messenger.record_outgoing(&contact.username, &msg, &text)?;
    say!(
        "Sent to {} (message {}); the server keeps it until {} reads it",
        contact.username,
        msg.id,
        contact.username
    );
    Ok(())
}

/// `sesame inbox`: every waiting message, verified, decrypted and acknowledged.
pub async fn inbox(server: &str, args: InboxArgs) -> anyhow::Result<()> {
    let ctx = MsgCtx::new(server)?;
    let mut session = ctx.stored_session()?;
    let messenger = ctx.messenger(&session)?;
    // The relay first: connecting refreshes a refused token, which the lookups then use.
    let mut relay = ctx.relay(&mut session).await?;
    let token = session.access_token.clone();
    let wait = if args.wait.is_finite() {
        args.wait
    } else {
        2.0
    };
    let idle = Duration::from_secs_f64(wait.clamp(0.1, 600.0));
    let (mut shown, mut refused, mut kept) = (0u32, 0u32, 0u32);
    loop {
        let frame = match relay.next_within(idle).await {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(e) => {
                eprintln!("warning: the relay connection failed: {e}");
                break;
            }
        };
        let ServerFrame::Message { from, message, .. } = frame else {
            continue;
        };
        let received = messenger.receive(&token, &from, &message).await?;
        match &received.verdict {
            Verdict::Valid {
                duplicate: false, ..
            } => shown += 1,
            Verdict::Valid { .. } => {}
            _ if received.should_ack() => refused += 1,
            _ => kept += 1,
        }
        if let Some(line) = describe(&received, Clock::Date) {
            say!("{line}");
        }
        if received.should_ack() {
            relay.ack(&received.id).await?;
        }
    }
    relay.close().await;
    let plural = |n: u32| if n == 1 { "" } else { "s" };
    if shown + refused + kept == 0 {
        say!("No new messages");
    } else {
        say!(
            "{shown} new message{}, {refused} rejected, {kept} kept on the server",
            plural(shown)
        );
    }
    Ok(())
}

/// `sesame chat USER`: a line-based interactive chat.
pub async fn chat(server: &str, args: ChatArgs) -> anyhow::Result<()> {
    let ctx = MsgCtx::new(server)?;
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

/// Says that a contact was pinned just now.
fn announce_contact(c: &ResolvedContact) {
    if c.first_use {
        say!(
            "Pinned the keys of {} on first use ({}); compare the safety number with `sesame \
             keys verify {}`",
            c.username,
            c.contact.identity.fingerprint(),
            c.username
        );
    }
}

fn trust_line(c: &ResolvedContact) -> String {
    match c.contact.trust {
        ContactTrust::Verified => format!("VERIFIED ({})", c.contact.identity.fingerprint()),
        ContactTrust::Unverified => format!(
            "unverified ({}); type /verify to compare the safety number",
            c.contact.identity.fingerprint()
        ),
    }
}

#[derive(Clone, Copy)]
enum Clock {
    Date,
    Time,
}

/// The line to show for a delivered message; `None` for a redelivery already shown.
fn describe(r: &Received, style: Clock) -> Option<String> {
    let from = clean(&r.from);
    let id = clean(&r.id);
    let when = clock(r.sent_at, style);
    Some(match &r.verdict {
        Verdict::Valid {
            duplicate: true, ..
        } => return None,
        Verdict::Valid {
            text,
            trust,
            first_use,
            ..
        } => {
            let badge = match (trust, first_use) {
                (ContactTrust::Verified, _) => "verified",
                (ContactTrust::Unverified, true) => "unverified, new contact",
                (ContactTrust::Unverified, false) => "unverified",
            };
            format!("[{when}] {from} ({badge}): {}", clean(text))
        }
        Verdict::KeyChanged { pinned, presented } => banner(&format!(
            "!! WITHHELD a message from {from}: THE KEYS OF {from} HAVE CHANGED (pinned \
             {pinned}, the server now presents {presented}). It stays on the server. Check \
             with {from} out of band, then run `sesame keys trust {from}`."
        )),
        Verdict::BadSignature => format!(
            "!! REJECTED message {id} claiming to be from {from}: the signature does not \
             verify (forged or tampered); discarded"
        ),
        Verdict::DecryptFailed => format!(
            "!! REJECTED message {id} from {from}: correctly signed but it does not decrypt \
             (not sealed to your current keys); discarded"
        ),
        Verdict::UnknownSender => format!(
            "!! message {id} from {from} cannot be verified: {from} has no published keys; \
             kept on the server"
        ),
        Verdict::Invalid(why) => {
            format!(
                "!! REJECTED message {id} from {from}: {}; discarded",
                clean(why)
            )
        }
        Verdict::Unavailable(why) => format!(
            "!! message {id} from {from} not verified yet ({}); kept on the server",
            clean(why)
        ),
    })
}

/// Text from the network made safe for a terminal: control characters (escape sequences
/// included) become U+FFFD, line breaks become an indented new line.
fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\n    "),
            '\t' => out.push(' '),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Unix milliseconds as `YYYY-MM-DD HH:MM` or `HH:MM`, UTC.
fn clock(ms: u64, style: Clock) -> String {
    let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (h, m) = (rem / 3_600, rem % 3_600 / 60);
    match style {
        Clock::Time => format!("{h:02}:{m:02}"),
        Clock::Date => {
            // Howard Hinnant's civil-from-days.
            let z = days + 719_468;
            let era = z.div_euclid(146_097);
            let doe = z.rem_euclid(146_097);
            let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
            let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
            let mp = (5 * doy + 2) / 153;
            let day = doy - (153 * mp + 2) / 5 + 1;
            let month = if mp < 10 { mp + 3 } else { mp - 9 };
            let year = yoe + era * 400 + i64::from(month <= 2);
            format!("{year:04}-{month:02}-{day:02} {h:02}:{m:02} UTC")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroizing;

    fn received(verdict: Verdict) -> Received {
        Received {
            id: "id-1".into(),
            from: "bob".into(),
            sent_at: 1_767_225_600_000 + 61_000,
            verdict,
        }
    }

    #[test]
    fn control_characters_never_reach_the_terminal() {
        assert_eq!(clean("hi\x1b[2Jthere"), "hi\u{FFFD}[2Jthere");
        assert_eq!(clean("a\nb"), "a\n    b");
        assert_eq!(clean("tab\there"), "tab here");
        assert_eq!(clean("\u{7}bell"), "\u{FFFD}bell");
    }

    #[test]
    fn clocks_are_utc() {
        assert_eq!(
            clock(1_767_225_600_000, Clock::Date),
            "2026-01-01 00:00 UTC"
        );
        assert_eq!(clock(1_767_225_600_000 + 3_661_000, Clock::Time), "01:01");
    }

    #[test]
    fn only_valid_messages_look_like_messages() {
        let ok = describe(
            &received(Verdict::Valid {
                text: Zeroizing::new("hello".into()),
                trust: ContactTrust::Unverified,
                first_use: false,
                duplicate: false,
            }),
            Clock::Time,
        )
        .unwrap();
        assert_eq!(ok, "[00:01] bob (unverified): hello");
        let dup = received(Verdict::Valid {
            text: Zeroizing::new("hello".into()),
            trust: ContactTrust::Verified,
            first_use: false,
            duplicate: true,
        });
        assert!(describe(&dup, Clock::Time).is_none());
        for v in [
            Verdict::BadSignature,
            Verdict::DecryptFailed,
            Verdict::UnknownSender,
            Verdict::Invalid("x".into()),
            Verdict::Unavailable("y".into()),
            Verdict::KeyChanged {
                pinned: "p".into(),
                presented: "q".into(),
            },
        ] {
            let line = describe(&received(v), Clock::Time).unwrap();
            assert!(line.starts_with("!!"), "{line}");
            assert!(!line.contains("hello"));
        }
    }
}
