//! `sesame server`: what this profile trusts about a server, and forgetting it when its keys
//! were replaced on purpose (instead of editing `known_servers.json` by hand).

use anyhow::Context as _;
use clap::{Args, Subcommand};
use sesame_client::profile::Profile;

/// Flags and subcommands of `sesame server`.
#[derive(Debug, Args)]
pub struct ServerArgs {
    #[command(subcommand)]
    command: ServerCommand,
}

#[derive(Debug, Subcommand)]
enum ServerCommand {
    /// Show the keys pinned for the server (--server or URL).
    Show {
        /// The server (default: --server).
        url: Option<String>,
        /// Print JSON instead of text (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// Forget the keys pinned for the server: its OPAQUE key and its TLS certificate. The
    /// next login trusts what the server then presents. Do this only when you know the
    /// server's keys were replaced on purpose.
    Forget {
        /// The server (default: --server).
        url: Option<String>,
    },
}

/// Runs `sesame server …` (`server` is the global `--server`).
pub fn run(server: &str, args: ServerArgs) -> anyhow::Result<()> {
    let profile = Profile::open()?;
    match args.command {
        ServerCommand::Show { url, json } => {
            show(&profile, &id(url.as_deref().unwrap_or(server))?, json)
        }
        ServerCommand::Forget { url } => forget(&profile, &id(url.as_deref().unwrap_or(server))?),
    }
}

fn id(url: &str) -> anyhow::Result<String> {
    sesame_client::server_id(url).with_context(|| format!("not a server URL: {url}"))
}

fn show(profile: &Profile, server: &str, json: bool) -> anyhow::Result<()> {
    if json {
        let key = profile.pinned_key(server)?;
        let cert = profile.pinned_tls_certificate(server)?;
        let v = serde_json::json!({
            "server": server,
            "server_key": key.map(|k| sesame_client::fingerprint(&k)),
            "tls_certificate": cert.map(|c| sesame_client::tls::certificate_fingerprint(&c)),
            "logged_in_as": profile.load_session(server)?.map(|s| s.username),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("{server}");
    match profile.pinned_key(server)? {
        Some(key) => println!("  server key:      {}", sesame_client::fingerprint(&key)),
        None => println!("  server key:      not pinned (the next login pins it)"),
    }
    match profile.pinned_tls_certificate(server)? {
        Some(cert) => println!(
            "  TLS certificate: {}",
            sesame_client::tls::certificate_fingerprint(&cert)
        ),
        None => println!("  TLS certificate: not pinned"),
    }
    let session = profile.load_session(server)?;
    match session {
        Some(s) => println!("  logged in as:    {}", s.username),
        None => println!("  logged in as:    nobody"),
    }
    Ok(())
}

fn forget(profile: &Profile, server: &str) -> anyhow::Result<()> {
    let key = profile.forget_server(server)?;
    let cert = profile.forget_tls_certificate(server)?;
    if !key && !cert {
        println!("Nothing was pinned for {server}.");
        return Ok(());
    }
    println!(
        "Forgot {} for {server}. The next command trusts what the server presents then: \
         compare its fingerprint with the operator's.",
        match (key, cert) {
            (true, true) => "the server key and the TLS certificate",
            (true, false) => "the server key",
            _ => "the TLS certificate",
        }
    );
    Ok(())
}
