//! Output options shared by the client commands.

use clap::Args;

/// `--json` of the commands that print data.
#[derive(Debug, Args)]
pub struct JsonArgs {
    /// Print JSON instead of text (for scripts).
    #[arg(long)]
    pub json: bool,
}
