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

mod interactive;
mod terminal;

pub use interactive::chat;

/// How many history lines `sesame chat` shows when it starts.
const HISTORY_LINES: usize = 20;

/// Flags of `sesame send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// The recipient.
    pub user: String,
    /// The message (several words are joined with spaces; `-` reads it from standard input).
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
#[command(
    after_help = "In the chat: type a message and press Enter to send it. /verify shows \
    the safety number, /help the commands, /quit (or Ctrl-D) leaves; start a message with // \
    to send a leading /. Incoming messages appear above the line being typed; the up and down \
    arrows bring back the lines sent (kept in memory only). A lost connection is retried \
    until the server is back; messages typed meanwhile go out then.\n\nExample:\n  sesame chat bob"
)]
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
    pub(crate) async fn new(server_url: &str) -> anyhow::Result<MsgCtx> {
        Ok(MsgCtx {
            base: Ctx::new(server_url).await?,
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
    let ctx = MsgCtx::new(server).await?;
    let mut session = ctx.stored_session()?;
    let messenger = ctx.messenger(&session)?;
    let text = message_text(&args.text)?;
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
    say!(
        "Sent to {} (message {}); the server keeps it until {} reads it",
        contact.username,
        msg.id,
        contact.username
    );
    // The server has it: whatever happens to this device's copy, the send succeeded (a
    // failure here must not make a person or a script send it twice).
    if let Err(e) = messenger.record_outgoing(&contact.username, &msg, &text) {
        eprintln!("warning: the message was delivered, but this device's copy of the conversation could not be saved: {e}");
    }
    warn_set_aside(messenger.store());
    Ok(())
}

/// The text of `sesame send`: the words joined, or standard input for `-`; never empty.
fn message_text(words: &[String]) -> anyhow::Result<String> {
    let text = if words == ["-"] {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .context("cannot read the message from standard input")?;
        text.trim_end_matches(['\n', '\r']).to_owned()
    } else {
        words.join(" ")
    };
    if text.trim().is_empty() {
        anyhow::bail!("the message is empty: nothing was sent");
    }
    Ok(text)
}

/// Tells the person about conversation histories that could not be decrypted and were moved
/// aside (written under an earlier password, e.g. before a recovery).
pub(crate) fn warn_set_aside(store: &sesame_client::messaging::MessagingStore) {
    for moved in store.take_set_aside() {
        eprintln!(
            "warning: {} could not be decrypted (it was written under an earlier password); it \
             was moved to {} and the conversation starts afresh",
            moved.from.display(),
            moved.to.display()
        );
    }
}

/// `sesame inbox`: every waiting message, verified, decrypted and acknowledged.
pub async fn inbox(server: &str, args: InboxArgs) -> anyhow::Result<()> {
    let ctx = MsgCtx::new(server).await?;
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
            // Batched: one `ack` frame for the messages read so far, sent when the backlog
            // pauses (or every 512 messages).
            relay.ack_later(&received.id).await?;
        }
    }
    if let Err(e) = relay.flush_acks().await {
        eprintln!(
            "warning: the acknowledgements were not sent ({e}); the messages will come again"
        );
    }
    relay.close().await;
    warn_set_aside(messenger.store());
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
mod tests;
