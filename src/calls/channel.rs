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
        without_sequence(rest.split('/').next().unwrap_or(rest))
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
        || is_withheld_word(n)
        || !n.bytes().any(|b| b.is_ascii_digit())
}

/// True for the words carriers send for a withheld number (`anonymous`, `restricted`, ...).
pub fn is_withheld_word(number: &str) -> bool {
    const WORDS: &[&str] = &[
        "unknown",
        "anonymous",
        "restricted",
        "private",
        "unavailable",
        "withheld",
    ];
    let n = number.trim();
    WORDS.iter().any(|w| n.eq_ignore_ascii_case(w))
}

/// True when `exten` looks like a dialled phone number (digits, optional leading `+`).
pub fn is_number(exten: &str) -> bool {
    let digits = exten.strip_prefix('+').unwrap_or(exten);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// True for a Local channel or interface (`Local/101@from-queue-0001;1`, `Local/101@ctx/n`).
pub fn is_local(name: &str) -> bool {
    name.get(..6)
        .is_some_and(|t| t.eq_ignore_ascii_case("Local/"))
}

/// True when `id` (a peer or an extension) looks like a local extension: digits only and no
/// longer than `internal_max_length` (`101`, `2001`).
pub fn is_extension_id(id: &str, internal_max_length: usize) -> bool {
    !id.is_empty() && id.len() <= internal_max_length && id.bytes().all(|b| b.is_ascii_digit())
}

/// True when a caller id or dialled number is an external number: digits (optional `+`),
/// more of them than an extension has.
pub fn is_external_number(number: &str, internal_max_length: usize) -> bool {
    is_number(number) && number.trim_start_matches('+').len() > internal_max_length
}

/// The external number a dial string names, if any: its longest run of digits (keeping a `+`
/// just before it) when that run is longer than an extension (`trunk/79161234567`,
/// `79161234567@carrier`, `carrier/sip:+79161234567@10.0.0.1`).
pub fn dialled_number(dial_string: &str, internal_max_length: usize) -> Option<String> {
    let bytes = dial_string.as_bytes();
    let mut best: Option<(usize, usize)> = None;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if best.is_none_or(|(s, e)| i - start > e - s) {
                best = Some((start, i));
            }
        } else {
            i += 1;
        }
    }
    let (start, end) = best?;
    if end - start <= internal_max_length {
        return None;
    }
    let start = if start > 0 && bytes[start - 1] == b'+' {
        start - 1
    } else {
        start
    };
    Some(dial_string[start..end].to_string())
}

/// The peer (endpoint) part of a channel name: `PJSIP/trunk-0000001a` gives `trunk`,
/// `SIP/101-00a` gives `101`, `DAHDI/i1/79161234567-5` gives `i1`.
pub fn peer_of(name: &str) -> String {
    if is_local(name) {
        return agent_from_channel(name);
    }
    let rest = name.split_once('/').map_or(name, |(_, r)| r);
    let base = rest.split('/').next().unwrap_or(rest);
    agent_from_channel(&format!("x/{base}"))
}

/// True when a channel that starts a call is a trunk: it matches a configured trunk prefix, or
/// it is not a Local channel and its peer is not a local extension's device (a peer named like
/// an extension, `PJSIP/101`, is a phone). DAHDI channels are numbered lines, not phones, so
/// they count as trunks whatever their number.
pub fn is_trunk_peer(name: &str, trunk_prefixes: &[String], internal_max_length: usize) -> bool {
    if trunk_prefixes
        .iter()
        .any(|p| !p.is_empty() && name.starts_with(p.as_str()))
    {
        return true;
    }
    if is_local(name) || !name.contains('/') {
        return false;
    }
    let tech = name.split('/').next().unwrap_or("");
    if tech.eq_ignore_ascii_case("DAHDI") || tech.eq_ignore_ascii_case("Zap") {
        return true;
    }
    !is_extension_id(&peer_of(name), internal_max_length)
}

/// Peers the PBX has rung as phones (a dial to an extension, a queue member's interface): a
/// call entering on one of them is an extension calling, never a trunk, whatever its name.
/// Bounded: past [`Phones::MAX`] peers nothing more is learned.
#[derive(Debug, Default, Clone)]
pub struct Phones(std::collections::HashSet<Box<str>>);

impl Phones {
    /// Most peers remembered.
    pub const MAX: usize = 4096;

    /// Remembers the peer of channel or interface `name` (`SIP/reception-0000001a`,
    /// `PJSIP/101`); Local channels are not phones.
    pub fn learn(&mut self, name: &str) {
        if is_local(name) || !name.contains('/') || self.0.len() >= Self::MAX {
            return;
        }
        let key = peer_key(name);
        if !self.0.contains(key) {
            self.0.insert(key.into());
        }
    }

    /// The peer of channel `name` was rung as a phone.
    pub fn contains(&self, name: &str) -> bool {
        !self.0.is_empty() && self.0.contains(peer_key(name))
    }
}

/// `TECH/peer` of a channel or interface name, borrowed: the name without its `-<hex>`
/// sequence suffix or a `/dial-string` tail (`SIP/reception-0000001a` and `SIP/reception`
/// give `SIP/reception`).
fn peer_key(name: &str) -> &str {
    let Some(slash) = name.find('/') else {
        return name;
    };
    let rest = &name[slash + 1..];
    let end = rest.find('/').unwrap_or(rest.len());
    let base = without_sequence(&rest[..end]);
    &name[..slash + 1 + base.len()]
}

/// A channel name's peer part without the `-<hex sequence>` suffix a channel (not an
/// interface) carries: `reception-0000001a` gives `reception`.
fn without_sequence(base: &str) -> &str {
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
    fn trunks_and_phones_by_their_peer() {
        let none: &[String] = &[];
        for trunk in [
            "PJSIP/trunk-0000001a",
            "SIP/carrier-00000003",
            "IAX2/provider-1234",
            "DAHDI/i1/79161234567-5",
            "DAHDI/1-1",
            "SIP/74951234567-0000000a",
        ] {
            assert!(is_trunk_peer(trunk, none, 6), "{trunk}");
        }
        for phone in [
            "PJSIP/101-0000001c",
            "SIP/104-0000000a",
            "IAX2/2001-3",
            "Local/79161234567@from-trunk-00000001;2",
        ] {
            assert!(!is_trunk_peer(phone, none, 6), "{phone}");
        }
        let prefixes = vec!["SIP/101".to_string()];
        assert!(is_trunk_peer("SIP/101-00000001", &prefixes, 6));
    }

    #[test]
    fn phones_are_learned_by_peer() {
        let mut phones = Phones::default();
        assert!(!phones.contains("SIP/reception-00000001"));
        phones.learn("SIP/reception-0000000a");
        phones.learn("Local/101@from-queue-00000001;1");
        assert!(phones.contains("SIP/reception-00000001"));
        assert!(phones.contains("SIP/reception"));
        assert!(!phones.contains("SIP/carrier-00000001"));
        assert!(!phones.contains("Local/101@from-queue-00000002;1"));
    }

    #[test]
    fn numbers_in_dial_strings() {
        assert_eq!(
            dialled_number("trunk/79161234567", 6).as_deref(),
            Some("79161234567")
        );
        assert_eq!(
            dialled_number("carrier/sip:+79161234567@10.0.0.1:5060", 6).as_deref(),
            Some("+79161234567")
        );
        assert_eq!(dialled_number("101", 6), None);
        assert_eq!(dialled_number("101/sip:101@192.168.10.51:5060", 6), None);
        assert_eq!(dialled_number("", 6), None);
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
