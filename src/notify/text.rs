//! Short texts for people (Telegram, exec failure logs) in `en` or `ru`, rendered from the
//! payload: the caller formatted for reading, DID/queue, wait, loss reason in words, who rang
//! and how long, repeat count, deadline in the calendar's timezone. Pure.
//!
//! Telegram gets `parse_mode = HTML`: every value is escaped (`&`, `<`, `>`), the caller is bold.

use chrono::{DateTime, Datelike};
use chrono_tz::Tz;
use serde_json::Value;

use super::config::Language;

/// Escapes text for Telegram's HTML parse mode.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

/// A number for reading: Russian 11-digit numbers as `+7 916 123-45-67`, other long numbers
/// with a `+`, short ones (extensions) as they are.
pub fn format_number(raw: &str) -> String {
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    if digits.len() == 11 && (digits.starts_with('7') || digits.starts_with('8')) {
        let d = &digits[1..];
        return format!("+7 {} {}-{}-{}", &d[0..3], &d[3..6], &d[6..8], &d[8..10]);
    }
    if digits.len() >= 11 && digits.len() == raw.trim_start_matches('+').len() {
        return format!("+{digits}");
    }
    raw.to_string()
}

/// How the text is marked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Markup {
    /// Plain text (logs).
    Plain,
    /// Telegram HTML parse mode.
    Html,
}

struct Words {
    lang: Language,
    markup: Markup,
    tz: Tz,
}

impl Words {
    fn esc(&self, s: &str) -> String {
        match self.markup {
            Markup::Plain => s.to_string(),
            Markup::Html => escape_html(s),
        }
    }

    fn bold(&self, s: &str) -> String {
        match self.markup {
            Markup::Plain => s.to_string(),
            Markup::Html => format!("<b>{}</b>", escape_html(s)),
        }
    }

    fn ru(&self) -> bool {
        self.lang == Language::Ru
    }

    /// `10:00 Mon` / `10:00 пн` in the calendar's timezone.
    fn when(&self, rfc3339: &str) -> Option<String> {
        let t = DateTime::parse_from_rfc3339(rfc3339)
            .ok()?
            .with_timezone(&self.tz);
        let wd = t.weekday().num_days_from_monday() as usize;
        let day = if self.ru() {
            ["пн", "вт", "ср", "чт", "пт", "сб", "вс"][wd]
        } else {
            ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][wd]
        };
        Some(format!("{} {day} {}", t.format("%H:%M"), t.format("%d.%m")))
    }

    fn secs(&self, v: &Value) -> String {
        let s = v.as_f64().unwrap_or(0.0).round() as i64;
        if self.ru() {
            format!("{s} с")
        } else {
            format!("{s} s")
        }
    }

    fn and_list(&self, items: &[String]) -> String {
        let and = if self.ru() { " и " } else { " and " };
        match items {
            [] => String::new(),
            [one] => one.clone(),
            [rest @ .., last] => format!("{}{and}{last}", rest.join(", ")),
        }
    }

    fn reason(&self, reason: &str) -> &'static str {
        match (reason, self.ru()) {
            ("ivr", false) => "hung up in the voice menu",
            ("ivr", true) => "положил трубку в голосовом меню",
            ("queue", false) => "hung up waiting in the queue",
            ("queue", true) => "не дождался ответа в очереди",
            ("ringing", false) => "hung up while the phones rang",
            ("ringing", true) => "положил трубку, пока звонили телефоны",
            ("timeout", false) => "nobody answered in time",
            ("timeout", true) => "никто не ответил вовремя",
            ("no_agents", false) => "no agent was available",
            ("no_agents", true) => "не было свободных операторов",
            ("busy", false) => "every line was busy",
            ("busy", true) => "все линии были заняты",
            ("after_hours", false) => "called outside working hours",
            ("after_hours", true) => "позвонил в нерабочее время",
            (_, false) => "the call was lost",
            (_, true) => "звонок потерян",
        }
    }
}

fn ordinal_en(n: i64) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// The text of one payload (any event kind).
pub fn render(payload: &Value, lang: Language, markup: Markup, tz: Tz) -> String {
    let w = Words { lang, markup, tz };
    match payload["event"].as_str() {
        Some("missed_call") => missed_call(&w, &payload["missed_call"], &payload["task"]),
        Some("task_overdue") => task_overdue(&w, &payload["task"]),
        Some("daily_digest") => daily_digest(&w, &payload["digest"]),
        _ => w.esc(&payload.to_string()),
    }
}

fn missed_call(w: &Words, call: &Value, task: &Value) -> String {
    let caller = match call["caller"].as_str() {
        Some(c) if !c.is_empty() && call["withheld"] != Value::Bool(true) => format_number(c),
        _ => (if w.ru() {
            "скрытый номер"
        } else {
            "withheld number"
        })
        .to_string(),
    };
    let mut s = if w.ru() {
        format!("Пропущенный звонок {}", w.bold(&caller))
    } else {
        format!("Missed call {}", w.bold(&caller))
    };
    let dest: Vec<String> = [&call["queue"], &call["did"]]
        .iter()
        .filter_map(|v| v.as_str().filter(|s| !s.is_empty()))
        .map(|s| w.esc(s))
        .collect();
    match dest.as_slice() {
        [queue, did] => s.push_str(&format!(" → {queue} ({did})")),
        [one] => s.push_str(&format!(" → {one}")),
        _ => {}
    }
    s.push_str(". ");
    // Each agent once, in first-ring order, with the seconds of all its rings together.
    let mut rings: Vec<(String, f64)> = Vec::new();
    for a in call["agents"].as_array().into_iter().flatten() {
        let name = w.esc(a["agent"].as_str().unwrap_or("?"));
        let secs = a["ring_seconds"].as_f64().unwrap_or(0.0);
        match rings.iter_mut().find(|(n, _)| *n == name) {
            Some((_, total)) => *total += secs,
            None => rings.push((name, secs)),
        }
    }
    let agents: Vec<(String, String)> = rings
        .into_iter()
        .map(|(n, secs)| (n, w.secs(&Value::from(secs))))
        .collect();
    let waited = w.secs(&call["wait_seconds"]);
    let reason = call["loss_reason"].as_str().unwrap_or("");
    let rang = {
        let names: Vec<String> = agents.iter().map(|(a, _)| a.clone()).collect();
        let same = agents.windows(2).all(|p| p[0].1 == p[1].1);
        let times = match (agents.len(), same) {
            (0, _) => String::new(),
            (1, _) => format!(" ({})", agents[0].1),
            (_, true) if w.ru() => format!(" (по {})", agents[0].1),
            (_, true) => format!(" ({} each)", agents[0].1),
            (_, false) => format!(
                " ({})",
                agents
                    .iter()
                    .map(|(a, t)| format!("{a}: {t}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        (w.and_list(&names), times)
    };
    if reason == "ringing" && !agents.is_empty() {
        if w.ru() {
            s.push_str(&format!(
                "Ждал {waited}, положил трубку, пока звонили {}{}.",
                rang.0, rang.1
            ));
        } else {
            s.push_str(&format!(
                "Waited {waited}, hung up while {} rang{}.",
                rang.0, rang.1
            ));
        }
    } else {
        if w.ru() {
            s.push_str(&format!("Ждал {waited}, {}.", w.reason(reason)));
        } else {
            s.push_str(&format!("Waited {waited}, {}.", w.reason(reason)));
        }
        if !agents.is_empty() {
            if w.ru() {
                s.push_str(&format!(" Звонили: {}{}.", rang.0, rang.1));
            } else {
                s.push_str(&format!(" Rang {}{}.", rang.0, rang.1));
            }
        }
    }
    if call["voicemail"] == Value::Bool(true) {
        s.push_str(if w.ru() {
            " Оставил голосовое сообщение."
        } else {
            " Left a voicemail."
        });
    }
    let count = task["missed_count"].as_i64().unwrap_or(1);
    if count >= 2 {
        if w.ru() {
            s.push_str(&format!(" {count}-й пропущенный с этого номера."));
        } else {
            s.push_str(&format!(" {} miss from this number.", ordinal_en(count)));
        }
    } else if call["first_time_caller"] == Value::Bool(true) {
        s.push_str(if w.ru() {
            " Звонит впервые."
        } else {
            " First call from this number."
        });
    }
    if let Some(when) = task["deadline"].as_str().and_then(|d| w.when(d)) {
        if w.ru() {
            s.push_str(&format!(" Перезвонить до {when}."));
        } else {
            s.push_str(&format!(" Call back by {when}."));
        }
    }
    s
}

fn task_overdue(w: &Words, task: &Value) -> String {
    let number = format_number(task["number"].as_str().unwrap_or("?"));
    let count = task["missed_count"].as_i64().unwrap_or(1);
    let due = task["deadline"]
        .as_str()
        .and_then(|d| w.when(d))
        .unwrap_or_default();
    let mut s = if w.ru() {
        format!(
            "Просрочено: перезвонить {} (пропущенных: {count}, срок был {due}).",
            w.bold(&number)
        )
    } else {
        format!(
            "Overdue: call back {} ({count} missed, was due {due}).",
            w.bold(&number)
        )
    };
    if let Some(a) = task["assignee"].as_str() {
        if w.ru() {
            s.push_str(&format!(" Ответственный: {}.", w.esc(a)));
        } else {
            s.push_str(&format!(" Assigned to {}.", w.esc(a)));
        }
    }
    s
}

fn daily_digest(w: &Words, d: &Value) -> String {
    let n = |k: &str| d[k].as_u64().unwrap_or(0);
    let day = w.esc(d["day"].as_str().unwrap_or("?"));
    let open = d["open_tasks"].as_array().map_or(0, Vec::len);
    let overdue = d["open_tasks"]
        .as_array()
        .map_or(0, |a| a.iter().filter(|t| t["status"] == "overdue").count());
    let day = w.bold(&day);
    let (inbound, missed) = (n("inbound"), n("missed"));
    let (on_time, late, never) = (
        n("callback_on_time"),
        n("callback_late"),
        n("callback_never"),
    );
    if w.ru() {
        format!(
            "Итоги за {day}: входящих {inbound}, пропущено {missed}; перезвонили вовремя {on_time}, с опозданием {late}, не перезвонили {never}. Открытых задач: {open} (просрочено {overdue})."
        )
    } else {
        format!(
            "Summary for {day}: {inbound} inbound, {missed} missed; called back on time {on_time}, late {late}, never {never}. Open tasks: {open} ({overdue} overdue)."
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call() -> Value {
        json!({
            "event": "missed_call",
            "missed_call": {
                "caller": "89161234567", "did": "74951234567", "queue": "sales<1>",
                "wait_seconds": 17.2, "loss_reason": "ringing", "voicemail": false,
                "first_time_caller": false, "withheld": false,
                "agents": [{"agent": "101", "ring_seconds": 10.1}, {"agent": "102", "ring_seconds": 9.8}]
            },
            "task": {"missed_count": 2, "deadline": "2026-11-23T07:00:00.000Z", "number": "79161234567"}
        })
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(format_number("89161234567"), "+7 916 123-45-67");
        assert_eq!(format_number("+79161234567"), "+7 916 123-45-67");
        assert_eq!(format_number("4930123456789"), "+4930123456789");
        assert_eq!(format_number("101"), "101");
        assert_eq!(format_number("anonymous"), "anonymous");
    }

    #[test]
    fn missed_call_in_english_and_russian() {
        let tz: Tz = "Europe/Moscow".parse().expect("tz");
        assert_eq!(
            render(&call(), Language::En, Markup::Html, tz),
            "Missed call <b>+7 916 123-45-67</b> → sales&lt;1&gt; (74951234567). Waited 17 s, \
             hung up while 101 and 102 rang (10 s each). 2nd miss from this number. \
             Call back by 10:00 Mon 23.11."
        );
        assert_eq!(
            render(&call(), Language::Ru, Markup::Plain, tz),
            "Пропущенный звонок +7 916 123-45-67 → sales<1> (74951234567). Ждал 17 с, \
             положил трубку, пока звонили 101 и 102 (по 10 с). 2-й пропущенный с этого номера. \
             Перезвонить до 10:00 пн 23.11."
        );
    }

    #[test]
    fn other_reasons_and_events() {
        let tz = Tz::UTC;
        let mut c = call();
        c["missed_call"]["loss_reason"] = json!("queue");
        c["missed_call"]["withheld"] = json!(true);
        c["missed_call"]["agents"] = json!([]);
        c["task"] = Value::Null;
        assert_eq!(
            render(&c, Language::En, Markup::Plain, tz),
            "Missed call withheld number → sales<1> (74951234567). Waited 17 s, hung up waiting in the queue."
        );
        let o = json!({"event": "task_overdue", "task": {"number": "79161234567", "missed_count": 3,
            "deadline": "2026-11-23T10:00:00.000Z", "assignee": "101"}});
        assert_eq!(
            render(&o, Language::En, Markup::Plain, tz),
            "Overdue: call back +7 916 123-45-67 (3 missed, was due 10:00 Mon 23.11). Assigned to 101."
        );
        let d = json!({"event": "daily_digest", "digest": {"day": "2026-11-22", "inbound": 40,
            "missed": 5, "callback_on_time": 3, "callback_late": 1, "callback_never": 1,
            "open_tasks": [{"status": "overdue"}, {"status": "open"}]}});
        assert_eq!(
            render(&d, Language::Ru, Markup::Plain, tz),
            "Итоги за 2026-11-22: входящих 40, пропущено 5; перезвонили вовремя 3, с опозданием 1, не перезвонили 1. Открытых задач: 2 (просрочено 1)."
        );
    }
}
