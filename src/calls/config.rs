//! How the tracker recognises inbound, outbound and after-hours calls (the `[calls]` section).

use serde::Deserialize;

/// Contexts an inbound channel enters (FreePBX and common names).
pub const DEFAULT_INBOUND_CONTEXTS: &[&str] = &[
    "from-trunk",
    "from-pstn",
    "from-external",
    "from-did-direct",
    "ext-did",
];
/// Substrings of context names that mean "routed after hours".
pub const DEFAULT_AFTER_HOURS_CONTEXTS: &[&str] =
    &["closed", "after-hours", "afterhours", "night", "holiday"];
/// Channel variables that, set to a non-empty value other than `0`/`no`/`false`, mean after hours.
pub const DEFAULT_AFTER_HOURS_VARIABLES: &[&str] = &["AFTER_HOURS"];
/// Channel variables that carry the DID (FreePBX sets `FROM_DID`).
pub const DEFAULT_DID_VARIABLES: &[&str] = &["FROM_DID"];
/// Contexts an outbound call leaves through (FreePBX).
pub const DEFAULT_OUTBOUND_CONTEXTS: &[&str] = &[
    "outbound-allroutes",
    "macro-dialout-trunk",
    "sub-dialout-trunk",
];
/// Longest number that is still an internal extension.
pub const DEFAULT_INTERNAL_MAX_LENGTH: usize = 6;
/// A call with no event for this long is finished with the `gap` flag.
pub const DEFAULT_EXPIRE_AFTER_SECS: u64 = 4 * 3600;

/// Tracker settings; every field has a default, so an empty `[calls]` section is valid.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackerConfig {
    /// Contexts that make a channel inbound; `ctx` also matches `ctx-<anything>`.
    pub inbound_contexts: Vec<String>,
    /// Channel name prefixes of trunks (e.g. `PJSIP/provider-`): a call starting on one is inbound.
    pub trunk_channels: Vec<String>,
    /// Contexts that make a call outbound when an extension's channel enters them.
    pub outbound_contexts: Vec<String>,
    /// Numbers longer than this, dialled by an extension, are outbound calls.
    pub internal_max_length: usize,
    /// Substrings of context names that mark the after-hours path (case-insensitive).
    pub after_hours_contexts: Vec<String>,
    /// Channel variables that mark a call as routed after hours.
    pub after_hours_variables: Vec<String>,
    /// Channel variables holding the DID, preferred over the extension dialled.
    pub did_variables: Vec<String>,
    /// Seconds without any event after which a call is finished and flagged `gap`.
    pub expire_after_secs: u64,
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            inbound_contexts: strings(DEFAULT_INBOUND_CONTEXTS),
            trunk_channels: Vec::new(),
            outbound_contexts: strings(DEFAULT_OUTBOUND_CONTEXTS),
            internal_max_length: DEFAULT_INTERNAL_MAX_LENGTH,
            after_hours_contexts: strings(DEFAULT_AFTER_HOURS_CONTEXTS),
            after_hours_variables: strings(DEFAULT_AFTER_HOURS_VARIABLES),
            did_variables: strings(DEFAULT_DID_VARIABLES),
            expire_after_secs: DEFAULT_EXPIRE_AFTER_SECS,
        }
    }
}

/// A `[calls]` value that cannot work: the key (without `calls.`) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("calls.{field}: {reason}")]
pub struct TrackerConfigError {
    /// The offending key, e.g. `internal_max_length`.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl TrackerConfig {
    /// Checks values that serde cannot; the error names the field.
    pub fn validate(&self) -> Result<(), TrackerConfigError> {
        let bad = |field, reason| Err(TrackerConfigError { field, reason });
        if self.internal_max_length == 0 || self.internal_max_length > 20 {
            return bad("internal_max_length", "must be 1..20");
        }
        if self.expire_after_secs < 60 {
            return bad("expire_after_secs", "must be at least 60");
        }
        if self.inbound_contexts.iter().any(|c| c.trim().is_empty()) {
            return bad("inbound_contexts", "empty context name");
        }
        Ok(())
    }

    /// `ctx` is one of the inbound contexts (or `<one>-<suffix>`).
    pub fn is_inbound_context(&self, ctx: &str) -> bool {
        matches_context(&self.inbound_contexts, ctx)
    }

    /// `ctx` is one of the outbound contexts (or `<one>-<suffix>`).
    pub fn is_outbound_context(&self, ctx: &str) -> bool {
        matches_context(&self.outbound_contexts, ctx)
    }

    /// `ctx` is on the after-hours path.
    pub fn is_after_hours_context(&self, ctx: &str) -> bool {
        // Runs on every dialplan step of a caller: compare in place, allocate nothing.
        let hay = ctx.as_bytes();
        self.after_hours_contexts.iter().any(|s| {
            let needle = s.as_bytes();
            !needle.is_empty()
                && hay
                    .windows(needle.len())
                    .any(|w| w.eq_ignore_ascii_case(needle))
        })
    }

    /// The channel belongs to a configured trunk.
    pub fn is_trunk_channel(&self, channel: &str) -> bool {
        self.trunk_channels
            .iter()
            .any(|p| !p.is_empty() && channel.starts_with(p.as_str()))
    }

    /// The variable (without `_` prefixes) marks after hours.
    pub fn is_after_hours_variable(&self, bare: &str) -> bool {
        self.after_hours_variables
            .iter()
            .any(|v| v.eq_ignore_ascii_case(bare))
    }

    /// The variable (without `_` prefixes) carries the DID.
    pub fn is_did_variable(&self, bare: &str) -> bool {
        self.did_variables
            .iter()
            .any(|v| v.eq_ignore_ascii_case(bare))
    }
}

fn matches_context(list: &[String], ctx: &str) -> bool {
    list.iter().any(|c| {
        ctx.eq_ignore_ascii_case(c)
            || (ctx.len() > c.len()
                && ctx.as_bytes()[c.len()] == b'-'
                && ctx[..c.len()].eq_ignore_ascii_case(c))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_matching() {
        let c = TrackerConfig::default();
        assert!(c.is_inbound_context("from-trunk"));
        assert!(c.is_inbound_context("from-pstn-e164-us"));
        assert!(!c.is_inbound_context("from-internal"));
        assert!(!c.is_inbound_context("from-trunkx"));
        assert!(c.is_after_hours_context("closed"));
        assert!(c.is_after_hours_context("support-after-hours"));
        assert!(c.is_after_hours_context("Night-Mode"));
        assert!(!c.is_after_hours_context("sub-workhours"));
    }

    #[test]
    fn empty_section_gives_defaults_and_unknown_keys_fail() {
        let c: TrackerConfig = toml::from_str("").unwrap();
        assert_eq!(c, TrackerConfig::default());
        assert!(toml::from_str::<TrackerConfig>("nonsense = 1").is_err());
        let bad = TrackerConfig {
            internal_max_length: 0,
            ..TrackerConfig::default()
        };
        assert_eq!(bad.validate().unwrap_err().field, "internal_max_length");
    }
}
