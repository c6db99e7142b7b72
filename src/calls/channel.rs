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

/// A channel id inside the tracker: a fixed-seed 64-bit hash of the `Uniqueid` (0 = none).
///
/// Hashing keeps per-channel state small (no heap copy of the id) and lookups cheap; with
/// 64 bits, two live channels colliding is out of reach in practice.
pub type ChanId = u64;

/// Hashes a `Uniqueid`/`Linkedid` (or any name) to a [`ChanId`]; empty input gives 0.
pub fn chan_id(raw: &[u8]) -> ChanId {
    use std::hash::BuildHasher;
    if raw.is_empty() {
        return 0;
    }
    foldhash::quality::FixedState::with_seed(ID_SEED)
        .hash_one(raw)
        .max(1)
}

const ID_SEED: u64 = 0x6d69_7373_6564_6361;

/// The id shared by both halves of a Local channel (`Local/x@ctx-0001;1` and `;2`); 0 for
/// other channels.
pub fn local_pair_id(name: &[u8]) -> ChanId {
    if !name.starts_with(b"Local/") {
        return 0;
    }
    match name {
        [base @ .., b';', b'1' | b'2'] => chan_id(base),
        _ => 0,
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
    fn local_halves_share_a_pair_id() {
        let one = local_pair_id(b"Local/101@agents-0000000e;1");
        assert_ne!(one, 0);
        assert_eq!(one, local_pair_id(b"Local/101@agents-0000000e;2"));
        assert_ne!(one, local_pair_id(b"Local/101@agents-0000000f;2"));
        assert_eq!(local_pair_id(b"PJSIP/101-0001"), 0);
        assert_eq!(chan_id(b""), 0);
        assert_ne!(chan_id(b"1700000000.1"), chan_id(b"1700000000.2"));
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
