//! Caller-number normalization: one canonical string per phone number, so that a missed call
//! from `+7 (916) 111-00-07` and a callback dialled as `9 8 916 111 00 07` find the same task.
//!
//! The canonical form is digits only, international form (country code first, no `+`) when a
//! country code is configured. `None` means withheld or not callable.
//!
//! Rules, in order, for a number without `+`:
//! 1. numbers of at most [`NumbersConfig::short_number_max_length`] digits (extensions, short
//!    codes like `112`) are kept verbatim;
//! 2. an outside-line prefix (`9`) is stripped only when what follows it starts with the
//!    national prefix, the international prefix, or the country code plus a full national
//!    number, so a mobile number `9161110007` is never mistaken for `9` + `161110007`;
//! 3. the international prefix (`00`) is stripped: the rest already starts with a country code;
//! 4. the national prefix (`8`) is replaced by the country code;
//! 5. a bare national number of [`NumbersConfig::national_number_length`] digits gets the
//!    country code in front.
//!
//! Rules 4 and 5 need a country code; with `country_code = ""` only formatting (and configured
//! prefixes 2 and 3) is stripped.

use serde::Deserialize;

/// Default country code: the SPEC section 10 example, which `replay`/`run` use without a config.
pub const DEFAULT_COUNTRY_CODE: &str = "7";
/// Default national (trunk) prefix, replaced by the country code.
pub const DEFAULT_NATIONAL_PREFIX: &str = "8";
/// Default outside-line prefix dialled by extensions before an external number.
pub const DEFAULT_OUTSIDE_LINE_PREFIXES: &[&str] = &["9"];
/// Default international call prefix.
pub const DEFAULT_INTERNATIONAL_PREFIX: &str = "00";
/// Default length of a national significant number (10 in the `+7` zone).
pub const DEFAULT_NATIONAL_NUMBER_LENGTH: usize = 10;
/// Default maximum length of a short number (extension, service code) kept verbatim.
pub const DEFAULT_SHORT_NUMBER_MAX_LENGTH: usize = 6;

/// Caller-ID spellings that mean "no number" (compared case-insensitively).
const WITHHELD_WORDS: &[&str] = &[
    "unknown",
    "<unknown>",
    "anonymous",
    "restricted",
    "private",
    "withheld",
    "unavailable",
    "blocked",
    "<blocked>",
];

/// The TOML `[numbers]` table (SPEC section 10).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NumbersConfig {
    /// Country code of the PBX's own country, digits only (`"7"`); `""` = none configured.
    pub country_code: String,
    /// National (trunk) prefix replaced by the country code (`"8"`); `""` = none.
    pub national_prefix: String,
    /// Prefixes extensions dial to get an outside line (`["9"]`).
    pub outside_line_prefixes: Vec<String>,
    /// International call prefix (`"00"`; `"810"` in some countries).
    pub international_prefix: String,
    /// Digits in a national significant number; 0 = unknown (rule 5 off).
    pub national_number_length: usize,
    /// Numbers with at most this many digits are kept verbatim (extensions, short codes).
    pub short_number_max_length: usize,
}

impl Default for NumbersConfig {
    fn default() -> Self {
        NumbersConfig {
            country_code: DEFAULT_COUNTRY_CODE.to_owned(),
            national_prefix: DEFAULT_NATIONAL_PREFIX.to_owned(),
            outside_line_prefixes: DEFAULT_OUTSIDE_LINE_PREFIXES
                .iter()
                .map(|p| (*p).to_owned())
                .collect(),
            international_prefix: DEFAULT_INTERNATIONAL_PREFIX.to_owned(),
            national_number_length: DEFAULT_NATIONAL_NUMBER_LENGTH,
            short_number_max_length: DEFAULT_SHORT_NUMBER_MAX_LENGTH,
        }
    }
}

/// A `[numbers]` value that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumbersConfigError {
    /// A prefix or code that must be digits is not.
    #[error("numbers.{field}: {value:?} must contain digits only")]
    NotDigits {
        /// The offending key.
        field: &'static str,
        /// Its value.
        value: String,
    },
}

impl NumbersConfig {
    /// Checks that every code and prefix is digits only, naming the bad field.
    pub fn validate(&self) -> Result<(), NumbersConfigError> {
        let digits = |field: &'static str, value: &str, may_be_empty: bool| {
            if (value.is_empty() && may_be_empty)
                || (!value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()))
            {
                Ok(())
            } else {
                Err(NumbersConfigError::NotDigits {
                    field,
                    value: value.to_owned(),
                })
            }
        };
        digits("country_code", &self.country_code, true)?;
        digits("national_prefix", &self.national_prefix, true)?;
        digits("international_prefix", &self.international_prefix, true)?;
        for p in &self.outside_line_prefixes {
            digits("outside_line_prefixes", p, false)?;
        }
        Ok(())
    }
}

/// The canonical form of a caller or dialled number, or `None` when withheld / not callable.
pub fn normalize(raw: &str, cfg: &NumbersConfig) -> Option<String> {
    let mut s = raw.trim();
    if s.is_empty() || WITHHELD_WORDS.iter().any(|w| s.eq_ignore_ascii_case(w)) {
        return None;
    }
    // `"Name" <sip:...>` or `<+7916...>`: keep what is inside the angle brackets.
    if let (Some(open), Some(close)) = (s.find('<'), s.rfind('>'))
        && open < close
    {
        s = s[open + 1..close].trim();
    }
    // URIs: `sip:+7916...@host;user=phone`, `tel:+7-916-...`.
    for scheme in ["sips:", "sip:", "tel:"] {
        if s.len() >= scheme.len() && s[..scheme.len()].eq_ignore_ascii_case(scheme) {
            s = &s[scheme.len()..];
            break;
        }
    }
    if let Some(at) = s.find('@') {
        s = &s[..at];
    }
    if let Some(semi) = s.find(';') {
        s = &s[..semi];
    }
    if WITHHELD_WORDS.iter().any(|w| s.eq_ignore_ascii_case(w)) {
        return None;
    }

    let mut plus = false;
    let mut digits = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '0'..='9' => digits.push(c),
            '+' if digits.is_empty() && !plus => plus = true,
            ' ' | '-' | '.' | '(' | ')' | '/' | '\u{a0}' => {}
            _ => return None,
        }
    }
    if digits.is_empty() {
        return None;
    }
    if plus {
        return Some(digits);
    }
    Some(canonical_national(digits, cfg))
}

/// Rules 1-5 of the module doc for a digit string dialled or signalled without `+`.
fn canonical_national(mut d: String, cfg: &NumbersConfig) -> String {
    if d.len() <= cfg.short_number_max_length {
        return d;
    }
    let cc = cfg.country_code.as_str();
    let np = cfg.national_prefix.as_str();
    let ip = cfg.international_prefix.as_str();
    let nsn = cfg.national_number_length;

    let full_with_cc = |rest: &str| {
        !cc.is_empty() && nsn > 0 && rest.starts_with(cc) && rest.len() == cc.len() + nsn
    };
    let national_with_prefix = |rest: &str| {
        !np.is_empty() && rest.starts_with(np) && (nsn == 0 || rest.len() == np.len() + nsn)
    };

    // Rule 2: outside-line prefix, longest first, only in front of a complete external number.
    let mut prefixes: Vec<&str> = cfg
        .outside_line_prefixes
        .iter()
        .map(String::as_str)
        .filter(|p| !p.is_empty())
        .collect();
    prefixes.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in prefixes {
        if let Some(rest) = d.strip_prefix(p)
            && (national_with_prefix(rest)
                || (!ip.is_empty() && rest.starts_with(ip))
                || full_with_cc(rest))
        {
            d = rest.to_owned();
            break;
        }
    }
    // Rule 3: international prefix.
    if !ip.is_empty()
        && let Some(rest) = d.strip_prefix(ip)
        && !rest.is_empty()
    {
        return rest.to_owned();
    }
    if cc.is_empty() {
        return d;
    }
    // Rule 4: national prefix -> country code.
    if national_with_prefix(&d) {
        return format!("{cc}{}", &d[np.len()..]);
    }
    // Rule 5: a bare national significant number.
    if nsn > 0 && d.len() == nsn {
        return format!("{cc}{d}");
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ru() -> NumbersConfig {
        NumbersConfig::default()
    }

    #[test]
    fn real_world_forms_with_country_code_7() {
        let table: &[(&str, Option<&str>)] = &[
            ("79161110007", Some("79161110007")),
            ("+79161110007", Some("79161110007")),
            ("+7 (916) 111-00-07", Some("79161110007")),
            ("8 916 111 00 07", Some("79161110007")),
            ("89161110007", Some("79161110007")),
            ("8(916)111-00-07", Some("79161110007")),
            ("9161110007", Some("79161110007")),
            ("989161110007", Some("79161110007")),
            ("979161110007", Some("79161110007")),
            ("0079161110007", Some("79161110007")),
            ("900442079460958", Some("442079460958")),
            ("+44 20 7946 0958", Some("442079460958")),
            ("0044 20 7946 0958", Some("442079460958")),
            ("sip:+79161110007@pbx.example.com", Some("79161110007")),
            (
                "sip:89161110007@10.0.0.1:5060;user=phone",
                Some("79161110007"),
            ),
            ("tel:+7-916-111-00-07", Some("79161110007")),
            ("\"Client\" <sip:+79161110007@trunk>", Some("79161110007")),
            ("84951234567", Some("74951234567")),
            ("101", Some("101")),
            ("112", Some("112")),
            ("  +7.916.111.00.07 ", Some("79161110007")),
            ("<unknown>", None),
            ("unknown", None),
            ("anonymous", None),
            ("Anonymous", None),
            ("Restricted", None),
            ("sip:anonymous@anonymous.invalid", None),
            ("", None),
            ("   ", None),
            ("Client", None),
            ("+", None),
            ("*98", None),
        ];
        for (raw, want) in table {
            assert_eq!(
                normalize(raw, &ru()).as_deref(),
                *want,
                "normalize({raw:?})"
            );
        }
    }

    #[test]
    fn without_country_code_only_formatting_is_stripped() {
        let cfg = NumbersConfig {
            country_code: String::new(),
            national_prefix: String::new(),
            outside_line_prefixes: Vec::new(),
            ..NumbersConfig::default()
        };
        let table: &[(&str, Option<&str>)] = &[
            ("+7 (916) 111-00-07", Some("79161110007")),
            ("8 916 111 00 07", Some("89161110007")),
            ("9161110007", Some("9161110007")),
            ("0044 20 7946 0958", Some("442079460958")),
            ("anonymous", None),
        ];
        for (raw, want) in table {
            assert_eq!(normalize(raw, &cfg).as_deref(), *want, "normalize({raw:?})");
        }
    }

    #[test]
    fn outside_line_prefix_needs_a_complete_number_behind_it() {
        // A 9-prefixed number that is too short to be 9 + national form stays as it is.
        assert_eq!(
            normalize("9161110007", &ru()).as_deref(),
            Some("79161110007")
        );
        assert_eq!(normalize("95551234", &ru()).as_deref(), Some("95551234"));
    }

    #[test]
    fn validate_names_the_field() {
        let cfg = NumbersConfig {
            national_prefix: "8a".into(),
            ..NumbersConfig::default()
        };
        let err = cfg.validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "numbers.national_prefix: \"8a\" must contain digits only"
        );
        assert!(NumbersConfig::default().validate().is_ok());
    }

    #[test]
    fn parses_toml_and_rejects_unknown_keys() {
        let cfg: NumbersConfig = toml::from_str(
            "country_code = \"44\"\nnational_prefix = \"0\"\noutside_line_prefixes = []",
        )
        .expect("valid [numbers]");
        assert_eq!(cfg.country_code, "44");
        assert_eq!(cfg.international_prefix, DEFAULT_INTERNATIONAL_PREFIX);
        assert_eq!(
            normalize("020 7946 0958", &cfg).as_deref(),
            Some("442079460958")
        );
        assert!(toml::from_str::<NumbersConfig>("contry_code = \"7\"").is_err());
    }
}
