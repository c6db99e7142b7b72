//! Command line (SPEC section 8, contract): one clap subcommand per job.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::callbacks::ShownStatus;
use crate::config::{Config, ConfigError, DEFAULT_CONFIG_PATH};
use crate::output;
use crate::pipeline::Pipeline;
use crate::replay::{check_inputs, replay_into, replay_pipelined};
use crate::report::{self, ReportBy, ReportFormat};
use crate::store::Store;
use crate::time::{LocalTime, PbxClock};

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
        #[arg(long, default_value = DEFAULT_CONFIG_PATH)]
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
        /// Read, parse and track on one thread (slower; the same results as the default, which
        /// reads and frames on a second thread).
        #[arg(long)]
        single_thread: bool,
        /// Send the configured notifications for what is replayed (by default a replay
        /// notifies nobody).
        #[arg(long)]
        notify: bool,
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
        /// Only tasks with this status.
        #[arg(long)]
        status: Option<ShownStatus>,
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
        /// Break the totals down by day, month, queue, agent or did.
        #[arg(long, value_enum, default_value = "day")]
        by: ReportBy,
        /// One JSON object on stdout.
        #[arg(long, conflicts_with_all = ["csv", "html"])]
        json: bool,
        /// CSV on stdout.
        #[arg(long, conflicts_with = "html")]
        csv: bool,
        /// Write one self-contained HTML page to FILE and print its path.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
    },
    /// List notifications pending or failed.
    Outbox {
        /// SQLite database to read.
        #[arg(long)]
        db: PathBuf,
        /// One JSON array on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Validate a configuration file and name the bad field.
    CheckConfig {
        /// Configuration file (TOML).
        #[arg(long, default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
    },
    /// Show the daemon working on the bundled sample captures, no PBX needed.
    Demo,
}

/// Runs one subcommand and maps its error to a non-zero exit code.
pub fn main(cli: Cli) -> ExitCode {
    let stdout = &mut std::io::stdout().lock();
    let result: anyhow::Result<()> = match cli.command {
        Command::Run { config } => crate::daemon::run_command(&config),
        Command::Replay {
            config,
            db,
            stats,
            single_thread,
            notify,
            files,
        } => {
            let how = ReplayOptions {
                stats,
                single_thread,
                notify,
            };
            replay_command(config.as_deref(), &db, how, &files, stdout)
        }
        Command::Outbox { db, json } => crate::notify::list::outbox(&db, json, stdout),
        Command::Missed {
            db,
            since,
            until,
            json,
        } => output::missed(&db, since.as_deref(), until.as_deref(), json, stdout),
        Command::Tasks { db, status, json } => output::tasks(&db, status, json, stdout),
        Command::Report {
            db,
            since,
            until,
            by,
            json,
            csv,
            html,
        } => {
            let format = match (json, csv, html) {
                (true, _, _) => ReportFormat::Json,
                (_, true, _) => ReportFormat::Csv,
                (_, _, Some(path)) => ReportFormat::Html(path),
                _ => ReportFormat::Text,
            };
            let req = report::Request {
                since: since.as_deref(),
                until: until.as_deref(),
                by,
                format,
                now: PbxClock::assume_equal().to_pbx(LocalTime::now()),
                tty: std::io::IsTerminal::is_terminal(&std::io::stdout()),
            };
            report::run(&db, &req, stdout)
        }
        Command::CheckConfig { config } => {
            return check_config(&config, stdout, &mut std::io::stderr());
        }
        Command::Demo => crate::demo::run_command(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `missedcalld missed | head`: the reader went away, which is not a failure.
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("missedcalld: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The `replay` switches.
#[derive(Debug, Clone, Copy)]
struct ReplayOptions {
    /// `--stats`.
    stats: bool,
    /// `--single-thread`.
    single_thread: bool,
    /// `--notify`.
    notify: bool,
}

/// `missedcalld replay`: captures through tracker and store into `db` (`--db` wins over the
/// config's `store.path`).
fn replay_command(
    config: Option<&Path>,
    db: &Path,
    how: ReplayOptions,
    files: &[PathBuf],
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let cfg = match config {
        Some(path) => Config::load(path).map_err(|e| anyhow::anyhow!("{e}"))?,
        None => Config::default(),
    };
    crate::logging::init(&cfg.log)?;
    check_inputs(files)?;
    let mut settings = crate::daemon::store_settings(&cfg)?;
    settings.path = db.to_path_buf();
    let routes = crate::notify::outbox::Routes::new(&cfg.notify);
    let notify = how.notify && !routes.is_empty();
    if notify {
        settings.notify = Some(std::sync::Arc::new(routes));
    }
    // Nobody waits to see a replayed call: big transactions.
    settings.batch_linger = settings.batch_max_delay;
    let created = !db.exists();
    let replayed = (|| {
        let store = Store::open(settings).with_context(|| format!("opening {}", db.display()))?;
        let mut pipeline = Pipeline::new(cfg.calls.clone(), store);
        // A replay never saves its calls in progress: they end with the recording.
        pipeline.keep_journal(false);
        let started = std::time::Instant::now();
        let seen = if how.single_thread {
            replay_into(files, &mut pipeline)?
        } else {
            replay_pipelined(files, &mut pipeline)?
        };
        pipeline
            .into_sink()
            .close()
            .context("committing the replay")?;
        anyhow::Ok((seen, started))
    })();
    let (seen, started) = match replayed {
        Ok(done) => done,
        Err(e) => {
            if created {
                remove_database(db);
            }
            return Err(e);
        }
    };
    if notify {
        let left = crate::notify::worker::drain(crate::notify::worker::WorkerSettings {
            db: db.to_path_buf(),
            config: cfg.notify.clone(),
            calendar: crate::callbacks::sla::Calendar::new(&cfg.calendar)
                .map_err(|e| anyhow::anyhow!("{e}"))?,
            clock: crate::notify::worker::wall_clock(),
            scans: false,
        })?;
        if left.pending + left.failed > 0 {
            tracing::warn!(
                pending = left.pending,
                failed = left.failed,
                "not every notification was delivered; `missedcalld run` on this database retries the pending ones, `missedcalld outbox` lists them"
            );
        }
    }
    let secs = started.elapsed().as_secs_f64();
    if how.stats {
        write!(out, "{}", seen.render())?;
        writeln!(
            out,
            "{:>10.3}  seconds ({:.0} events/s)",
            secs,
            seen.events as f64 / secs.max(1e-9)
        )?;
    }
    Ok(())
}

/// Removes a database file this command created (with its WAL and shared-memory files).
fn remove_database(db: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

/// `missedcalld check-config`: prints `OK: <path>` and a summary (exit 0) or the error naming
/// the field (exit 1).
pub fn check_config(path: &Path, out: &mut dyn Write, err: &mut dyn Write) -> ExitCode {
    match Config::load(path) {
        Ok(cfg) => {
            let _ = writeln!(out, "OK: {}", path.display());
            let _ = writeln!(out, "{}", cfg.summary());
            ExitCode::SUCCESS
        }
        Err(e @ (ConfigError::Invalid { .. } | ConfigError::SecretFile { .. })) => {
            let _ = writeln!(
                err,
                "missedcalld: invalid configuration: {}: {e}",
                path.display()
            );
            ExitCode::from(1)
        }
        Err(e) => {
            let _ = writeln!(err, "missedcalld: invalid configuration: {e}");
            ExitCode::from(1)
        }
    }
}

/// `--status` takes the contract spellings of [`ShownStatus`].
impl clap::ValueEnum for ShownStatus {
    fn value_variants<'a>() -> &'a [Self] {
        &ShownStatus::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tasks_status(value: &str) -> Result<Option<ShownStatus>, clap::Error> {
        let cli = Cli::try_parse_from(["missedcalld", "tasks", "--db", "x.db", "--status", value])?;
        match cli.command {
            Command::Tasks { status, .. } => Ok(status),
            _ => panic!("parsed another command"),
        }
    }

    #[test]
    fn tasks_status_takes_the_contract_spellings() {
        for s in ShownStatus::ALL {
            assert_eq!(tasks_status(s.as_str()).expect("valid status"), Some(s));
        }
        let err = tasks_status("pending")
            .expect_err("unknown status")
            .to_string();
        assert!(err.contains("'pending'"), "{err}");
        assert!(
            err.contains("open, overdue, done_on_time, done_late"),
            "{err}"
        );
    }
}
