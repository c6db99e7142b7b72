//! Log setup: tracing to stderr in a journald-friendly form.
//!
//! - Level from `[log] level`; the `RUST_LOG` environment variable wins when set.
//! - No ANSI colours unless stderr is a terminal.
//! - Under journald (`JOURNAL_STREAM` set) no timestamps, since the journal adds its own, and
//!   each line starts with a syslog priority `<N>` that journald turns into the entry's
//!   priority (so `journalctl -p warning` works).
//! - The filter can be replaced at run time (SIGHUP) through [`reload`].
//! - Every level word is checked ([`parse_filter`]): `warning` or `infoo` is an error naming
//!   `log.level` (or `RUST_LOG`), not a filter that silently matches nothing.
//! - Field values and messages carry AMI data (names, numbers): raw control bytes in them (ESC,
//!   CR, LF...) are written escaped (`\x1b`), so a caller name cannot forge or colour log lines.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::sync::OnceLock;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::field::MakeExt;
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
    #[error("{source_name}: {message}")]
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

/// Level words a directive may end with (`level` or `target=level`), in any case.
const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

/// Parses a filter such as `info` or `warn,missedcalld::ami=debug`. Stricter than `EnvFilter`,
/// which takes a bare unknown word (`warning`) as a target name and so filters out everything.
pub fn parse_filter(spec: &str) -> Result<EnvFilter, String> {
    let words = || LEVELS.join(", ");
    if spec.trim().is_empty() {
        return Err(format!("is empty; use one of {}", words()));
    }
    for directive in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        // Span filters (`target[span{field=value}]=level`) are left to EnvFilter.
        if directive.contains('[') {
            continue;
        }
        let level = directive
            .rsplit_once('=')
            .map_or(directive, |(_, l)| l)
            .trim();
        if !LEVELS.iter().any(|l| l.eq_ignore_ascii_case(level)) {
            let within = if directive == spec.trim() {
                String::new()
            } else {
                format!(" (in {spec:?})")
            };
            return Err(format!(
                "{level:?}{within} is not a log level; use one of {}, or target=level",
                words()
            ));
        }
    }
    EnvFilter::builder()
        .parse(spec)
        .map_err(|e| format!("{spec:?} is not a log filter: {e}"))
}

/// Builds the filter: `RUST_LOG` when set and non-empty, else the configured level.
pub fn filter_for(log: &LogSection) -> Result<EnvFilter, LoggingError> {
    let (source_name, value) = match std::env::var(ENV_FILTER_VAR) {
        Ok(v) if !v.trim().is_empty() => ("RUST_LOG", v),
        _ => ("log.level", log.level.clone()),
    };
    parse_filter(&value).map_err(|message| LoggingError::BadFilter {
        source_name,
        value,
        message,
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
        .with_ansi(ansi)
        .fmt_fields(escaping_fields());
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

/// The field formatter of every log line: `name=value` pairs, the message first, with control
/// characters in values escaped.
pub fn escaping_fields() -> impl for<'w> FormatFields<'w> + Send + Sync + 'static {
    tracing_subscriber::fmt::format::debug_fn(|w, field, value| {
        if field.name() != "message" {
            write!(w, "{field}=")?;
        }
        write!(Escaped(w), "{value:?}")
    })
    .delimited(" ")
}

/// Writes through to `W`, replacing control characters with `\xNN` / `\u{NNNN}` escapes.
struct Escaped<'a, W: std::fmt::Write>(&'a mut W);

impl<W: std::fmt::Write> std::fmt::Write for Escaped<'_, W> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let mut rest = s;
        while let Some(i) = rest.find(char::is_control) {
            self.0.write_str(&rest[..i])?;
            let c = rest[i..].chars().next().unwrap_or_default();
            if c.is_ascii() {
                write!(self.0, "\\x{:02x}", c as u32)?;
            } else {
                write!(self.0, "\\u{{{:04x}}}", c as u32)?;
            }
            rest = &rest[i + c.len_utf8()..];
        }
        self.0.write_str(rest)
    }
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

    #[test]
    fn unknown_level_words_are_refused() {
        for bad in [
            "warning",
            "infoo",
            "",
            " , ",
            "info,missedcalld=verbose",
            "missedcalld",
        ] {
            assert!(parse_filter(bad).is_err(), "{bad:?}");
        }
        for ok in [
            "info",
            "Warn",
            "off",
            "info,missedcalld::ami=debug",
            "missedcalld=trace",
        ] {
            assert!(parse_filter(ok).is_ok(), "{ok:?}");
        }
    }

    /// A log line as the daemon formats it, with `log` running under the daemon's formatter.
    fn formatted(log: impl FnOnce()) -> String {
        use std::sync::{Arc, Mutex};
        let buf = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = Arc::clone(&buf);
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || SharedBuf(Arc::clone(&sink)))
            .with_ansi(false)
            .without_time()
            .fmt_fields(escaping_fields())
            .finish();
        tracing::subscriber::with_default(subscriber, log);
        let bytes = buf.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    struct SharedBuf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for SharedBuf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn control_bytes_from_ami_data_are_escaped() {
        let name = "Eve\x1b[31mRED\r\nINFO forged line\u{85}";
        let line = formatted(|| {
            tracing::info!(number = %name, other = name, "missed call from {name}");
        });
        assert_eq!(line.matches('\n').count(), 1, "{line:?}");
        assert!(line.ends_with('\n'), "{line:?}");
        assert!(
            !line[..line.len() - 1].contains(|c: char| c.is_control()),
            "{line:?}"
        );
        assert!(
            line.contains("missed call from Eve\\x1b[31mRED\\x0d\\x0aINFO forged line\\u{0085}"),
            "{line:?}"
        );
        assert!(line.contains("number=Eve\\x1b[31m"), "{line:?}");
    }
}
