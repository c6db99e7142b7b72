//! Command line (SPEC section 8, contract): one clap subcommand per job.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Missed-call processor for Asterisk: AMI events in, missed calls and callback tasks out.
#[derive(Debug, Parser)]
#[command(name = "missedcalld", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: connect to AMI and record missed calls and callback tasks.
    Run {
        /// Configuration file (TOML).
        #[arg(long, default_value = "/etc/missedcalld/missedcalld.toml")]
        config: PathBuf,
    },
    /// Feed recorded raw AMI byte streams through the pipeline into a database.
    Replay {
        /// Configuration file (TOML); defaults apply without it.
        #[arg(long)]
        config: Option<PathBuf>,
        /// SQLite database to write.
        #[arg(long)]
        db: PathBuf,
        /// Print the number of events by name instead of nothing.
        #[arg(long)]
        stats: bool,
        /// Capture files, replayed in order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// List missed calls.
    Missed {
        /// SQLite database to read.
        #[arg(long)]
        db: PathBuf,
        /// Only calls that ended at or after this time (RFC 3339 or YYYY-MM-DD).
        #[arg(long)]
        since: Option<String>,
        /// Only calls that ended before this time (RFC 3339 or YYYY-MM-DD).
        #[arg(long)]
        until: Option<String>,
        /// One JSON array on stdout.
        #[arg(long)]
        json: bool,
    },
    /// List callback tasks.
    Tasks {
        /// SQLite database to read.
        #[arg(long)]
        db: PathBuf,
        /// Only tasks with this status: open, overdue, done_on_time, done_late.
        #[arg(long)]
        status: Option<String>,
        /// One JSON array on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Missed/answered/callback report.
    Report {
        /// SQLite database to read.
        #[arg(long)]
        db: PathBuf,
        /// Start of the period (RFC 3339 or YYYY-MM-DD).
        #[arg(long)]
        since: Option<String>,
        /// End of the period (RFC 3339 or YYYY-MM-DD).
        #[arg(long)]
        until: Option<String>,
        /// Break the totals down by day, queue, agent or did.
        #[arg(long, default_value = "day")]
        by: String,
        /// One JSON object on stdout.
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        /// CSV on stdout.
        #[arg(long)]
        csv: bool,
    },
    /// Validate a configuration file and name the bad field.
    CheckConfig {
        /// Configuration file (TOML).
        #[arg(long, default_value = "/etc/missedcalld/missedcalld.toml")]
        config: PathBuf,
    },
    /// Show the daemon working on the bundled sample captures, no PBX needed.
    Demo,
}

/// Runs one subcommand and maps its error to a non-zero exit code.
pub fn main(cli: Cli) -> ExitCode {
    let result: anyhow::Result<()> = match cli.command {
        _ => Err(anyhow::anyhow!("not implemented yet")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("missedcalld: {err:#}");
            ExitCode::from(2)
        }
    }
}
