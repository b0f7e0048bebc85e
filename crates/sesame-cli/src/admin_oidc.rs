//! `sesame admin oidc …`, `sesame admin keys …` and `sesame admin group …`: the OpenID
//! Connect provider's clients, ID-token signing keys and groups (docs/oidc.md).

use sesame_server::oidc::{ClientSpec, IdTokenAlg, RegisteredClient};
use sesame_server::Sesame;

/// `sesame admin oidc …`.
#[derive(Debug, clap::Subcommand)]
pub enum OidcCommand {
    /// Registered clients (relying parties).
    Client {
        #[command(subcommand)]
        command: ClientCommand,
    },
}

/// `sesame admin oidc client …`.
#[derive(Debug, clap::Subcommand)]
pub enum ClientCommand {
    /// Register a client; prints its id and, for a confidential client, its secret (once).
    Add {
        /// The name shown on the consent screen.
        name: String,
        /// A redirect URI, matched exactly (repeat for several).
        #[arg(long = "redirect-uri", required = true, num_args = 1..)]
        redirect_uris: Vec<String>,
        /// A post-logout redirect URI, matched exactly (repeat for several).
        #[arg(long = "post-logout-redirect-uri", num_args = 1..)]
        post_logout_redirect_uris: Vec<String>,
        /// A public client (browser or native app): no secret, PKCE required.
        #[arg(long)]
        public: bool,
        /// The scopes it may ask for (default: openid profile email groups offline_access).
        #[arg(long, num_args = 1.., value_delimiter = ',')]
        scopes: Vec<String>,
        /// `skip` for a first-party app whose users are not asked to consent.
        #[arg(long, value_parser = ["ask", "skip"], default_value = "ask")]
        consent: String,
        /// The ID token algorithm.
        #[arg(long = "id-token-alg", value_parser = ["RS256", "EdDSA"], default_value = "RS256")]
        id_token_alg: String,
        /// Use this client id instead of a random one.
        #[arg(long)]
        id: Option<String>,
    },
    /// List the clients.
    List,
    /// Show one client.
    Show {
        /// The client id.
        id: String,
    },
    /// Remove a client with its consents and tokens.
    Remove {
        /// The client id.
        id: String,
    },
    /// Draw a new secret for a confidential client (the old one stops working).
    RotateSecret {
        /// The client id.
        id: String,
    },
}

/// `sesame admin keys …`: the OpenID Connect ID-token signing keys.
#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Add new RS256 and EdDSA keys: published now, signing after `--activate-in`; the old
    /// keys stay published until the tokens they signed expire.
    Rotate {
        /// How long relying parties have to fetch the new keys before they sign.
        #[arg(long = "activate-in", default_value = "1h")]
        activate_in: humantime::Duration,
    },
    /// List the keys and their state.
    List,
}

/// `sesame admin group …`.
#[derive(Debug, clap::Subcommand)]
pub enum GroupCommand {
    /// Create a group.
    Create {
        /// The group name (the value of the `groups` claim).
        name: String,
    },
    /// Delete a group.
    Delete {
        /// The group name.
        name: String,
    },
    /// Add a user to a group.
    Add {
        /// The group name.
        group: String,
        /// The username.
        user: String,
    },
    /// Remove a user from a group.
    Remove {
        /// The group name.
        group: String,
        /// The username.
        user: String,
    },
    /// List the groups and their members.
    List,
}

fn print_client(c: &RegisteredClient, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(c)?);
        return Ok(());
    }
    println!("client_id      {}", c.client_id);
    if let Some(secret) = &c.client_secret {
        println!("client_secret  {secret}   (shown once: store it now)");
    }
    println!("name           {}", c.name);
    println!(
        "type           {}",
        if c.public {
            "public (PKCE)"
        } else {
            "confidential"
        }
    );
    println!("redirect_uris  {}", c.redirect_uris.join(" "));
    println!("logout_uris    {}", c.post_logout_redirect_uris.join(" "));
    println!("scopes         {}", c.scopes.join(" "));
    println!(
        "consent        {}",
        if c.skip_consent { "skip" } else { "ask" }
    );
    println!("id_token_alg   {}", c.id_token_alg);
    println!("source         {}", c.source);
    Ok(())
}

/// Runs `sesame admin oidc …`.
pub async fn oidc(s: &Sesame, cmd: OidcCommand, json: bool) -> anyhow::Result<()> {
    match cmd {
        OidcCommand::Client { command } => client(s, command, json).await,
    }
}

/// Runs `sesame admin keys …`.
pub async fn keys(s: &Sesame, cmd: KeysCommand, json: bool) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::Rotate { activate_in } => {
            let delay = i64::try_from(activate_in.as_secs())?;
            let kids = s.oidc_rotate_keys(delay).await?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "published": kids, "activate_in_secs": delay })
                );
            }
            for kid in kids.iter().filter(|_| !json) {
                println!("published {kid}, signing in {activate_in}");
            }
        }
        KeysCommand::List => {
            let now = i64::try_from(s.now())?;
            let mut all = Vec::new();
            for (k, _, signing) in s.oidc_key_states().await? {
                let state = match (signing, k.active_from > now) {
                    (true, _) => "signing",
                    (false, true) => "next",
                    (false, false) => "retiring",
                };
                if !json {
                    println!(
                        "{:<18} {:<6} {state:<8} active from {}",
                        k.kid, k.alg, k.active_from
                    );
                }
                all.push(serde_json::json!({ "kid": k.kid, "alg": k.alg, "state": state, "active_from": k.active_from }));
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            }
        }
    }
    Ok(())
}

async fn client(s: &Sesame, cmd: ClientCommand, json: bool) -> anyhow::Result<()> {
    match cmd {
        ClientCommand::Add {
            name,
            redirect_uris,
            post_logout_redirect_uris,
            public,
            scopes,
            consent,
            id_token_alg,
            id,
        } => {
            let spec = ClientSpec {
                id,
                name,
                redirect_uris,
                post_logout_redirect_uris,
                public,
                scopes,
                skip_consent: consent == "skip",
                id_token_alg: IdTokenAlg::parse(&id_token_alg).unwrap_or_default(),
                secret: None,
            };
            print_client(&s.oidc_register_client(spec, "cli").await?, json)
        }
        ClientCommand::List => {
            let all = s.oidc_clients().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            }
            for c in all.iter().filter(|_| !json) {
                let kind = if c.public { "public" } else { "confidential" };
                println!(
                    "{:<34} {kind:<12} {:<6} {}",
                    c.client_id, c.id_token_alg, c.name
                );
            }
            Ok(())
        }
        ClientCommand::Show { id } => match s.oidc_client(&id).await? {
            Some(c) => print_client(&c, json),
            None => anyhow::bail!("no client {id}"),
        },
        ClientCommand::Remove { id } => {
            anyhow::ensure!(s.oidc_remove_client(&id).await?, "no client {id}");
            crate::admin::done(json, &format!("removed {id}"))
        }
        ClientCommand::RotateSecret { id } => print_client(&s.oidc_rotate_secret(&id).await?, json),
    }
}

/// Runs `sesame admin group …`.
pub async fn group(s: &Sesame, cmd: GroupCommand, json: bool) -> anyhow::Result<()> {
    match cmd {
        GroupCommand::Create { name } => {
            anyhow::ensure!(s.oidc_group_create(&name).await?, "group {name} exists");
            crate::admin::done(json, &format!("created {name}"))?;
        }
        GroupCommand::Delete { name } => {
            anyhow::ensure!(s.oidc_group_delete(&name).await?, "no group {name}");
            crate::admin::done(json, &format!("deleted {name}"))?;
        }
        GroupCommand::Add { group, user } => {
            s.oidc_group_member(&group, &user, true).await?;
            crate::admin::done(json, &format!("{user} is in {group}"))?;
        }
        GroupCommand::Remove { group, user } => {
            s.oidc_group_member(&group, &user, false).await?;
            crate::admin::done(json, &format!("{user} is not in {group}"))?;
        }
        GroupCommand::List => {
            let all = s.oidc_groups().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            }
            for g in all.iter().filter(|_| !json) {
                println!("{:<24} {}", g.name, g.members.join(" "));
            }
        }
    }
    Ok(())
}
