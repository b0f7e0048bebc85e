//! The terminal of `sesame chat`: a line editor (rustyline) when standard input and output
//! are a terminal, plain lines otherwise (a pipe, a script).
//!
//! In the editor, Enter does not end the `readline` call: it hands the line to the chat and
//! empties the prompt, so the editor stays in charge of the terminal for the whole chat.
//! Whatever the chat prints goes through the editor's [`ExternalPrinter`], which clears the
//! prompt line, prints above it and redraws the prompt with the text being typed intact. The
//! history (up and down arrows) lives in memory only: chat lines never reach the disk.

use std::io::{IsTerminal as _, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rustyline::{
    Cmd, ConditionalEventHandler, Config, DefaultEditor, Event, EventContext, EventHandler,
    ExternalPrinter, KeyCode, KeyEvent, Modifiers, Movement, RepeatCount,
};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use zeroize::Zeroizing;

/// The prompt in front of the line being typed.
pub(super) const PROMPT: &str = "> ";

/// Whether `line` is a command that leaves the chat.
pub(super) fn is_quit(line: &str) -> bool {
    matches!(line.trim(), "/quit" | "/exit")
}

/// Where the chat prints: above the prompt of the editor, or standard output.
pub(super) struct Screen {
    printer: Option<Box<dyn ExternalPrinter + Send>>,
}

impl Screen {
    /// Prints `text` as one line (or several, if it holds line breaks).
    pub(super) fn show(&mut self, text: &str) {
        if let Some(printer) = &mut self.printer {
            if printer.print(format!("{text}\n")).is_ok() {
                return;
            }
        }
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }
}

/// What the person types: whole lines, in order; `None` once the input ended (Ctrl-D,
/// Ctrl-C, `/quit`, or the end of a pipe).
pub(super) struct Keyboard {
    lines: UnboundedReceiver<String>,
    /// The editor's thread and its "leave on the next Enter" flag; `None` for plain lines.
    editor: Option<(std::thread::JoinHandle<()>, Arc<AtomicBool>)>,
}

impl Keyboard {
    /// The next line typed; `None` once the input ended. Cancel-safe.
    pub(super) async fn next(&mut self) -> Option<String> {
        self.lines.recv().await
    }

    /// Whether a line editor owns the terminal.
    pub(super) fn editing(&self) -> bool {
        self.editor.is_some()
    }

    /// Gives the terminal back: waits until the editor has left (on `/quit`, Ctrl-D or
    /// Ctrl-C, or on the Enter it is told to wait for) and restored the terminal's mode.
    /// Plain lines need nothing: their reader is left to the end of the process.
    pub(super) async fn close(mut self) {
        let Some((thread, leave)) = self.editor.take() else {
            return;
        };
        leave.store(true, Ordering::SeqCst);
        while self.lines.recv().await.is_some() {}
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
}

/// The chat's terminal: a line editor if standard input and output are a terminal (plain
/// lines if the editor cannot start there), plain lines otherwise.
pub(super) fn open() -> (Screen, Keyboard) {
    if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
        match editor() {
            Ok(both) => return both,
            Err(e) => eprintln!("warning: no line editing ({e}); reading plain lines"),
        }
    }
    plain()
}

/// Lines of standard input, read on a thread of their own (not joined: the process may end
/// while it waits for a line).
fn plain() -> (Screen, Keyboard) {
    let (tx, rx) = unbounded_channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let keyboard = Keyboard {
        lines: rx,
        editor: None,
    };
    (Screen { printer: None }, keyboard)
}

/// The line editor, on a thread of its own for the whole chat.
fn editor() -> rustyline::Result<(Screen, Keyboard)> {
    let config = Config::builder().auto_add_history(false).build();
    let mut editor = DefaultEditor::with_config(config)?;
    let printer = editor.create_external_printer()?;
    let (tx, rx) = unbounded_channel();
    let leave = Arc::new(AtomicBool::new(false));
    let history = Arc::new(Mutex::new(History::default()));
    let submit = Submit {
        tx,
        leave: Arc::clone(&leave),
        history: Arc::clone(&history),
    };
    let submit = EventHandler::Conditional(Box::new(submit));
    editor.bind_sequence(KeyEvent(KeyCode::Enter, Modifiers::NONE), submit);
    for (key, older) in [
        (KeyEvent(KeyCode::Up, Modifiers::NONE), true),
        (KeyEvent::ctrl('P'), true),
        (KeyEvent(KeyCode::Down, Modifiers::NONE), false),
        (KeyEvent::ctrl('N'), false),
    ] {
        let browse = Browse {
            older,
            history: Arc::clone(&history),
        };
        editor.bind_sequence(key, EventHandler::Conditional(Box::new(browse)));
    }
    // `readline` returns only to leave: Enter hands lines over without returning. Dropping
    // the editor (and the sender its handlers hold) closes the channel.
    let thread = std::thread::spawn(move || {
        let _ = editor.readline(PROMPT);
        drop(editor);
    });
    let keyboard = Keyboard {
        lines: rx,
        editor: Some((thread, leave)),
    };
    let screen = Screen {
        printer: Some(Box::new(printer)),
    };
    Ok((screen, keyboard))
}

/// Enter: hands the line to the chat and empties the prompt; leaves the editor on `/quit`
/// (the chat gets that line too) or when the chat is over.
struct Submit {
    tx: UnboundedSender<String>,
    leave: Arc<AtomicBool>,
    history: Arc<Mutex<History>>,
}

impl ConditionalEventHandler for Submit {
    fn handle(&self, _: &Event, _: RepeatCount, _: bool, ctx: &EventContext) -> Option<Cmd> {
        if self.leave.load(Ordering::SeqCst) {
            return Some(Cmd::AcceptLine);
        }
        let line = ctx.line();
        if line.trim().is_empty() {
            return Some(Cmd::Noop);
        }
        self.history
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(line);
        let quit = is_quit(line);
        if self.tx.send(line.to_owned()).is_err() || quit {
            return Some(Cmd::AcceptLine);
        }
        // Not `Replace(…, None)`: rustyline repeats the last insertion for that.
        Some(Cmd::Kill(Movement::WholeBuffer))
    }
}

/// Up and down arrows: the lines sent earlier in this chat.
struct Browse {
    older: bool,
    history: Arc<Mutex<History>>,
}

impl ConditionalEventHandler for Browse {
    fn handle(&self, _: &Event, _: RepeatCount, _: bool, ctx: &EventContext) -> Option<Cmd> {
        let mut history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        let line = if self.older {
            history.older(ctx.line())
        } else {
            history.newer()
        };
        Some(match line {
            Some(line) if line.is_empty() => Cmd::Kill(Movement::WholeBuffer),
            Some(line) => Cmd::Replace(Movement::WholeBuffer, Some(line)),
            None => Cmd::Noop,
        })
    }
}

/// The lines sent in this chat, in memory only (wiped when dropped), and where the arrows
/// are in them.
#[derive(Debug, Default)]
pub(super) struct History {
    lines: Vec<Zeroizing<String>>,
    /// The line shown: `lines.len()` for the draft being typed.
    at: usize,
    /// What was typed before browsing started.
    draft: Zeroizing<String>,
}

impl History {
    /// Most lines kept.
    const MAX: usize = 200;

    /// Records a line sent (not twice in a row) and goes back to a fresh draft.
    pub(super) fn push(&mut self, line: &str) {
        if self.lines.last().map(|l| l.as_str()) != Some(line) {
            if self.lines.len() == Self::MAX {
                self.lines.remove(0);
            }
            self.lines.push(Zeroizing::new(line.to_owned()));
        }
        self.at = self.lines.len();
        self.draft = Zeroizing::default();
    }

    /// The line before the one shown (`current` is kept as the draft when leaving it).
    pub(super) fn older(&mut self, current: &str) -> Option<String> {
        if self.at == 0 {
            return None;
        }
        if self.at == self.lines.len() {
            self.draft = Zeroizing::new(current.to_owned());
        }
        self.at -= 1;
        Some(self.lines[self.at].to_string())
    }

    /// The line after the one shown, then the draft.
    pub(super) fn newer(&mut self) -> Option<String> {
        if self.at >= self.lines.len() {
            return None;
        }
        self.at += 1;
        Some(match self.lines.get(self.at) {
            Some(line) => line.to_string(),
            None => self.draft.to_string(),
        })
    }
}
