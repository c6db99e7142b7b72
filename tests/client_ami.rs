//! The AMI client against a scripted AMI server on a real socket: login (plain, MD5, refused),
//! resync list, keep-alive, reconnects, shutdown and a stalled consumer.
//!
//! Tests that wait for the client's timers (backoff, ping) run on tokio's paused clock: the
//! runtime jumps to the next timer whenever it is idle, so they take no real time. Client and
//! server share the one runtime thread and loopback writes are delivered at once, so the jump
//! never overtakes a message in flight. The stalled-consumer test measures real write times and
//! runs on the real clock.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use missedcalld::ami::client::{self, AuthMethod, ClientConfig, ClientEvent, ClientHandle};
use missedcalld::secret::Secret;
use support::ami_server::{BANNER, FakeAmi, render};
use tokio_util::sync::CancellationToken;

const USER: &str = "missedcalls";
const SECRET: &str = "s3cret-never-logged";

fn config(server: &FakeAmi) -> ClientConfig {
    let mut cfg = ClientConfig::new("127.0.0.1", server.addr.port(), USER, Secret::new(SECRET));
    // The fake answers both logins; most tests look at the plain one.
    cfg.auth = AuthMethod::Plain;
    cfg.ping_interval = Duration::from_millis(300);
    cfg.ping_timeout = Duration::from_millis(300);
    cfg.backoff_min = Duration::from_millis(50);
    cfg.backoff_max = Duration::from_millis(400);
    cfg.connect_timeout = Duration::from_secs(2);
    cfg
}

async fn next(handle: &mut ClientHandle) -> ClientEvent {
    tokio::time::timeout(Duration::from_secs(5), handle.recv())
        .await
        .expect("an event within 5 s")
        .expect("client still running")
}

fn event_name(ev: &ClientEvent) -> Option<String> {
    match ev {
        ClientEvent::Message { msg, .. } => msg.get_str("Event").map(|s| s.into_owned()),
        _ => None,
    }
}

/// The next event is the AMI event `name`.
async fn expect_event(handle: &mut ClientHandle, name: &str) {
    assert_eq!(event_name(&next(handle).await).as_deref(), Some(name));
}

/// The next event is a disconnection; returns its cause.
async fn expect_disconnected(handle: &mut ClientHandle) -> String {
    match next(handle).await {
        ClientEvent::Disconnected { cause } => cause,
        other => panic!("expected Disconnected, got {other:?}"),
    }
}

async fn expect_connected(handle: &mut ClientHandle) -> Vec<missedcalld::ami::Message> {
    match next(handle).await {
        ClientEvent::Connected { banner } => assert_eq!(banner, BANNER),
        other => panic!("expected Connected, got {other:?}"),
    }
    match next(handle).await {
        ClientEvent::Channels(items) => items,
        other => panic!("expected Channels, got {other:?}"),
    }
}

async fn stop(handle: ClientHandle, cancel: CancellationToken) {
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(3), handle.task)
        .await
        .expect("client stops after cancel")
        .expect("client task did not panic");
}

/// Collects formatted log lines of the current thread (current-thread runtime tests).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned()
    }
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let logs = self.clone();
        let sub = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || logs.clone())
            .finish();
        tracing::subscriber::set_default(sub)
    }
}

#[tokio::test]
async fn plain_login_resync_events_and_logoff_on_cancel() {
    let server = FakeAmi::start(|mut conn, _| async move {
        assert!(conn.login(USER, SECRET).await);
        conn.send(&[("Event", "FullyBooted"), ("Status", "Fully Booted")])
            .await;
        conn.channels(&[
            vec![("Channel", "PJSIP/trunk-00000001"), ("Uniqueid", "1.1")],
            vec![
                ("Channel", "Local/101@agents-00000002;1"),
                ("Uniqueid", "1.2"),
            ],
        ])
        .await;
        conn.send(&[("Event", "Newchannel"), ("Uniqueid", "1.3")])
            .await;
        conn.serve(true).await;
    })
    .await;
    let cancel = CancellationToken::new();
    let mut handle = client::spawn(config(&server), cancel.clone());

    assert!(
        matches!(next(&mut handle).await, ClientEvent::Connected { banner } if banner == BANNER)
    );
    // FullyBooted arrived while the list was being collected: forwarded first, in wire order.
    expect_event(&mut handle, "FullyBooted").await;
    let ClientEvent::Channels(items) = next(&mut handle).await else {
        panic!("expected the resync list")
    };
    let names: Vec<_> = items.iter().filter_map(|m| m.get_str("Channel")).collect();
    assert_eq!(
        names,
        ["PJSIP/trunk-00000001", "Local/101@agents-00000002;1"]
    );
    let ev = next(&mut handle).await;
    let ClientEvent::Message { msg, received_at } = &ev else {
        panic!("expected an event, got {ev:?}")
    };
    assert_eq!(msg.get("Uniqueid"), Some(&b"1.3"[..]));
    assert!(received_at.as_micros() > 0);
    assert_eq!(
        handle
            .queue_depth
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );

    stop(handle, cancel).await;
    // Logoff is sent best effort on cancel.
    let deadline = Instant::now() + Duration::from_secs(2);
    while !server.actions().contains(&"Logoff".to_string()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(server.actions(), ["Login", "CoreShowChannels", "Logoff"]);
}

#[tokio::test]
async fn md5_challenge_login() {
    let server = FakeAmi::start(|mut conn, _| async move {
        conn.accept_session(USER, SECRET).await;
        conn.serve(true).await;
    })
    .await;
    let cancel = CancellationToken::new();
    let mut cfg = config(&server);
    cfg.auth = AuthMethod::Md5;
    let mut handle = client::spawn(cfg, cancel.clone());
    assert!(expect_connected(&mut handle).await.is_empty());
    stop(handle, cancel).await;
    assert_eq!(
        server.actions()[..3],
        ["Challenge", "Login", "CoreShowChannels"]
    );
}

#[tokio::test(start_paused = true)]
async fn refused_login_logs_a_clear_error_and_retries_with_backoff() {
    let logs = Logs::default();
    let _guard = logs.install();
    let server = FakeAmi::start(|mut conn, _| async move {
        assert!(!conn.login(USER, "the-right-one").await);
    })
    .await;
    let cancel = CancellationToken::new();
    let ClientHandle {
        mut events, task, ..
    } = client::spawn(config(&server), cancel.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while server.connections() < 5 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cancel.cancel();
    task.await.expect("client task did not panic");
    assert!(
        events.try_recv().is_err(),
        "no Connected after a refused login"
    );

    let at = server.accepted.lock().expect("lock").clone();
    assert!(at.len() >= 5, "{} attempts", at.len());
    let gaps: Vec<_> = at.windows(2).map(|w| w[1] - w[0]).collect();
    // Delays: 50 ms, then 50-100, 100-200, 200-400 (equal jitter, capped at 400 ms).
    assert!(
        gaps.iter().all(|g| *g >= Duration::from_millis(45)),
        "{gaps:?}"
    );
    assert!(gaps[3] >= Duration::from_millis(190), "{gaps:?}");
    assert!(gaps[3] > gaps[0], "{gaps:?}");

    let text = logs.text();
    assert!(!text.contains(SECRET), "the secret leaked into the logs");
    let warns: Vec<_> = text.lines().filter(|l| l.contains(" WARN ")).collect();
    assert!(
        warns
            .iter()
            .all(|l| l.contains("Authentication failed") && l.contains(USER)),
        "{warns:#?}"
    );
    // Exactly one warning per failed attempt (the last attempt may have been cut by cancel).
    assert!(
        warns.len() == at.len() || warns.len() + 1 == at.len(),
        "{} warnings for {} attempts",
        warns.len(),
        at.len()
    );
}

#[tokio::test(start_paused = true)]
async fn missing_pong_reconnects() {
    let server = FakeAmi::start(|mut conn, index| async move {
        conn.accept_session(USER, SECRET).await;
        // The first connection never answers Ping.
        conn.serve(index > 0).await;
    })
    .await;
    let cancel = CancellationToken::new();
    let mut handle = client::spawn(config(&server), cancel.clone());
    expect_connected(&mut handle).await;
    let t = tokio::time::Instant::now();
    let cause = expect_disconnected(&mut handle).await;
    assert!(cause.contains("Ping"), "{cause}");
    // Ping after 300 ms, no Pong within 300 ms.
    assert!(
        t.elapsed() >= Duration::from_millis(450),
        "{:?}",
        t.elapsed()
    );
    expect_connected(&mut handle).await;
    // The second connection answers: it stays up across several pings.
    let quiet = tokio::time::timeout(Duration::from_millis(1200), handle.recv()).await;
    assert!(quiet.is_err(), "unexpected event {quiet:?}");
    stop(handle, cancel).await;
    assert_eq!(server.connections(), 2);
}

#[tokio::test]
async fn connection_dropped_mid_message_reconnects_without_the_torn_message() {
    let server = FakeAmi::start(|mut conn, index| async move {
        conn.accept_session(USER, SECRET).await;
        if index == 0 {
            conn.send(&[("Event", "Newchannel"), ("Uniqueid", "a")])
                .await;
            conn.send_raw(b"Event: Hangup\r\nUniqueid: torn\r\nCau")
                .await;
            conn.close().await;
        } else {
            conn.send(&[("Event", "Newchannel"), ("Uniqueid", "b")])
                .await;
            conn.serve(true).await;
        }
    })
    .await;
    let cancel = CancellationToken::new();
    let mut handle = client::spawn(config(&server), cancel.clone());
    expect_connected(&mut handle).await;
    expect_event(&mut handle, "Newchannel").await;
    let cause = expect_disconnected(&mut handle).await;
    assert!(cause.contains("closed the connection"), "{cause}");
    expect_connected(&mut handle).await;
    let ClientEvent::Message { msg, .. } = next(&mut handle).await else {
        panic!("expected the next event")
    };
    assert_eq!(msg.get("Uniqueid"), Some(&b"b"[..]));
    stop(handle, cancel).await;
}

#[tokio::test]
async fn event_list_items_are_collected_and_other_events_pass_through() {
    let server = FakeAmi::start(|mut conn, _| async move {
        assert!(conn.login(USER, SECRET).await);
        let m = conn.expect("CoreShowChannels").await;
        let id = m.get_str("ActionID").unwrap_or_default().into_owned();
        let mut wire = render(&[
            ("Response", "Success"),
            ("ActionID", &id),
            ("EventList", "start"),
        ]);
        for (i, ch) in ["A", "B", "C"].iter().enumerate() {
            wire.extend(render(&[
                ("Event", "CoreShowChannel"),
                ("ActionID", &id),
                ("Channel", ch),
            ]));
            if i == 1 {
                // A live event between list items, and an item of somebody else's list.
                wire.extend(render(&[("Event", "Hangup"), ("Uniqueid", "9.9")]));
                wire.extend(render(&[
                    ("Event", "CoreShowChannel"),
                    ("ActionID", "other"),
                    ("Channel", "X"),
                ]));
            }
        }
        wire.extend(render(&[
            ("Event", "CoreShowChannelsComplete"),
            ("ActionID", &id),
            ("EventList", "Complete"),
            ("ListItems", "3"),
        ]));
        conn.send_raw(&wire).await;
        conn.serve(true).await;
    })
    .await;
    let cancel = CancellationToken::new();
    let mut handle = client::spawn(config(&server), cancel.clone());
    assert!(matches!(
        next(&mut handle).await,
        ClientEvent::Connected { .. }
    ));
    expect_event(&mut handle, "Hangup").await;
    expect_event(&mut handle, "CoreShowChannel").await;
    let ClientEvent::Channels(items) = next(&mut handle).await else {
        panic!("expected Channels")
    };
    let chans: Vec<_> = items.iter().filter_map(|m| m.get_str("Channel")).collect();
    assert_eq!(chans, ["A", "B", "C"]);
    stop(handle, cancel).await;
}

#[tokio::test]
async fn shutdown_event_then_close_reconnects() {
    let server = FakeAmi::start(|mut conn, index| async move {
        conn.accept_session(USER, SECRET).await;
        if index == 0 {
            conn.send(&[
                ("Event", "Shutdown"),
                ("Shutdown", "Cleanly"),
                ("Restart", "True"),
            ])
            .await;
            conn.close().await;
        } else {
            conn.serve(true).await;
        }
    })
    .await;
    let cancel = CancellationToken::new();
    let mut handle = client::spawn(config(&server), cancel.clone());
    expect_connected(&mut handle).await;
    expect_event(&mut handle, "Shutdown").await;
    let cause = expect_disconnected(&mut handle).await;
    assert!(cause.contains("shut down"), "{cause}");
    expect_connected(&mut handle).await;
    stop(handle, cancel).await;
}

const BURST: usize = 100_000;
/// Events per second of the burst: about twice the highest rate seen on a lab PBX
/// (AMI-FACTS 19: 13,000/s when 250 calls started at once).
const BURST_RATE: f64 = 25_000.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_consumer_never_blocks_the_server_and_loses_nothing() {
    let worst = Arc::new(Mutex::new((Duration::ZERO, 0usize)));
    let w = worst.clone();
    let server = FakeAmi::start(move |mut conn, _| {
        let w = w.clone();
        async move {
            conn.accept_session(USER, SECRET).await;
            let mut max = Duration::ZERO;
            let start = Instant::now();
            for i in 0..BURST {
                if i.is_multiple_of(25) {
                    let due = start + Duration::from_secs_f64(i as f64 / BURST_RATE);
                    tokio::time::sleep_until(due.into()).await;
                }
                let seq = i.to_string();
                let took = conn
                    .send(&[
                        ("Event", "Newexten"),
                        ("Privilege", "dialplan,all"),
                        ("Timestamp", "1795375833.961927"),
                        ("Channel", "Local/74951234567@from-trunk-0000002a;2"),
                        ("ChannelState", "4"),
                        ("ChannelStateDesc", "Ring"),
                        ("CallerIDNum", "79161234567"),
                        ("CallerIDName", "Client"),
                        ("Context", "ivr-main"),
                        ("Exten", "s"),
                        ("Uniqueid", "lab-pbx-1795375885.12"),
                        ("Linkedid", "lab-pbx-1795375885.12"),
                        ("Application", "Background"),
                        ("AppData", "custom/ivr-welcome"),
                        ("Seq", &seq),
                    ])
                    .await;
                max = max.max(took);
            }
            conn.send(&[("Event", "Done")]).await;
            *w.lock().expect("lock") = (max, conn.full_buffer_waits);
            conn.serve(true).await;
        }
    })
    .await;
    let cancel = CancellationToken::new();
    let mut cfg = config(&server);
    // The fake server answers no Ping while it writes the burst.
    cfg.ping_interval = Duration::from_secs(30);
    let mut handle = client::spawn(cfg, cancel.clone());
    expect_connected(&mut handle).await;

    // The consumer stalls while the server writes its burst (4 s at 25,000/s): every event
    // must reach the queue without one being read.
    let deadline = Instant::now() + Duration::from_secs(30);
    let queued = || {
        handle
            .queue_depth
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    while queued() < BURST + 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        queued(),
        BURST + 1,
        "everything is queued while the consumer stalls"
    );

    let mut seen = 0usize;
    loop {
        match next(&mut handle).await {
            ClientEvent::Message { msg, .. } => {
                if msg.get("Event") == Some(b"Done") {
                    break;
                }
                assert_eq!(
                    msg.get_str("Seq").as_deref(),
                    Some(seen.to_string().as_str())
                );
                seen += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, BURST);
    let (worst, full_waits) = *worst.lock().expect("lock");
    eprintln!("slowest of {BURST} server writes: {worst:?}; full send buffer {full_waits} times");
    // The property Asterisk needs (AMI-FACTS 10): the client keeps reading, so the PBX's send
    // buffer never fills. Write times also include the scheduler of a loaded machine, so they
    // only get a generous bound.
    assert_eq!(full_waits, 0, "the server found the send buffer full");
    assert!(
        worst < Duration::from_secs(2),
        "a server write blocked for {worst:?}"
    );
    stop(handle, cancel).await;
}

/// The client on its own thread (what the daemon runs): events written one by one, as Asterisk
/// does, arrive complete and in order although the reader sleeps after small reads, a burst is
/// read on without pausing, and cancel ends the task.
#[tokio::test]
async fn dedicated_reader_thread_delivers_everything_in_order() {
    const TRICKLE: usize = 300;
    const BURST: usize = 5_000;
    let server = FakeAmi::start(|mut conn, _| async move {
        conn.accept_session(USER, SECRET).await;
        for i in 0..TRICKLE {
            conn.send(&[("Event", "Newchannel"), ("Seq", &i.to_string())])
                .await;
            if i % 10 == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        let mut burst = Vec::new();
        for i in TRICKLE..TRICKLE + BURST {
            burst.extend(render(&[("Event", "Newchannel"), ("Seq", &i.to_string())]));
        }
        conn.send_raw(&burst).await;
        conn.serve(true).await;
    })
    .await;
    let cancel = CancellationToken::new();
    let mut cfg = config(&server);
    cfg.read_pause = Duration::from_millis(10);
    let mut handle = client::spawn_dedicated(cfg, cancel.clone()).expect("reader thread");
    expect_connected(&mut handle).await;
    let started = Instant::now();
    for i in 0..TRICKLE + BURST {
        let ClientEvent::Message { msg, .. } = next(&mut handle).await else {
            panic!("expected event {i}")
        };
        assert_eq!(msg.get_str("Seq").as_deref(), Some(i.to_string().as_str()));
    }
    // 300 events over about 30 ms of writes, then 5,000 at once: far below a pause per event.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    stop(handle, cancel).await;
}

/// What [`client::spawn_dedicated_into`] delivered: every batch, as it came.
#[derive(Clone, Default)]
struct Batches(Arc<Mutex<Vec<Vec<ClientEvent>>>>);

impl client::EventSink for Batches {
    fn deliver(&mut self, batch: &mut Vec<ClientEvent>) -> Option<usize> {
        let mut all = self.0.lock().expect("lock");
        all.push(std::mem::take(batch));
        Some(0)
    }
}

impl Batches {
    /// Every event delivered so far, in order, as short labels.
    fn labels(&self) -> Vec<String> {
        let all = self.0.lock().expect("lock");
        all.iter()
            .flatten()
            .map(|ev| match ev {
                ClientEvent::Connected { .. } => "connected".to_owned(),
                ClientEvent::Channels(items) => format!("channels {}", items.len()),
                ClientEvent::Message { msg, .. } => {
                    format!(
                        "{} {}",
                        msg.get_str("Event").unwrap_or_default(),
                        msg.get_str("Seq").unwrap_or_default()
                    )
                }
                ClientEvent::Disconnected { cause } => format!("disconnected: {cause}"),
            })
            .collect()
    }
}

/// The batch hand-off of the reader thread: events written in blocks arrive as one batch per
/// read, in wire order with `Connected`, `Channels` and `Disconnected`, across a reconnect; a
/// `Pong` in the middle of a block is recognised (the session stays up) and not delivered; a
/// message cut by the end of the connection is dropped; nothing else is lost.
#[tokio::test]
async fn batches_keep_wire_order_and_lose_nothing_across_a_reconnect() {
    const BLOCK: usize = 200;
    fn block(from: usize, n: usize) -> Vec<u8> {
        let mut wire = Vec::new();
        for i in from..from + n {
            wire.extend(render(&[("Event", "Newchannel"), ("Seq", &i.to_string())]));
        }
        wire
    }
    let server = FakeAmi::start(|mut conn, index| async move {
        conn.accept_session(USER, SECRET).await;
        if index == 0 {
            conn.send_raw(&block(0, BLOCK)).await;
            // The answer to the first Ping sits between two halves of a block.
            let ping = conn.expect("Ping").await;
            let mut wire = block(BLOCK, BLOCK / 2);
            wire.extend(
                missedcalld::ami::standin::StandinPbx::open()
                    .answer(&ping)
                    .bytes,
            );
            wire.extend(block(BLOCK + BLOCK / 2, BLOCK / 2));
            conn.send_raw(&wire).await;
            // Answered: the client pings again a period later (a missed Pong would have ended
            // the session with "no reply" instead).
            let _ = conn.expect("Ping").await;
            let mut wire = block(2 * BLOCK, BLOCK);
            wire.extend(b"Event: Newchannel\r\nSeq: cut");
            conn.send_raw(&wire).await;
            conn.close().await;
        } else {
            conn.send_raw(&block(3 * BLOCK, BLOCK)).await;
            conn.serve(true).await;
        }
    })
    .await;
    let cancel = CancellationToken::new();
    let mut cfg = config(&server);
    cfg.read_pause = Duration::from_millis(10);
    let sink = Batches::default();
    let task =
        client::spawn_dedicated_into(cfg, cancel.clone(), sink.clone()).expect("reader thread");

    let mut expected = vec!["connected".to_owned(), "channels 0".to_owned()];
    expected.extend((0..3 * BLOCK).map(|i| format!("Newchannel {i}")));
    expected.push("disconnected: PBX closed the connection".to_owned());
    expected.extend(["connected".to_owned(), "channels 0".to_owned()]);
    expected.extend((3 * BLOCK..4 * BLOCK).map(|i| format!("Newchannel {i}")));
    let deadline = Instant::now() + Duration::from_secs(10);
    while sink.labels().len() < expected.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(3), task)
        .await
        .expect("client stops after cancel")
        .expect("client task did not panic");
    assert_eq!(sink.labels(), expected);
    let batches = sink.0.lock().expect("lock").len();
    // 4 blocks of 200 events plus 4 session events: a batch per read, not per event.
    assert!(
        batches < expected.len() / 4,
        "{batches} batches for {} events",
        expected.len()
    );
}
