//! Names on the wire: agent ids out of channel and interface names, Local channel halves,
//! withheld caller ids.

/// The agent (extension) a channel or queue interface stands for.
///
/// `PJSIP/101-0000001a`, `SIP/101-00a`, `PJSIP/101`, `Local/101@agents-0000000e;1`,
/// `Local/101@from-queue/n` and `IAX2/101-3` all give `101`.
pub fn agent_from_channel(name: &str) -> String {
    let rest = match name.split_once('/') {
        Some((_tech, rest)) => rest,
        None => name,
    };
    let is_local = name
        .get(..6)
        .is_some_and(|t| t.eq_ignore_ascii_case("Local/"));
    let id = if is_local {
        rest.split('@').next().unwrap_or(rest)
    } else {
        // Strip the `-<hex sequence>` suffix a channel (not an interface) carries.
        let base = rest.split('/').next().unwrap_or(rest);
        match base.rsplit_once('-') {
            Some((head, tail))
                if !head.is_empty()
                    && !tail.is_empty()
                    && tail.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                head
            }
            _ => base,
        }
    };
    id.to_string()
}

/// For `Local/x@ctx-0001;1` gives `Local/x@ctx-0001;2` and the other way round.
pub fn local_partner(name: &str) -> Option<String> {
    if !name.starts_with("Local/") {
        return None;
    }
    if let Some(base) = name.strip_suffix(";1") {
        Some(format!("{base};2"))
    } else {
        name.strip_suffix(";2").map(|base| format!("{base};1"))
    }
}

/// True when a caller id number carries nothing to call back.
pub fn is_withheld(number: &str) -> bool {
    let n = number.trim();
    n.is_empty()
        || n.eq_ignore_ascii_case("<unknown>")
        || n.eq_ignore_ascii_case("unknown")
        || n.eq_ignore_ascii_case("anonymous")
        || n.eq_ignore_ascii_case("restricted")
        || n.eq_ignore_ascii_case("private")
        || n.eq_ignore_ascii_case("unavailable")
        || n.eq_ignore_ascii_case("withheld")
        || !n.bytes().any(|b| b.is_ascii_digit())
}

/// True when `exten` looks like a dialled phone number (digits, optional leading `+`).
pub fn is_number(exten: &str) -> bool {
    let digits = exten.strip_prefix('+').unwrap_or(exten);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Strips the `_`/`__` inheritance prefix of a variable name.
pub fn bare_variable(name: &str) -> &str {
    name.trim_start_matches('_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_ids_from_every_channel_form() {
        for (input, want) in [
            ("PJSIP/101-0000001a", "101"),
            ("SIP/101-00000a3f", "101"),
            ("PJSIP/101", "101"),
            ("SIP/101", "101"),
            ("IAX2/101-3", "101"),
            ("Local/101@agents-0000000e;1", "101"),
            ("Local/101@from-queue/n", "101"),
            ("Local/101@agents/n", "101"),
            ("PJSIP/alice-mobile-0000001f", "alice-mobile"),
            ("DAHDI/1-1", "1"),
        ] {
            assert_eq!(agent_from_channel(input), want, "{input}");
        }
    }

    #[test]
    fn local_partners() {
        assert_eq!(
            local_partner("Local/101@agents-0000000e;1").as_deref(),
            Some("Local/101@agents-0000000e;2")
        );
        assert_eq!(
            local_partner("Local/101@agents-0000000e;2").as_deref(),
            Some("Local/101@agents-0000000e;1")
        );
        assert_eq!(local_partner("PJSIP/101-0001"), None);
    }

    #[test]
    fn withheld_numbers() {
        for n in ["", "<unknown>", "anonymous", "Anonymous", "restricted", "s"] {
            assert!(is_withheld(n), "{n}");
        }
        for n in ["79161110002", "+79161110002", "101"] {
            assert!(!is_withheld(n), "{n}");
        }
    }
}
