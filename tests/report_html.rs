//! `report --html`: the page rendered by a real headless browser (Debian's `chromium`, which
//! `.ci/run` installs). It must load with no network (every request the browser makes goes to a
//! recording proxy on 127.0.0.1 that answers nothing; none may come from the page), show the report's numbers in the DOM, and
//! leave screenshots (desktop and phone) and a printed PDF under `target/` for people to look at. Without a
//! chromium on the machine the browser part is skipped with a note; the page checks still run.

mod support;

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use missedcalld::callbacks::sla::{Calendar, CalendarConfig};
use missedcalld::calls::TrackerConfig;
use missedcalld::pipeline::Pipeline;
use missedcalld::replay::replay_into;
use missedcalld::report::{self, ReportBy, ReportFormat, Request};
use missedcalld::store::Store;
use serde_json::Value;
use support::store::*;

fn browser() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

/// A proxy that answers nothing and records the first line of every request it gets.
fn recording_proxy() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
    let port = listener.local_addr().expect("addr").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 1024];
            let n = conn.read(&mut buf).unwrap_or(0);
            let first = String::from_utf8_lossy(&buf[..n])
                .lines()
                .next()
                .unwrap_or("(empty)")
                .to_owned();
            log.lock().expect("log").push(first);
        }
    });
    (port, seen)
}

fn chromium(bin: &str, profile: &Path, proxy: u16, args: &[String]) -> String {
    let out = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--proxy-server=http://127.0.0.1:{proxy}"))
        .arg("--proxy-bypass-list=<-loopback>")
        .args(args)
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The text of the first element with `data-k="key"` (optionally inside `data-key="row"`).
fn figure(dom: &str, row: Option<&str>, key: &str) -> String {
    let scope = match row {
        Some(r) => {
            let start = dom
                .find(&format!("data-key=\"{r}\""))
                .unwrap_or_else(|| panic!("no row {r}"));
            &dom[start..]
        }
        None => dom,
    };
    let at = scope
        .find(&format!("data-k=\"{key}\""))
        .unwrap_or_else(|| panic!("no figure {key}"));
    let open = at + scope[at..].find('>').expect("tag end") + 1;
    let close = open + scope[open..].find('<').expect("next tag");
    scope[open..close].to_owned()
}

#[test]
fn html_report_renders_offline_in_a_real_browser() {
    let (dir, db) = temp_db();
    let mut s = settings(&db);
    s.rules.calendar = Calendar::new(&CalendarConfig {
        timezone: "Europe/Moscow".into(),
        ..CalendarConfig::default()
    })
    .expect("calendar");
    s.rules.callbacks.short_abandon_seconds = 5;
    let mut files: Vec<PathBuf> = ["lab1", "lab2"]
        .iter()
        .flat_map(|d| {
            std::fs::read_dir(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("ami-fixtures")
                    .join(d),
            )
            .expect("fixtures")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "ami"))
        })
        .collect();
    files.sort();
    let store = Store::open(s).expect("store");
    let mut pipeline = Pipeline::new(TrackerConfig::default(), store);
    replay_into(&files, &mut pipeline).expect("replay");
    pipeline.into_sink().close().expect("close");

    let now = at("2026-11-23T12:00:00Z");
    let run = |by: ReportBy, format: ReportFormat| {
        let mut out = Vec::new();
        let req = Request {
            since: None,
            until: None,
            by,
            format,
            now,
            tty: false,
        };
        report::run(&db, &req, &mut out).expect("report");
        String::from_utf8(out).expect("utf8")
    };
    let by = |by: ReportBy| -> Value {
        serde_json::from_str(&run(by, ReportFormat::Json)).expect("json")
    };
    let json = by(ReportBy::Day);
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report-html");
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    let page = shots.join("report.html");
    assert_eq!(
        run(ReportBy::Day, ReportFormat::Html(page.clone())).trim(),
        page.display().to_string(),
        "prints the path it wrote"
    );
    let html = std::fs::read_to_string(&page).expect("page");

    // Self-contained: nothing to fetch, nothing to run.
    for banned in [
        "<script", "<link", "src=", "url(", "@import", "http://", "https://",
    ] {
        assert!(!html.contains(banned), "the page contains {banned:?}");
    }
    for part in [
        "<svg",
        "class=\"heat\"",
        "id=\"agents\"",
        "id=\"queues\"",
        "id=\"open-tasks\"",
        "@media print",
        "@media (max-width",
    ] {
        assert!(html.contains(part), "the page lacks {part:?}");
    }

    let Some(bin) = browser() else {
        eprintln!("note: no chromium on this machine; the browser checks are skipped");
        return;
    };
    let (proxy, requests) = recording_proxy();
    let url = format!("file://{}", page.display());
    let profile = dir.path().join("chromium-profile");
    let dom = chromium(bin, &profile, proxy, &["--dump-dom".into(), url.clone()]);
    assert!(dom.contains("Missed calls &amp; callbacks"), "{dom}");
    assert_eq!(figure(&dom, None, "period"), "Sun 22 Nov 2026");
    for key in [
        "inbound",
        "answered",
        "missed",
        "short_abandons",
        "callback_on_time",
        "callback_late",
        "callback_never",
        "callback_open",
    ] {
        assert_eq!(
            figure(&dom, None, key),
            json[key].to_string(),
            "{key} in the DOM"
        );
    }
    assert_eq!(
        figure(&dom, None, "missed_rate"),
        format!(
            "{:.1}%",
            json["missed_rate"].as_f64().expect("rate") * 100.0
        )
    );
    // Per-agent and per-queue tables carry the `--by agent` / `--by queue` numbers.
    let agents = by(ReportBy::Agent);
    for r in agents["by"].as_array().expect("rows") {
        let key = r["key"].as_str().expect("key");
        for f in ["rung", "rung_not_answered", "missed", "callbacks_made"] {
            assert_eq!(
                figure(&dom, Some(key), f),
                r[f].to_string(),
                "agent {key} {f}"
            );
        }
    }
    let queues = by(ReportBy::Queue);
    let sales = queues["by"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["key"] == "sales")
        .expect("sales");
    for f in ["offered", "abandoned_queue", "abandoned_ringing", "timeout"] {
        assert_eq!(
            figure(&dom, Some("sales"), f),
            sales[f].to_string(),
            "sales {f}"
        );
    }
    // Open tasks: one line each.
    let open = json["open_tasks"].as_array().expect("open").len();
    assert!(open > 0);
    assert_eq!(dom.matches("data-task=").count(), open);

    for (name, size) in [
        ("report-desktop.png", "1280,2600"),
        ("report-phone.png", "390,2400"),
    ] {
        let shot = shots.join(name);
        let _ = std::fs::remove_file(&shot);
        chromium(
            bin,
            &profile,
            proxy,
            &[
                format!("--window-size={size}"),
                format!("--screenshot={}", shot.display()),
                url.clone(),
            ],
        );
        let png = std::fs::read(&shot).expect("screenshot written");
        assert!(png.starts_with(b"\x89PNG") && png.len() > 20_000, "{name}");
    }
    // Printed: A4 landscape by the page's print CSS.
    let pdf = shots.join("report.pdf");
    let _ = std::fs::remove_file(&pdf);
    chromium(
        bin,
        &profile,
        proxy,
        &[
            "--no-pdf-header-footer".into(),
            format!("--print-to-pdf={}", pdf.display()),
            url.clone(),
        ],
    );
    let printed = std::fs::read(&pdf).expect("pdf written");
    assert!(printed.starts_with(b"%PDF") && printed.len() > 10_000);

    // Chromium itself phones home (network time, component updates) whatever the page holds;
    // those go to Google's service hosts. Anything else came from the page.
    let browser_own = ["google.com", "googleapis.com", "gstatic.com", "gvt1.com"];
    let page_fetches: Vec<String> = requests
        .lock()
        .expect("log")
        .iter()
        .filter(|line| {
            let target = line.split(' ').nth(1).unwrap_or("");
            let host = target
                .trim_start_matches("http://")
                .trim_start_matches("https://")
                .split(['/', ':'])
                .next()
                .unwrap_or("");
            !browser_own
                .iter()
                .any(|d| host == *d || host.ends_with(&format!(".{d}")))
        })
        .cloned()
        .collect();
    assert!(
        page_fetches.is_empty(),
        "the page fetched: {page_fetches:?}"
    );
    eprintln!("screenshots: {}", shots.display());
}
