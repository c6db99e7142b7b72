//! Dialplan applications and channel variables, decoded once into what they mean for a caller:
//! menus, queues, dials, voicemail, time branches, and the variables that say how a queue or a
//! dial ended, that the after-hours path was taken, or which DID was dialled.

use super::channel::bare_variable;
use super::config::TrackerConfig;
use super::outcome::LossReason;

/// What one dialplan step (`Newexten`) of the caller means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum App<'a> {
    /// `Queue(name,...)`.
    Queue(&'a str),
    /// `Dial(...)`: an extension, a ring group, a follow-me.
    Dial,
    /// Greetings and menus: `Background`, `Read`, `WaitExten`, `Playback`, ...
    Menu,
    /// `VoiceMail` or `Record`.
    Voicemail,
    /// `GotoIfTime`/`ExecIfTime`: which way it went shows at the next step.
    TimeBranch(TimeBranch),
    /// `Set(NAME=value)`: read like a `VarSet` (some AMI users filter `VarSet` out).
    Set(Var),
    /// `AppDial`/`AppQueue` "(Outgoing Line)": a dialled leg, not dialplan.
    OutgoingLine,
    /// Anything else (`Answer`, `Goto`, `NoOp`, `Hangup`, ...).
    Other,
}

/// Decodes one dialplan step.
pub fn decode<'a>(application: &'a str, app_data: &'a str, cfg: &TrackerConfig) -> App<'a> {
    let is = |name: &str| application.eq_ignore_ascii_case(name);
    if application.len() >= 6 && application[..6].eq_ignore_ascii_case("AppDia") || is("AppQueue") {
        App::OutgoingLine
    } else if is("Queue") {
        App::Queue(app_data.split(',').next().unwrap_or(app_data))
    } else if is("Dial") {
        App::Dial
    } else if is("VoiceMail") || is("Record") {
        App::Voicemail
    } else if is_menu_app(application) {
        App::Menu
    } else if is("GotoIfTime") || is("ExecIfTime") {
        TimeBranch::parse(is("ExecIfTime"), app_data).map_or(App::Other, App::TimeBranch)
    } else if is("Set") {
        match app_data.split_once('=') {
            // An unexpanded `${...}` says nothing about the value.
            Some((_, value)) if value.contains("${") => App::Other,
            Some((name, value)) => match decode_var(name, value, cfg) {
                // Only what is safe to read from the dialplan's own text: queue and dial
                // outcomes come from Asterisk's `VarSet`.
                v @ (Var::Closed(_) | Var::Did(_)) => App::Set(v),
                _ => App::Other,
            },
            None => App::Other,
        }
    } else {
        App::Other
    }
}

/// `AppDial`/`AppDial2`/`AppQueue` "(Outgoing Line)": the channel is a dialled leg.
pub fn is_outgoing_line(application: &str) -> bool {
    application
        .get(..6)
        .is_some_and(|a| a.eq_ignore_ascii_case("AppDia"))
        || application.eq_ignore_ascii_case("AppQueue")
}

/// `VoiceMail`/`Record`: a channel running one is not a human answering.
pub fn is_voicemail(application: &str) -> bool {
    application.eq_ignore_ascii_case("VoiceMail") || application.eq_ignore_ascii_case("Record")
}

/// Menu and greeting applications: the caller is in an IVR.
fn is_menu_app(application: &str) -> bool {
    const MENU: &[&str] = &[
        "Background",
        "Read",
        "WaitExten",
        "Playback",
        "ControlPlayback",
        "SayDigits",
        "SayNumber",
    ];
    MENU.iter().any(|m| application.eq_ignore_ascii_case(m))
}

/// What a channel variable tells about the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Var {
    /// `QUEUESTATUS`: the queue gave up (`Some`) or the caller left it otherwise (`None`).
    QueueStatus(Option<LossReason>),
    /// `DIALSTATUS`: `true` when the dial ended unanswered (`NOANSWER`, `BUSY`, ...).
    DialFailed(bool),
    /// After hours (`true`) or open (`false`): FreePBX `TCSTATE`, configured variables.
    Closed(bool),
    /// The DID, from a configured variable.
    Did(String),
    /// Not a variable the tracker reads.
    Ignored,
}

/// Decodes one variable assignment (name with or without `_`/`__`).
pub fn decode_var(name: &str, value: &str, cfg: &TrackerConfig) -> Var {
    let bare = bare_variable(name);
    if bare.eq_ignore_ascii_case("QUEUESTATUS") {
        Var::QueueStatus(match value {
            "TIMEOUT" => Some(LossReason::Timeout),
            "JOINEMPTY" | "LEAVEEMPTY" | "JOINUNAVAIL" | "LEAVEUNAVAIL" | "FULL" => {
                Some(LossReason::NoAgents)
            }
            _ => None,
        })
    } else if bare.eq_ignore_ascii_case("DIALSTATUS") {
        Var::DialFailed(matches!(
            value,
            "NOANSWER" | "BUSY" | "CHANUNAVAIL" | "CONGESTION"
        ))
    } else if bare.eq_ignore_ascii_case("TCSTATE") {
        // FreePBX time conditions: `false` is the "closed" destination.
        match value.trim() {
            v if v.eq_ignore_ascii_case("false") => Var::Closed(true),
            v if v.eq_ignore_ascii_case("true") => Var::Closed(false),
            _ => Var::Ignored,
        }
    } else if cfg.is_after_hours_variable(bare) {
        let v = value.trim();
        let off = v.is_empty()
            || v == "0"
            || v.eq_ignore_ascii_case("no")
            || v.eq_ignore_ascii_case("false");
        if off { Var::Ignored } else { Var::Closed(true) }
    } else if cfg.is_did_variable(bare) && !value.is_empty() {
        Var::Did(value.to_string())
    } else {
        Var::Ignored
    }
}

/// Where a channel is in the dialplan (borrowed from the event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Place<'a> {
    /// Context.
    pub context: &'a str,
    /// Extension.
    pub exten: &'a str,
    /// Priority, when the event carried one.
    pub priority: Option<i64>,
}

/// A [`Place`] kept across events.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct PlaceBuf {
    context: String,
    exten: String,
    priority: Option<i64>,
}

impl PlaceBuf {
    fn view(&self) -> Place<'_> {
        Place {
            context: &self.context,
            exten: &self.exten,
            priority: self.priority,
        }
    }
}

/// A jump target in application data: `label`, `exten,label` or `context,exten,label`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    context: Option<String>,
    exten: Option<String>,
    label: String,
}

impl Target {
    fn parse(s: &str) -> Option<Target> {
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        let own = |x: &str| (!x.is_empty()).then(|| x.to_string());
        match parts.as_slice() {
            [""] => None,
            [label] => Some(Target {
                context: None,
                exten: None,
                label: label.to_string(),
            }),
            [exten, label] => Some(Target {
                context: None,
                exten: own(exten),
                label: label.to_string(),
            }),
            [context, exten, label, ..] => Some(Target {
                context: own(context),
                exten: own(exten),
                label: label.to_string(),
            }),
            [] => None,
        }
    }

    /// True when `next` is certainly this target (a named label cannot be checked).
    fn names(&self, from: &Place<'_>, next: &Place<'_>) -> bool {
        let context = self.context.as_deref().unwrap_or(from.context);
        let exten = self.exten.as_deref().unwrap_or(from.exten);
        if !context.eq_ignore_ascii_case(next.context) || exten != next.exten {
            return false;
        }
        match (self.label.parse::<i64>(), next.priority) {
            (Ok(p), Some(n)) => p == n,
            // A named label: only a jump to another context or extension is certain.
            _ => self.context.is_some() || self.exten.is_some(),
        }
    }
}

/// A `GotoIfTime(times?true[:false])` or `ExecIfTime(times?app(args)[:app(args)])` step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeBranch {
    /// `ExecIfTime`: only a jumping application (`Goto...`) shows which way it went.
    exec: bool,
    /// Where the step ran (set by [`TimeBranch::ran_at`]).
    from: PlaceBuf,
    if_true: Option<Target>,
    if_false: Option<Target>,
}

impl TimeBranch {
    fn parse(exec: bool, app_data: &str) -> Option<TimeBranch> {
        let (_, labels) = app_data.split_once('?')?;
        if exec {
            // Only `ExecIfTime(...?Goto(...))`: a jump shows at the next step.
            let jumps = labels
                .get(..4)
                .is_some_and(|a| a.eq_ignore_ascii_case("Goto"));
            return jumps.then_some(TimeBranch {
                exec: true,
                from: PlaceBuf::default(),
                if_true: None,
                if_false: None,
            });
        }
        let (t, f) = match labels.split_once(':') {
            Some((t, f)) => (t, Some(f)),
            None => (labels, None),
        };
        Some(TimeBranch {
            exec: false,
            from: PlaceBuf::default(),
            if_true: Target::parse(t),
            if_false: f.and_then(Target::parse),
        })
    }

    /// Records where the step ran.
    pub fn ran_at(mut self, place: Place<'_>) -> TimeBranch {
        self.from = PlaceBuf {
            context: place.context.to_string(),
            exten: place.exten.to_string(),
            priority: place.priority,
        };
        self
    }

    /// Whether the time condition was false, judged from the step after it (`None`: unknown).
    pub fn was_false(&self, next: &Place<'_>) -> Option<bool> {
        let from = &self.from.view();
        let fell_through = next.context.eq_ignore_ascii_case(from.context)
            && next.exten == from.exten
            && match (from.priority, next.priority) {
                (Some(a), Some(b)) => b == a + 1,
                _ => !self.if_true.as_ref().is_some_and(|t| t.names(from, next)),
            };
        if self.exec {
            // The application (a jump) ran only when the condition was true.
            return Some(fell_through);
        }
        match (&self.if_true, &self.if_false) {
            (Some(_), None) => Some(fell_through),
            (None, Some(_)) => Some(!fell_through),
            (Some(t), Some(f)) => match (t.names(from, next), f.names(from, next)) {
                (true, false) => Some(false),
                (false, true) => Some(true),
                _ => None,
            },
            (None, None) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place<'a>(context: &'a str, exten: &'a str, priority: i64) -> Place<'a> {
        Place {
            context,
            exten,
            priority: Some(priority),
        }
    }

    fn branch(app: &str, data: &str, at: Place<'_>) -> TimeBranch {
        match decode(app, data, &TrackerConfig::default()) {
            App::TimeBranch(b) => b.ran_at(at),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn gotoiftime_falling_through_is_false() {
        let at = place("timeconditions", "1", 3);
        let b = branch("GotoIfTime", "08:00-20:00,mon-sun,*,*?open", at);
        assert_eq!(b.was_false(&place("timeconditions", "1", 4)), Some(true));
        assert_eq!(b.was_false(&place("timeconditions", "1", 6)), Some(false));
    }

    #[test]
    fn gotoiftime_with_both_labels_follows_the_named_target() {
        let at = place("incoming", "74951234567", 2);
        let b = branch(
            "GotoIfTime",
            "09:00-18:00,mon-fri,*,*?support-open,s,1:support-closed,s,1",
            at,
        );
        assert_eq!(b.was_false(&place("support-closed", "s", 1)), Some(true));
        assert_eq!(b.was_false(&place("support-open", "s", 1)), Some(false));
        let only_false = branch("GotoIfTime", "09:00-18:00,mon-fri,*,*?:closed,s,1", at);
        assert_eq!(only_false.was_false(&place("closed", "s", 1)), Some(true));
        assert_eq!(
            only_false.was_false(&place("incoming", "74951234567", 3)),
            Some(false)
        );
    }

    #[test]
    fn execiftime_with_a_jump_and_without() {
        let at = place("incoming", "s", 1);
        let b = branch("ExecIfTime", "09:00-18:00,mon-fri,*,*?Goto(open,s,1)", at);
        assert_eq!(b.was_false(&place("incoming", "s", 2)), Some(true));
        assert_eq!(b.was_false(&place("open", "s", 1)), Some(false));
        assert_eq!(
            decode(
                "ExecIfTime",
                "09:00-18:00,*,*,*?Playback(hi)",
                &TrackerConfig::default()
            ),
            App::Other
        );
    }

    #[test]
    fn variables_and_set_steps() {
        let cfg = TrackerConfig::default();
        assert_eq!(decode_var("TCSTATE", "false", &cfg), Var::Closed(true));
        assert_eq!(decode_var("TCSTATE", "true", &cfg), Var::Closed(false));
        assert_eq!(decode_var("__AFTER_HOURS", "1", &cfg), Var::Closed(true));
        assert_eq!(decode_var("AFTER_HOURS", "0", &cfg), Var::Ignored);
        assert_eq!(
            decode_var("QUEUESTATUS", "LEAVEEMPTY", &cfg),
            Var::QueueStatus(Some(LossReason::NoAgents))
        );
        assert_eq!(
            decode("Set", "__FROM_DID=74951234567", &cfg),
            App::Set(Var::Did("74951234567".into()))
        );
        assert_eq!(
            decode("Set", "TCSTATE=false", &cfg),
            App::Set(Var::Closed(true))
        );
        assert_eq!(decode("Set", "QUEUESTATUS=TIMEOUT", &cfg), App::Other);
        assert_eq!(
            decode("Set", "AFTER_HOURS=${DB(pbx/nightmode)}", &cfg),
            App::Other
        );
        assert_eq!(
            decode("AppDial", "(Outgoing Line)", &cfg),
            App::OutgoingLine
        );
        assert_eq!(decode("Queue", "400,t,,,30", &cfg), App::Queue("400"));
    }
}
