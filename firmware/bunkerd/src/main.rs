//! `bunkerd`: the Bunker daemon.
//!
//! Start-up order matters for the person watching a box boot: everything
//! that can be wrong with the configuration or the data directory is found
//! before anything listens, and reported as one line with a non-zero exit.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bunker_core::seed::Seed;
use bunker_node::Node;
use bunker_web::{Admin, AdminOptions, EngineSlot, PanelControl, RestoreState, StatusSource};
use bunkerd::config::{self, Config, Origin, Overrides};
use bunkerd::data_dir::{DataDir, SeedOrigin, SEED_FILE};
use bunkerd::disk_watch;
use bunkerd::front_panel::{self, FrontPanel, PanelRecovery};
use bunkerd::logging;
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser};
use tokio::sync::watch;

use crate::daemon_status::{DaemonStatus, SeedFile};
use crate::web_restore::WebRestore;

mod daemon_status;
mod engine;
mod web_restore;

/// How long a clean shutdown may take before the daemon stops waiting for
/// open connections (systemd's own stop timeout is longer).
/// Why the daemon stops when the owner confirmed a shutdown on the panel.
const PANEL_SHUTDOWN: &str = "shutdown confirmed on the panel";

const SHUTDOWN_GRACE: Duration = Duration::from_secs(4);

/// The Bunker daemon: keeps your files on your disks and, encrypted, on
/// other people's boxes.
///
/// Every configuration key can be set in the config file, by an environment
/// variable BUNKER_<KEY> (dotted key in capitals, `.` as `_`, e.g.
/// BUNKER_INTERVALS_AUDIT) or by --set KEY=VALUE. Flags win over the
/// environment, which wins over the file. `bunkerd --print-config` shows the
/// result.
#[derive(Debug, Parser)]
#[command(name = "bunkerd", version, about, long_about)]
struct Args {
    /// Config file (TOML). Without one, built-in defaults apply.
    #[arg(long, short = 'c', value_name = "FILE", env = "BUNKER_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory: seed, MANIFEST.db, Lightning state, local API socket.
    #[arg(long, value_name = "DIR", env = "BUNKER_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address of the web admin page.
    #[arg(long, value_name = "HOST:PORT", env = "BUNKER_WEB_ADDR")]
    web_addr: Option<String>,
    /// Sets any config key, e.g. --set intervals.audit=30s. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Prints the effective configuration as TOML and exits.
    #[arg(long)]
    print_config: bool,
    #[command(subcommand)]
    command: Option<DaemonCommand>,
}

#[derive(Debug, clap::Subcommand)]
enum DaemonCommand {
    /// Makes this box the lost box again from its 24 words (read from
    /// standard input, never from the command line): fetches the newest
    /// manifest from the peers that hold it, then exits; start bunkerd
    /// normally afterwards. Stop the daemon first.
    Restore {
        /// A recovery kit file (or its text) saved from the old box's admin
        /// page: where its manifest snapshots are.
        #[arg(long, value_name = "FILE")]
        kit: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let matches = Args::command().get_matches();
    let args = match Args::from_arg_matches(&matches) {
        Ok(args) => args,
        Err(e) => e.exit(),
    };
    let from_flag = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);

    let mut overrides = Overrides::default();
    if let (Some(dir), true) = (&args.data_dir, from_flag("data_dir")) {
        overrides.set("data_dir", toml_string(&dir.to_string_lossy()), Origin::Flag("--data-dir".into()));
    }
    if let (Some(addr), true) = (&args.web_addr, from_flag("web_addr")) {
        overrides.set("web.addr", toml_string(addr), Origin::Flag("--web-addr".into()));
    }
    for pair in &args.set {
        if let Err(e) = overrides.set_flag(pair) {
            eprintln!("bunkerd: {e}");
            return ExitCode::from(2);
        }
    }
    let cfg = match config::load(args.config.as_deref(), std::env::vars(), &overrides) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("bunkerd: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = match logging::parse_filter(&cfg.log) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("bunkerd: {e}");
            return ExitCode::from(2);
        }
    };
    if args.print_config {
        match toml::to_string(&cfg) {
            Ok(text) => {
                print!("{text}");
                return ExitCode::SUCCESS;
            }
            Err(e) => {
                eprintln!("bunkerd: cannot print config: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    logging::init(filter);

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bunkerd: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(DaemonCommand::Restore { kit }) = args.command {
        return match runtime.block_on(restore(cfg, kit)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bunkerd: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    match runtime.block_on(run(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bunkerd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A flag's text as a TOML string, so that the config loader never mistakes
/// a path or address for another TOML type.
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// What ends one engine's run: the daemon stopping, or a restore from the
/// admin page that needs the engine started again under other words.
enum Event {
    Stop(&'static str),
    Restore(web_restore::Request),
}

/// The daemon: listeners bound, the engine started, then the servers; the
/// engine may be swapped (restore from the admin page) while the servers
/// and the admin sessions stay; then a clean stop.
async fn run(cfg: Config) -> anyhow::Result<()> {
    let started = Instant::now();
    // Watch the signals before anything can answer: a SIGTERM sent the moment
    // /healthz answers must stop the daemon cleanly, not kill it outright.
    let mut signals = Signals::watch()?;
    let dir = DataDir::open(&cfg.data_dir)?;
    let (mut seed, seed_origin) = dir.load_or_create_seed()?;
    match seed_origin {
        SeedOrigin::Created => tracing::info!(
            data_dir = %dir.path().display(),
            "first start: created this box's 24-word seed; the words are its whole identity, write them down"
        ),
        SeedOrigin::Loaded => {
            tracing::info!(data_dir = %dir.path().display(), "loaded this box's seed")
        }
    }
    let mut restoring = web_restore::pending_at_start(dir.path());
    // The recovery kit given with the words, for the restore's first run.
    let mut kit: Option<Vec<u8>> = None;
    if restoring {
        tracing::info!("a restore from the 24 words was pending when the daemon stopped: it runs again");
    }

    let daemon_status = Arc::new(DaemonStatus::new(started, dir.path().to_owned()));
    let status: Arc<dyn StatusSource> = daemon_status.clone();
    let admin = Admin::open(AdminOptions::new(dir.path()), Arc::new(SeedFile(dir.path().join(SEED_FILE))))
        .context("cannot read the admin page's state")?;
    if admin.pairing_code().is_some() {
        // The code itself is a secret: it is on the OLED and `bunker pairing-code`, never in the log.
        tracing::info!("this box is not claimed yet: open the admin page and claim it with the pairing code on its screen (or from `bunker pairing-code`)");
    }
    let admin = Arc::new(admin);

    // The panel's shutdown (confirmed by a long press) stops the daemon like a signal.
    // Started before any listener or the engine: a box configured for a panel it
    // does not have stops with that one error, before it binds ports or dials peers.
    let (panel_shutdown_tx, mut panel_shutdown) = tokio::sync::mpsc::channel::<()>(1);
    let panel = FrontPanel::start(&cfg.panel, dir.path(), move || {
        let _ = panel_shutdown_tx.try_send(());
    })?
    .map(Arc::new);

    let web = tokio::net::TcpListener::bind(cfg.web.addr)
        .await
        .with_context(|| format!("cannot listen on web.addr {}", cfg.web.addr))?;
    let web_addr = web.local_addr().context("web listener has no address")?;

    let socket_path = dir.socket_path();
    // We hold the data dir's lock, so a socket file left here is stale.
    let _ = std::fs::remove_file(&socket_path);
    let local = tokio::net::UnixListener::bind(&socket_path)
        .with_context(|| format!("cannot create the local API socket {}", socket_path.display()))?;
    restrict_to_owner(&socket_path)?;

    // The routers reach the engine through the slot: a restore swaps it.
    let slot = Arc::new(EngineSlot::default());
    let (restore_tx, mut restore_rx) = tokio::sync::mpsc::channel::<web_restore::Request>(1);
    let restore = Arc::new(WebRestore::new(slot.clone(), restore_tx, dir.path()));
    let _ = daemon_status.restore.set(restore.clone());

    let mut node = Some(start_engine(&cfg, &dir, &seed, &daemon_status).await?);
    let disks = disk_watch::DiskWatch::start(dir.path(), &cfg.store_root(), cfg.reserves.disk_policy())?;
    let _ = daemon_status.disks.set(disks.clone());
    slot.set(node.as_ref().map(|n| engine_api(&cfg, &dir, n)));

    let mut local_router = bunker_web::local_api_router(admin.clone(), status.clone());
    let panel_feed = panel.as_ref().map(|panel| {
        local_router = local_router.clone().merge(bunker_web::panel_router(panel.clone() as Arc<dyn PanelControl>));
        let (panel, admin, slot, disks, restore) = (panel.clone(), admin.clone(), slot.clone(), disks.clone(), restore.clone());
        tokio::spawn(async move {
            loop {
                let figures = match slot.get() {
                    Some(api) => engine::panel_figures(&api.node).await,
                    None => None,
                };
                let snapshot =
                    front_panel::snapshot(admin.pairing_code(), web_addr, &disks.snapshot(), figures.as_ref(), restore.panel(), false);
                panel.show(snapshot);
                tokio::time::sleep(front_panel::REFRESH).await;
            }
        })
    });
    let local_router = bunker_web::with_engine_slot(local_router, slot.clone());
    let settings = match serde_json::to_value(&cfg) {
        Ok(value) => Some(value),
        Err(e) => {
            tracing::warn!(error = %e, "cannot show the settings on the admin page");
            None
        }
    };
    let admin_router = bunker_web::with_console(
        bunker_web::with_restore(
            bunker_web::with_engine_slot(bunker_web::admin_router(admin.clone(), status.clone()), slot.clone()),
            restore.clone(),
        ),
        panel.clone().map(|p| p as Arc<dyn PanelControl>),
        settings,
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    let web_server = tokio::spawn(serve_admin(web, admin_router, stop_rx.clone()));
    let local_server = tokio::spawn(serve(local, local_router, stop_rx.clone()));

    tracing::info!(url = %format!("http://{web_addr}"), socket = %socket_path.display(), version = env!("CARGO_PKG_VERSION"), "bunkerd is ready");
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    let watchdog = spawn_watchdog();

    // One turn per engine: a restore from the admin page ends the turn and
    // starts the next under the new words.
    let outcome: anyhow::Result<&'static str> = loop {
        let Some(current) = node.as_ref() else { break Err(anyhow::anyhow!("the engine is not running")) };
        let bootstrap = engine::keep_connected(current.net().clone(), &cfg, stop_rx.clone());
        let restore_task =
            restoring.then(|| tokio::spawn(web_restore::run_restore(current.clone(), restore.clone(), kit.take())));
        let event = tokio::select! {
            signal = signals.next() => Event::Stop(signal),
            // `None` (no panel, so no sender) disables this branch.
            Some(()) = panel_shutdown.recv() => Event::Stop(PANEL_SHUTDOWN),
            Some(words) = restore_rx.recv() => Event::Restore(words),
        };
        bootstrap.abort();
        if let Some(task) = restore_task {
            task.abort();
        }
        let request = match event {
            Event::Stop(reason) => break Ok(reason),
            Event::Restore(request) => request,
        };
        tracing::info!("restore from the 24 words asked on the admin page: stopping the engine to replace the seed");
        slot.set(None);
        if let Some(old) = node.take() {
            engine::stop(&old, SHUTDOWN_GRACE).await;
        }
        match web_restore::switch_seed(dir.path(), &cfg.store_root(), &request.seed) {
            Ok(()) => {
                seed = request.seed;
                kit = request.kit;
                restoring = true;
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "cannot replace the seed; the box keeps its first seed");
                restore.set(RestoreState::Failed { error: format!("cannot replace this box's seed: {e:#}") });
                restoring = false;
            }
        }
        match start_engine(&cfg, &dir, &seed, &daemon_status).await {
            Ok(started) => {
                slot.set(Some(engine_api(&cfg, &dir, &started)));
                node = Some(started);
            }
            Err(e) => {
                restore.set(RestoreState::Failed { error: format!("the engine did not start again: {e:#}") });
                break Err(e);
            }
        }
    };
    let reason = match &outcome {
        Ok(reason) => *reason,
        Err(_) => "the engine failed",
    };
    let panel_asked = reason == PANEL_SHUTDOWN;
    tracing::info!(reason, "stopping");
    if let Some(feed) = panel_feed {
        feed.abort();
    }
    if let Some(watchdog) = watchdog {
        watchdog.abort();
    }
    if let Some(panel) = &panel {
        panel.show(front_panel::snapshot(None, web_addr, &disks.snapshot(), None, PanelRecovery::default(), true));
    }
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    let _ = stop_tx.send(true);
    slot.set(None);
    // Requests in flight finish while the engine stops: both within the grace.
    let drain = tokio::time::timeout(SHUTDOWN_GRACE, async {
        let _ = web_server.await;
        let _ = local_server.await;
    });
    let stop_engine = async {
        if let Some(node) = &node {
            engine::stop(node, SHUTDOWN_GRACE).await;
        }
    };
    let (drained, ()) = tokio::join!(drain, stop_engine);
    if drained.is_err() {
        tracing::warn!("open connections did not close within {SHUTDOWN_GRACE:?}; stopping anyway");
    }
    let _ = std::fs::remove_file(&socket_path);
    outcome?;
    tracing::info!(uptime_secs = started.elapsed().as_secs(), "stopped cleanly");
    drop(panel);
    if panel_asked && !cfg.panel.shutdown_command.is_empty() {
        run_shutdown_command(&cfg.panel.shutdown_command);
    }
    Ok(())
}

/// Starts the engine under `seed`; the status shows its PeerId.
async fn start_engine(cfg: &Config, dir: &DataDir, seed: &Seed, status: &DaemonStatus) -> anyhow::Result<Node> {
    let keys = bunker_core::keys::Keys::from_seed(seed);
    let peer_id = keys.peer_id().to_string();
    tracing::info!(%peer_id, "identity");
    status.set_peer_id(peer_id);
    let node = engine::start(cfg, dir.path(), seed.clone(), &keys).await?;
    tracing::info!(store = %cfg.store_root().display(), "storage engine started");
    Ok(node)
}

/// What the engine API serves for `node`.
fn engine_api(cfg: &Config, dir: &DataDir, node: &Node) -> bunker_web::EngineApi {
    bunker_web::EngineApi { node: node.clone(), store_root: cfg.store_root(), scratch_dir: dir.path().to_owned() }
}

/// `bunkerd restore`: the words from stdin, the engine started exactly as
/// the daemon starts it, the manifest fetched back.
async fn restore(cfg: Config, kit: Option<PathBuf>) -> anyhow::Result<()> {
    let mut stdin = std::io::stdin().lock();
    let cfg = &cfg;
    let report = bunkerd::restore::run(&cfg.data_dir, &mut stdin, kit.as_deref(), |dir, seed| {
        let path = dir.path().to_owned();
        async move {
            let keys = bunker_core::keys::Keys::from_seed(&seed);
            engine::start(cfg, &path, seed, &keys).await
        }
    })
    .await?;
    println!("{}", bunkerd::restore::summary(&report));
    Ok(())
}

/// Serves `router` on `listener` until `stop` turns true.
async fn serve<L>(listener: L, router: bunker_web::Router, mut stop: watch::Receiver<bool>)
where
    L: bunker_web::Listener,
    L::Addr: std::fmt::Debug,
{
    let shutdown = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    if let Err(e) = bunker_web::serve(listener, router, shutdown).await {
        tracing::error!(error = %e, "HTTP server failed");
    }
}

/// Serves the admin page on `listener` until `stop` turns true; handlers
/// see client addresses (the login attempt limits count per address).
async fn serve_admin(listener: tokio::net::TcpListener, router: bunker_web::Router, mut stop: watch::Receiver<bool>) {
    let shutdown = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    if let Err(e) = bunker_web::serve_admin(listener, router, shutdown).await {
        tracing::error!(error = %e, "admin page server failed");
    }
}

/// Under systemd with `WatchdogSec=`, pings the watchdog at half its
/// interval from a task on the runtime: if the runtime wedges, the pings
/// stop and systemd restarts the daemon.
fn spawn_watchdog() -> Option<tokio::task::JoinHandle<()>> {
    // libsystemd's rule: WATCHDOG_USEC enables it, and WATCHDOG_PID, when
    // set, must be this process (sd-notify's helper insists on the PID).
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok().filter(|u| *u > 0)?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.parse::<u32>().ok() != Some(std::process::id()) {
            return None;
        }
    }
    let every = Duration::from_micros(usec / 2);
    tracing::info!(interval = ?every, "systemd watchdog enabled");
    Some(tokio::spawn(async move {
        loop {
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
            tokio::time::sleep(every).await;
        }
    }))
}

/// Runs `panel.shutdown_command` (e.g. `systemctl poweroff`) after a clean
/// stop; a failure is logged, the daemon has stopped either way.
fn run_shutdown_command(command: &[String]) {
    let Some((program, args)) = command.split_first() else { return };
    tracing::info!(command = ?command, "running panel.shutdown_command");
    match std::process::Command::new(program).args(args).status() {
        Ok(status) if status.success() => {}
        Ok(status) => tracing::error!(command = ?command, %status, "panel.shutdown_command failed"),
        Err(e) => tracing::error!(command = ?command, error = %e, "cannot run panel.shutdown_command"),
    }
}

fn restrict_to_owner(path: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot restrict {} to its owner", path.display()))
}

/// SIGTERM (systemd, `kill`) and SIGINT (Ctrl-C), watched from the start of `run`.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn watch() -> anyhow::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            term: signal(SignalKind::terminate()).context("cannot watch SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot watch SIGINT")?,
        })
    }

    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}
