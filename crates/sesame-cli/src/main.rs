//! The `sesame` command: runs the server (`sesame serve`, `sesame admin`) and is its
//! command-line client (`sesame register`, `login`, `whoami`, `sessions`, `logout`).
#![forbid(unsafe_code)]

mod account_cmds;
mod admin;
mod admin_oidc;
mod chat;
mod client_cmds;
mod examples;
mod keys_cmds;
mod output;
mod serve;
mod server_cmds;

use std::process::ExitCode;

use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

/// Sesame: a login server built on OPAQUE, and its command-line client.
#[derive(Debug, Parser)]
#[command(name = "sesame", version, about, long_about = None, after_help = EXAMPLES)]
struct Cli {
    /// The Sesame server the client commands talk to.
    #[arg(
        long,
        global = true,
        env = "SESAME_SERVER",
        default_value = "http://127.0.0.1:7878",
        value_name = "URL"
    )]
    server: String,
    /// A private CA (PEM) to verify an https:// server's certificate against, instead of
    /// the public roots and the certificate pinned on first contact.
    #[arg(long, global = true, env = "SESAME_CA_FILE", value_name = "PEM")]
    ca_file: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// Shown after `sesame --help`.
const EXAMPLES: &str = "\
Examples:
  sesame serve                              run the server (data in ./sesame-data)
  sesame register alice                     create an account (the password never leaves here)
  sesame login alice                        sign in; the session is kept in the profile
  sesame send bob \"see you at 8\"            an end-to-end encrypted message
  sesame chat bob                           chat interactively (/quit or Ctrl-D to leave)
  sesame admin user grant-admin alice       operator commands, on the server's machine
  sesame completions bash > ~/.local/share/bash-completion/completions/sesame

Environment:
  SESAME_SERVER   the server the client commands talk to (default http://127.0.0.1:7878)
  SESAME_HOME     the client profile: sessions, pinned keys, messaging keys and history
                  (default ~/.config/sesame)
  SESAME_CA_FILE  a private CA for an https:// server";

/// Every subcommand: the server's own, then the client's.
#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server until SIGINT/SIGTERM.
    Serve(serve::ServeArgs),
    /// Operator commands on the server's database.
    Admin(admin::AdminArgs),
    #[command(flatten)]
    Client(client_cmds::ClientCommand),
    #[command(flatten)]
    Account(account_cmds::AccountCommand),
    /// Identity keys for messaging: show them, verify a contact's safety number, accept a
    /// contact's changed keys.
    Keys(keys_cmds::KeysArgs),
    /// Send one end-to-end encrypted message.
    Send(chat::SendArgs),
    /// Fetch, verify, decrypt and show the waiting messages, then acknowledge them.
    Inbox(chat::InboxArgs),
    /// Chat with one user interactively (end-to-end encrypted).
    Chat(chat::ChatArgs),
    /// The keys this profile pinned for a server; forget them when they were replaced on
    /// purpose.
    Server(server_cmds::ServerArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("sesame: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Parses the command line and runs the command.
async fn run() -> anyhow::Result<()> {
    let matches = examples::finish(Cli::command()).get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    client_cmds::set_ca_file(cli.ca_file.clone());
    match cli.command {
        Command::Serve(args) => serve::run(args).await,
        Command::Admin(args) => admin::run(args).await,
        Command::Client(cmd) => client_cmds::run(&cli.server, cmd).await,
        Command::Account(cmd) => account_cmds::run(&cli.server, cmd).await,
        Command::Keys(args) => keys_cmds::run(&cli.server, args).await,
        Command::Send(args) => chat::send(&cli.server, args).await,
        Command::Inbox(args) => chat::inbox(&cli.server, args).await,
        Command::Chat(args) => chat::chat(&cli.server, args).await,
        Command::Server(args) => server_cmds::run(&cli.server, args),
        Command::Completions { shell } => {
            let mut script = Vec::new();
            let mut cmd = examples::finish(Cli::command());
            clap_complete::generate(shell, &mut cmd, "sesame", &mut script);
            std::io::Write::write_all(&mut std::io::stdout(), &script)
                .or_else(|e| match e.kind() {
                    std::io::ErrorKind::BrokenPipe => Ok(()),
                    _ => Err(e),
                })
                .map_err(Into::into)
        }
    }
}

#[cfg(test)]
mod tests;
