//! Log setup: tracing to stderr in a journald-friendly form.
//!
//! - Level from `[log] level`; the `RUST_LOG` environment variable wins when set.
//! - No ANSI colours unless stderr is a terminal.
//! - Under journald (`JOURNAL_STREAM` set) no timestamps, since the journal adds its own, and
//!   each line starts with a syslog priority `<N>` that journald turns into the entry's
//!   priority (so `journalctl -p warning` works).
//! - The filter can be replaced at run time (SIGHUP) through [`reload`].

use std::io::IsTerminal;
use std::sync::OnceLock;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload as tracing_reload};

use crate::config::{LogFormat, LogSection};

/// Environment variable that overrides `[log] level`.
pub const ENV_FILTER_VAR: &str = "RUST_LOG";

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// `RUST_LOG` or `[log] level` is not a valid filter.
    #[error("{source_name}: {value:?} is not a log filter: {message}")]
    BadFilter {
        /// `RUST_LOG` or `log.level`.
        source_name: &'static str,
        /// The offending text.
        value: String,
        /// The parser's explanation.
        message: String,
    },
    /// A global subscriber was installed already.
    #[error("logging is already initialised")]
    AlreadyInitialised,
}

type FilterHandle = tracing_reload::Handle<EnvFilter, Registry>;

struct Installed {
    handle: FilterHandle,
    format: LogFormat,
}

static INSTALLED: OnceLock<Installed> = OnceLock::new();

/// Builds the filter: `RUST_LOG` when set and non-empty, else the configured level.
pub fn filter_for(log: &LogSection) -> Result<EnvFilter, LoggingError> {
    let (source_name, value) = match std::env::var(ENV_FILTER_VAR) {
        Ok(v) if !v.trim().is_empty() => ("RUST_LOG", v),
        _ => ("log.level", log.level.clone()),
    };
    EnvFilter::builder()
        .parse(&value)
        .map_err(|e| LoggingError::BadFilter {
            source_name,
            value,
            message: e.to_string(),
        })
}

/// True when stderr goes to journald (systemd sets `JOURNAL_STREAM` for services whose
/// output it captures).
pub fn under_journald() -> bool {
    std::env::var_os("JOURNAL_STREAM").is_some_and(|v| !v.is_empty())
}

/// Installs the global subscriber. Call once, before anything logs.
pub fn init(log: &LogSection) -> Result<(), LoggingError> {
    let filter = filter_for(log)?;
    let (filter_layer, handle) = tracing_reload::Layer::new(filter);
    let journald = under_journald();
    let timestamps = match log.format {
        LogFormat::Auto => !journald,
        LogFormat::Full => true,
        LogFormat::Journal => false,
    };
    let ansi = std::io::stderr().is_terminal() && !journald;
    let base = tracing_subscriber::fmt::format()
        .with_ansi(ansi)
        .with_target(false);
    let fmt_layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let registry = tracing_subscriber::registry().with(filter_layer);
    // Two branches because `without_time()` changes the formatter's type.
    let result = if timestamps {
        registry
            .with(fmt_layer.event_format(SyslogPrefix {
                inner: base,
                enabled: journald,
            }))
            .try_init()
    } else {
        registry
            .with(fmt_layer.event_format(SyslogPrefix {
                inner: base.without_time(),
                enabled: journald,
            }))
            .try_init()
    };
    result.map_err(|_| LoggingError::AlreadyInitialised)?;
    let _ = INSTALLED.set(Installed {
        handle,
        format: log.format,
    });
    Ok(())
}

/// Applies a new `[log]` section (SIGHUP). A no-op when [`init`] was not called (tests, demo
/// under a caller's own subscriber). The format is fixed at start; a change is reported.
pub fn reload(log: &LogSection) -> Result<(), LoggingError> {
    let Some(installed) = INSTALLED.get() else {
        return Ok(());
    };
    let filter = filter_for(log)?;
    let _ = installed.handle.reload(filter);
    if installed.format != log.format {
        tracing::warn!(
            "log.format changed: takes effect at the next restart (the level applies now)"
        );
    }
    Ok(())
}

/// Prefixes each line with `<N>`, the syslog priority journald reads from a stream.
struct SyslogPrefix<F> {
    inner: F,
    enabled: bool,
}

impl<S, N, F> FormatEvent<S, N> for SyslogPrefix<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        if self.enabled {
            write!(writer, "<{}>", syslog_priority(*event.metadata().level()))?;
        }
        self.inner.format_event(ctx, writer, event)
    }
}

/// tracing level to syslog priority (err 3, warning 4, info 6, debug 7).
pub fn syslog_priority(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_follow_syslog() {
        assert_eq!(syslog_priority(Level::ERROR), 3);
        assert_eq!(syslog_priority(Level::WARN), 4);
        assert_eq!(syslog_priority(Level::INFO), 6);
        assert_eq!(syslog_priority(Level::TRACE), 7);
    }

    #[test]
    fn configured_level_is_parsed() {
        if std::env::var_os(ENV_FILTER_VAR).is_some() {
            return; // RUST_LOG wins; nothing to check about the configured level here
        }
        let ok = LogSection {
            level: "warn,missedcalld::ami=debug".into(),
            ..LogSection::default()
        };
        assert!(filter_for(&ok).is_ok());
        let bad = LogSection {
            level: "info,[[[".into(),
            ..LogSection::default()
        };
        let e = filter_for(&bad).unwrap_err();
        assert!(e.to_string().starts_with("log.level:"), "{e}");
    }
}
