//! `missedcalld run`: the AMI client, the pipeline and the store wired together, with SIGHUP
//! reload and SIGTERM shutdown.
//!
//! ```text
//!  ami-reader thread ══spill queue══▶ pipeline thread ──▶ store writer thread
//!  (client task: socket,  (+ Work)     tracker + Store::record (may block)
//!   frame, parse, queue)      ▲
//!                 router (async): signals, reload, ticks
//! ```
//! Invariants:
//! - The socket reader never waits for anything slow: it moves the events of each socket read
//!   straight into the [`crate::spill`] queue (the [`QueueSink`] the daemon gives the client),
//!   which holds up to [`QUEUE_MEMORY_LIMIT`] bytes in memory and spills the rest to a file
//!   next to the database, so a burst neither blocks the reader nor grows memory without
//!   bound. The pipeline thread is woken once per batch pushed while it was idle (a
//!   `Work::Events` doorbell), not once per event; any other `Work` is handled after the
//!   events queued before it. The router is not on the events' path at all.
//! - Shutdown (SIGTERM, SIGINT, or the caller's `shutdown` future): the client logs off, every
//!   event already received is processed, the store commits and closes; then `run` returns
//!   `Ok`. A database that cannot commit (full disk) gets [`STORE_STOP_BUDGET`]; the calls it
//!   could not take are logged one by one at ERROR and `run` returns an error.
//!   Calls still in progress are saved beside the database ([`saved_calls_path`]) and
//!   restored at the next start before the first resync, so a restart loses nothing.
//! - Reload (SIGHUP): a new configuration that fails to load or apply is logged and the running
//!   one is kept. Only what changed is rebuilt; the AMI session stays up unless `[ami]` or the
//!   secret changed.

use std::cell::RefCell;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle as ThreadHandle;
use std::time::Duration;

use anyhow::{Context, anyhow};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::ami::client::{self, ClientConfig, ClientEvent, EventSink};
use crate::callbacks::TaskRules;
use crate::callbacks::sla::Calendar;
use crate::calls::TrackerConfig;
use crate::config::Config;
use crate::logging;
use crate::notify::outbox::Routes;
use crate::notify::worker::{self as notify_worker, WorkerHandle, WorkerSettings};
use crate::pipeline::{CallSink, Pipeline};
use crate::signals::{Control, SignalListener};
use crate::store::{CommitHook, StopDeadline, Store, StoreError, StoreSettings};
use crate::time::LocalTime;

/// How often calls that went quiet are looked for when no events arrive.
pub const TICK_INTERVAL: Duration = Duration::from_secs(30);
/// Bytes of AMI events held in memory between the router and the pipeline thread; beyond it
/// events go to the spill file.
pub const QUEUE_MEMORY_LIMIT: usize = crate::spill::DEFAULT_MEMORY_LIMIT;
/// How long the old AMI client gets to log off when `[ami]` changes or at shutdown.
const CLIENT_STOP_TIMEOUT: Duration = Duration::from_secs(2);
/// From the stop signal, how long the database may take to commit what is left; after that a
/// batch that fails (a full disk) is logged call by call and given up. With the client's 2 s
/// and one SQLite busy wait (5 s) a stop stays well inside systemd's `TimeoutStopSec=20s`.
pub const STORE_STOP_BUDGET: Duration = Duration::from_secs(6);

/// Live counters of a running daemon (for the demo, tests and status logs).
#[derive(Debug, Default)]
pub struct DaemonStatus {
    /// AMI events the pipeline has processed.
    pub events_processed: AtomicU64,
    /// Logged in to AMI right now.
    pub connected: AtomicBool,
    /// Successful AMI logins so far.
    pub logins: AtomicU64,
    /// Calls the tracker is following.
    pub calls_in_progress: AtomicUsize,
    /// Configuration reloads applied.
    pub reloads: AtomicU64,
}

/// What the router hands the pipeline thread.
enum Work {
    /// Events were queued in the spill queue while the thread was idle.
    Events,
    /// Expire calls that went quiet.
    Tick,
    /// New tracker settings.
    SetTracker(TrackerConfig),
    /// New callback-task rules for the store's writer (the file stays open).
    SetRules(Box<TaskRules>),
    /// Open a store with these settings and switch to it; the old one is flushed and closed.
    ReplaceStore(Box<StoreSettings>, oneshot::Sender<Result<(), StoreError>>),
    /// Process everything before this, close the store, end the thread.
    Stop,
}

/// The pipeline's sink: the current store, replaceable on reload.
struct StoreSink(Rc<RefCell<Store>>);

impl CallSink for StoreSink {
    type Error = StoreError;
    fn record(&mut self, call: crate::calls::FinishedCall) -> Result<(), StoreError> {
        self.0.borrow().record(call)
    }
}

/// `missedcalld run --config PATH`: sets up logging from the file, then runs the daemon on a
/// tokio runtime until SIGTERM or SIGINT.
pub fn run_command(config_path: &Path) -> anyhow::Result<()> {
    let cfg = Config::load(config_path).map_err(|e| anyhow!("{e}"))?;
    logging::init(&cfg.log)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let result = runtime.block_on(run(config_path.to_path_buf(), std::future::pending()));
    if let Err(e) = &result {
        error!("stopped: {e:#}");
    }
    result
}

/// The daemon: runs until SIGTERM/SIGINT or until `shutdown` completes, then flushes and
/// returns `Ok(())`. SIGHUP reloads `config_path`.
pub async fn run(config_path: PathBuf, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    run_with_status(config_path, shutdown, Arc::new(DaemonStatus::default())).await
}

/// [`run`], publishing live counters into `status`.
pub async fn run_with_status(
    config_path: PathBuf,
    shutdown: impl Future<Output = ()>,
    status: Arc<DaemonStatus>,
) -> anyhow::Result<()> {
    let (tx, rx) = unbounded_channel();
    let mut signals = SignalListener::install().context("installing signal handlers")?;
    let signal_tx = tx.clone();
    let forward = tokio::spawn(async move {
        while let Some(c) = signals.recv().await {
            if signal_tx.send(c).is_err() {
                break;
            }
        }
    });
    let daemon = run_controlled(config_path, rx, status);
    tokio::pin!(daemon);
    tokio::pin!(shutdown);
    let result = tokio::select! {
        r = &mut daemon => r,
        () = &mut shutdown => {
            let _ = tx.send(Control::Shutdown);
            daemon.await
        }
    };
    forward.abort();
    result
}

/// The daemon driven by explicit controls instead of signals (tests, embedding): stops on
/// [`Control::Shutdown`] or when every sender is dropped.
pub async fn run_controlled(
    config_path: PathBuf,
    mut controls: UnboundedReceiver<Control>,
    status: Arc<DaemonStatus>,
) -> anyhow::Result<()> {
    let mut cfg = Config::load(&config_path).map_err(|e| anyhow!("{e}"))?;
    let ami = client_config(&cfg)?;
    info!(
        version = env!("CARGO_PKG_VERSION"),
        config = %config_path.display(),
        "starting: {}",
        cfg.summary()
    );

    let wake = Arc::new(Notify::new());
    let state_path = saved_calls_path(&cfg.store.path);
    let stop = StopDeadline::default();
    let mut settings = daemon_store_settings(&cfg, &wake)?;
    settings.stop = stop.clone();
    let store = Store::open(settings)
        .with_context(|| format!("opening the database {}", cfg.store.path.display()))?;
    let mut notifier = start_notifier(&cfg, &wake)?;
    let (work_tx, work_rx) = std_mpsc::channel::<Work>();
    let (queue, queue_rx) = crate::spill::queue(&spill_dir(&cfg), QUEUE_MEMORY_LIMIT)
        .context("creating the AMI event queue")?;
    let queue = Arc::new(Mutex::new(queue));
    let worker = spawn_worker(
        cfg.calls.clone(),
        store,
        state_path,
        work_rx,
        queue_rx,
        Arc::clone(&status),
    )?;

    let mut client_cancel = CancellationToken::new();
    let mut client = start_client(ami, &client_cancel, &queue, &work_tx)?;
    let mut tick = tokio::time::interval(TICK_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    let outcome: anyhow::Result<()> = loop {
        tokio::select! {
            biased;
            ctl = controls.recv() => match ctl {
                Some(Control::Reload) => {
                    let running = Running { work_tx: &work_tx, queue: &queue, wake: &wake, notifier: &mut notifier };
                    match reload(&config_path, &cfg, running, &mut client, &mut client_cancel).await {
                        Ok(Some(new)) => {
                            cfg = new;
                            status.reloads.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(None) => {}
                        Err(e) => error!("reload failed, keeping the running configuration: {e:#}"),
                    }
                }
                Some(Control::Shutdown) | None => {
                    info!("shutting down");
                    break Ok(());
                }
            },
            // The client ends on its own only when the pipeline thread is gone.
            _ = client.ended() => break Err(anyhow!("the AMI client stopped unexpectedly")),
            _ = tick.tick() => {
                if work_tx.send(Work::Tick).is_err() {
                    break Err(anyhow!("the pipeline thread stopped"));
                }
            }
        }
    };

    // Stop the client (what it received is in the queue), then let the pipeline finish.
    stop.set(std::time::Instant::now() + STORE_STOP_BUDGET);
    stop_client(&mut client, &client_cancel).await;
    let _ = work_tx.send(Work::Stop);
    drop(work_tx);
    let joined = tokio::task::spawn_blocking(move || worker.join())
        .await
        .map_err(|e| anyhow!("waiting for the pipeline thread: {e}"))?;
    let worker_result = joined.map_err(|_| anyhow!("the pipeline thread panicked"))?;
    if let Some(n) = notifier.take() {
        // Pending notifications stay in the outbox for the next start.
        let _ = tokio::task::spawn_blocking(move || n.stop()).await;
    }
    status.connected.store(false, Ordering::Relaxed);
    outcome?;
    worker_result?;
    info!("stopped cleanly");
    Ok(())
}

/// The client settings `run` uses: a configured `[ami]` whose secret came from one of its
/// sources.
pub fn client_config(cfg: &Config) -> anyhow::Result<ClientConfig> {
    let ami = cfg
        .ami
        .clone()
        .ok_or_else(|| anyhow!("ami: no [ami] table in the configuration; `run` needs one"))?;
    if cfg.ami_secret_source.is_none() {
        return Err(anyhow!(
            "ami.secret: not set; give secret, secret_file, or the systemd credential \
             $CREDENTIALS_DIRECTORY/{}",
            crate::config::CREDENTIAL_NAME
        ));
    }
    Ok(ami)
}

/// [`store_settings`] plus what the daemon adds: the notification routes written with each
/// missed call, and the worker's wake-up after each commit.
fn daemon_store_settings(cfg: &Config, wake: &Arc<Notify>) -> anyhow::Result<StoreSettings> {
    let mut s = store_settings(cfg)?;
    let routes = Routes::new(&cfg.notify);
    if !routes.is_empty() {
        s.notify = Some(Arc::new(routes));
        let wake = Arc::clone(wake);
        s.on_commit = Some(CommitHook(Arc::new(move || wake.notify_one())));
    }
    Ok(s)
}

/// Starts the delivery worker when `[notify]` has a sink.
fn start_notifier(cfg: &Config, wake: &Arc<Notify>) -> anyhow::Result<Option<WorkerHandle>> {
    if !cfg.notify.has_sinks() {
        return Ok(None);
    }
    let settings = WorkerSettings {
        db: cfg.store.path.clone(),
        config: cfg.notify.clone(),
        calendar: Calendar::new(&cfg.calendar).map_err(|e| anyhow!("{e}"))?,
        clock: notify_worker::wall_clock(),
        scans: true,
    };
    let handle = notify_worker::spawn(settings, Arc::clone(wake)).context("notify")?;
    Ok(Some(handle))
}

/// The running parts a reload may rebuild besides the AMI client.
struct Running<'a> {
    work_tx: &'a std_mpsc::Sender<Work>,
    queue: &'a Arc<Mutex<crate::spill::QueueSender>>,
    wake: &'a Arc<Notify>,
    notifier: &'a mut Option<WorkerHandle>,
}

/// The callback-task rules of `[calendar]`, `[callbacks]` and `[numbers]`.
pub fn task_rules(cfg: &Config) -> anyhow::Result<TaskRules> {
    Ok(TaskRules {
        calendar: Calendar::new(&cfg.calendar)?,
        callbacks: cfg.callbacks.clone(),
        numbers: cfg.numbers.clone(),
    })
}

/// The store settings for `cfg`.
pub fn store_settings(cfg: &Config) -> anyhow::Result<StoreSettings> {
    let mut s = StoreSettings::new(cfg.store.path.clone());
    s.rules = task_rules(cfg)?;
    s.batch_max = cfg.store.batch_max;
    s.batch_max_delay = Duration::from_millis(cfg.store.batch_max_delay_ms);
    Ok(s)
}

/// Where the spill file goes: the state directory, i.e. the database's.
fn spill_dir(cfg: &Config) -> PathBuf {
    match cfg.store.path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The daemon's [`EventSink`]: the AMI reader thread moves each socket read's events into the
/// spill queue itself and rings the pipeline thread's doorbell when it was idle.
struct QueueSink {
    /// Shared with the next client after a reload (one client runs at a time, so the lock is
    /// never contended).
    queue: Arc<Mutex<crate::spill::QueueSender>>,
    work_tx: std_mpsc::Sender<Work>,
}

impl EventSink for QueueSink {
    fn deliver(&mut self, batch: &mut Vec<ClientEvent>) -> Option<usize> {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let pushed = queue.push(batch.drain(..));
        if pushed.wake && self.work_tx.send(Work::Events).is_err() {
            return None;
        }
        Some(usize::try_from(pushed.queued).unwrap_or(usize::MAX))
    }
}

/// The running AMI client: its task, until it has been seen to end.
struct LiveClient {
    task: Option<JoinHandle<()>>,
}

impl LiveClient {
    /// Completes when the task ends (never again once it did).
    async fn ended(&mut self) {
        match &mut self.task {
            Some(task) => {
                let _ = task.await;
                self.task = None;
            }
            None => std::future::pending().await,
        }
    }
}

/// Starts the AMI client on its reader thread, feeding the spill queue.
fn start_client(
    ami: ClientConfig,
    cancel: &CancellationToken,
    queue: &Arc<Mutex<crate::spill::QueueSender>>,
    work_tx: &std_mpsc::Sender<Work>,
) -> anyhow::Result<LiveClient> {
    let sink = QueueSink {
        queue: Arc::clone(queue),
        work_tx: work_tx.clone(),
    };
    let task = client::spawn_dedicated_into(ami, cancel.clone(), sink)
        .context("starting the AMI reader thread")?;
    Ok(LiveClient { task: Some(task) })
}

/// Cancels the client and waits for it briefly (aborting it after [`CLIENT_STOP_TIMEOUT`]).
/// Every event it decoded is in the queue by then: it delivers before each socket poll, and
/// an abort takes effect only at such a poll.
async fn stop_client(client: &mut LiveClient, cancel: &CancellationToken) {
    cancel.cancel();
    let Some(task) = client.task.as_mut() else {
        return;
    };
    if tokio::time::timeout(CLIENT_STOP_TIMEOUT, &mut *task)
        .await
        .is_err()
    {
        warn!("the AMI client did not stop in time; aborting it");
        task.abort();
        let _ = tokio::time::timeout(CLIENT_STOP_TIMEOUT, &mut *task).await;
    }
    client.task = None;
}

/// Loads the file again and applies what changed. `Ok(None)`: nothing to apply.
async fn reload(
    path: &Path,
    old: &Config,
    running: Running<'_>,
    client: &mut LiveClient,
    client_cancel: &mut CancellationToken,
) -> anyhow::Result<Option<Config>> {
    info!(config = %path.display(), "reloading the configuration");
    let new = Config::load(path).map_err(|e| anyhow!("{e}"))?;
    let ami = client_config(&new)?;
    let change = Config::diff(old, &new);
    if change.is_empty() {
        info!("configuration unchanged");
        return Ok(None);
    }
    let work_tx = running.work_tx;
    // The steps that can fail go first, so a failure leaves everything as it was. New sinks
    // change what the writer puts in the outbox: a new store handle.
    if change.store_changed || change.notify_changed {
        let settings = daemon_store_settings(&new, running.wake)?;
        let (done_tx, done_rx) = oneshot::channel();
        work_tx
            .send(Work::ReplaceStore(Box::new(settings), done_tx))
            .map_err(|_| anyhow!("the pipeline thread stopped"))?;
        done_rx
            .await
            .map_err(|_| anyhow!("the pipeline thread stopped"))?
            .with_context(|| format!("opening the database {}", new.store.path.display()))?;
    } else if change.callbacks_changed {
        let rules = task_rules(&new)?;
        work_tx
            .send(Work::SetRules(Box::new(rules)))
            .map_err(|_| anyhow!("the pipeline thread stopped"))?;
    }
    if change.log_changed
        && let Err(e) = logging::reload(&new.log)
    {
        error!("log settings not applied: {e}");
    }
    if change.tracker_changed {
        work_tx
            .send(Work::SetTracker(new.calls.clone()))
            .map_err(|_| anyhow!("the pipeline thread stopped"))?;
    }
    if change.ami_changed {
        info!("[ami] changed: reconnecting");
        stop_client(client, client_cancel).await;
        *client_cancel = CancellationToken::new();
        *client = start_client(ami, client_cancel, running.queue, work_tx)?;
    }
    if change.store_changed || change.notify_changed || change.callbacks_changed {
        if let Some(old) = running.notifier.take() {
            let _ = tokio::task::spawn_blocking(move || old.stop()).await;
        }
        match start_notifier(&new, running.wake) {
            Ok(n) => *running.notifier = n,
            Err(e) => error!("notifications not restarted: {e:#}"),
        }
    }
    info!(changed = %change, "configuration reloaded: {}", new.summary());
    Ok(Some(new))
}

fn spawn_worker(
    tracker: TrackerConfig,
    store: Store,
    state_path: PathBuf,
    rx: std_mpsc::Receiver<Work>,
    queue: crate::spill::QueueReceiver,
    status: Arc<DaemonStatus>,
) -> anyhow::Result<ThreadHandle<Result<(), anyhow::Error>>> {
    std::thread::Builder::new()
        .name("pipeline".into())
        .spawn(move || worker(tracker, store, state_path, rx, queue, status))
        .context("starting the pipeline thread")
}

/// The pipeline thread: tracker + store, fed in wire order.
fn worker(
    tracker: TrackerConfig,
    store: Store,
    mut state_path: PathBuf,
    rx: std_mpsc::Receiver<Work>,
    mut queue: crate::spill::QueueReceiver,
    status: Arc<DaemonStatus>,
) -> anyhow::Result<()> {
    let store = Rc::new(RefCell::new(store));
    let mut pipeline = Pipeline::new(tracker, StoreSink(Rc::clone(&store)));
    let result = (|| -> anyhow::Result<()> {
        restore_calls(&mut pipeline, &state_path)?;
        while let Ok(work) = rx.recv() {
            // Events queued before this work first (a Stop then finds nothing left behind).
            while let Some(ev) = queue.pop() {
                on_client_event(&mut pipeline, ev, &status)?;
            }
            match work {
                Work::Events => {}
                Work::Tick => {
                    pipeline.tick(LocalTime::now())?;
                    debug!(
                        calls_in_progress = pipeline.tracker().in_progress(),
                        events = status.events_processed.load(Ordering::Relaxed),
                        "tick"
                    );
                }
                Work::SetTracker(cfg) => pipeline.set_tracker_config(cfg),
                Work::SetRules(rules) => {
                    if let Err(e) = store.borrow().set_rules(*rules) {
                        error!("new callback rules not applied: {e}");
                    } else {
                        info!("callback task rules applied");
                    }
                }
                Work::ReplaceStore(settings, done) => {
                    let path = settings.path.clone();
                    state_path = saved_calls_path(&path);
                    let settings = StoreSettings {
                        stop: store.borrow().stop_deadline(),
                        ..*settings
                    };
                    match Store::open(settings) {
                        Ok(new) => {
                            let old = store.replace(new);
                            let closed = old.close();
                            if let Err(e) = &closed {
                                error!("closing the previous database: {e}");
                            }
                            info!(path = %path.display(), "database settings applied");
                            let _ = done.send(Ok(()));
                        }
                        Err(e) => {
                            let _ = done.send(Err(e));
                        }
                    }
                }
                Work::Stop => break,
            }
            status
                .calls_in_progress
                .store(pipeline.tracker().in_progress(), Ordering::Relaxed);
        }
        Ok(())
    })();
    save_calls(&mut pipeline, &state_path);
    drop(pipeline);
    let store = Rc::try_unwrap(store)
        .map_err(|_| anyhow!("the database handle is still shared"))?
        .into_inner();
    let closed = store.close().context("committing the last calls");
    result?;
    closed
}

fn on_client_event(
    pipeline: &mut Pipeline<StoreSink>,
    ev: ClientEvent,
    status: &DaemonStatus,
) -> Result<(), StoreError> {
    match ev {
        ClientEvent::Connected { .. } => {
            status.connected.store(true, Ordering::Relaxed);
            status.logins.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        ClientEvent::Channels(items) => {
            let before = pipeline.tracker().in_progress();
            pipeline.on_channels(&items, LocalTime::now())?;
            info!(
                channels = items.len(),
                calls_before = before,
                calls_after = pipeline.tracker().in_progress(),
                "resynchronised with the PBX"
            );
            Ok(())
        }
        ClientEvent::Message { msg, received_at } => {
            pipeline.on_message(&msg, received_at)?;
            status.events_processed.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        ClientEvent::Disconnected { .. } => {
            status.connected.store(false, Ordering::Relaxed);
            pipeline.on_disconnected(LocalTime::now());
            Ok(())
        }
    }
}

/// Where the calls in progress are saved at shutdown: beside the database (the systemd
/// `StateDirectory`), named after it.
pub fn saved_calls_path(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(".calls-in-progress");
    db.with_file_name(name)
}

/// Feeds the calls saved by the previous run back in, then removes the file. A file that
/// cannot be read is set aside (`.unreadable`) with an error: the resync still adopts the
/// calls the PBX lists, so nothing stops the daemon.
fn restore_calls(pipeline: &mut Pipeline<StoreSink>, path: &Path) -> anyhow::Result<()> {
    let saved = match std::fs::read(path) {
        Ok(saved) => saved,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            error!(path = %path.display(), "reading the saved calls in progress: {e}");
            return Ok(());
        }
    };
    match pipeline.restore(&saved) {
        Ok(calls) => {
            info!(
                calls,
                restored = pipeline.tracker().in_progress(),
                path = %path.display(),
                "calls in progress restored from the last shutdown"
            );
            if let Err(e) = std::fs::remove_file(path) {
                warn!(path = %path.display(), "removing the restored calls file: {e}");
            }
        }
        Err(e) => {
            let aside = path.with_extension("calls-in-progress.unreadable");
            error!(path = %path.display(), aside = %aside.display(), "{e}; set aside");
            let _ = std::fs::rename(path, &aside);
        }
    }
    pipeline.flush()?;
    Ok(())
}

/// Writes the calls still in progress (written to a temporary file, synced, then renamed, so
/// a crash never leaves half a file).
fn save_calls(pipeline: &mut Pipeline<StoreSink>, path: &Path) {
    let (bytes, calls) = pipeline.save_in_progress();
    if calls == 0 {
        return;
    }
    let tmp = path.with_extension("calls-in-progress.tmp");
    let written = (|| -> std::io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    match written {
        Ok(()) => info!(
            calls,
            bytes = bytes.len(),
            path = %path.display(),
            "calls in progress saved for the next start"
        ),
        Err(e) => {
            error!(path = %path.display(), "saving the calls in progress: {e}; the next start adopts them from the PBX");
            let _ = std::fs::remove_file(&tmp);
        }
    }
}
