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
use bunker_web::{Admin, AdminOptions, NodeStatus, PanelControl, SeedWords, StatusSource};
use bunkerd::config::{self, Config, Origin, Overrides};
use bunkerd::front_panel::{self, FrontPanel};
use bunkerd::data_dir::{DataDir, SeedOrigin, SEED_FILE};
use bunkerd::disk_watch;
use bunkerd::logging;
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser};
use tokio::sync::watch;

mod engine;

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

/// What the daemon knows about itself, for the admin page and the CLI.
struct DaemonStatus {
    started: Instant,
    peer_id: Option<String>,
    data_dir: PathBuf,
    /// Set once the disk watcher runs (after the engine started).
    disks: std::sync::OnceLock<Arc<disk_watch::DiskWatch>>,
}

impl StatusSource for DaemonStatus {
    fn status(&self) -> NodeStatus {
        NodeStatus {
            version: env!("CARGO_PKG_VERSION").to_string(),
            state: "running".to_string(),
            uptime_secs: self.started.elapsed().as_secs(),
            peer_id: self.peer_id.clone(),
            data_dir_space: match bunker_web::disk_space(&self.data_dir) {
                Ok(space) => Some(space),
                Err(e) => {
                    tracing::warn!(data_dir = %self.data_dir.display(), error = %e, "cannot read the data dir's free space");
                    None
                }
            },
            disks: self.disks.get().map(|d| d.status_disks()).unwrap_or_default(),
            alerts: self.disks.get().map(|d| d.status_alerts()).unwrap_or_default(),
        }
    }
}

/// The seed's words for first-run setup, read from the seed file at the
/// moment the page shows or checks them, so the web server holds no copy.
struct SeedFile(PathBuf);

impl SeedWords for SeedFile {
    fn words(&self) -> Result<Vec<String>, String> {
        let text = std::fs::read_to_string(&self.0).map_err(|e| format!("{}: {e}", self.0.display()))?;
        let seed = bunker_core::seed::Seed::from_phrase(&text).map_err(|e| format!("{}: {e}", self.0.display()))?;
        Ok(seed.words().map(str::to_string).collect())
    }
}

async fn run(cfg: Config) -> anyhow::Result<()> {
    let started = Instant::now();
    // Watch the signals before anything can answer: a SIGTERM sent the moment
    // /healthz answers must stop the daemon cleanly, not kill it outright.
    let mut signals = Signals::watch()?;
    let dir = DataDir::open(&cfg.data_dir)?;
    let (seed, seed_origin) = dir.load_or_create_seed()?;
    let keys = bunker_core::keys::Keys::from_seed(&seed);
    let peer_id = keys.peer_id().to_string();
    match seed_origin {
        SeedOrigin::Created => tracing::info!(
            data_dir = %dir.path().display(),
            "first start: created this box's 24-word seed; the words are its whole identity, write them down"
        ),
        SeedOrigin::Loaded => {
            tracing::info!(data_dir = %dir.path().display(), "loaded this box's seed")
        }
    }
    tracing::info!(%peer_id, "identity");

    let daemon_status = Arc::new(DaemonStatus {
        started,
        peer_id: Some(peer_id),
        data_dir: dir.path().to_owned(),
        disks: std::sync::OnceLock::new(),
    });
    let status: Arc<dyn StatusSource> = daemon_status.clone();
    let admin = Admin::open(AdminOptions::new(dir.path()), Arc::new(SeedFile(dir.path().join(SEED_FILE))))
        .context("cannot read the admin page's state")?;
    if admin.pairing_code().is_some() {
        // The code itself is a secret: it is on the OLED and `bunker pairing-code`, never in the log.
        tracing::info!("this box is not claimed yet: open the admin page and claim it with the pairing code on its screen (or from `bunker pairing-code`)");
    }
    let admin = Arc::new(admin);

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

    let node = engine::start(&cfg, dir.path(), seed, &keys).await?;
    tracing::info!(store = %cfg.store_root().display(), "storage engine started");
    let disks = disk_watch::DiskWatch::start(dir.path(), &cfg.store_root())?;
    let _ = daemon_status.disks.set(disks.clone());
    let engine_api = bunker_web::EngineApi {
        node: node.clone(),
        store_root: cfg.store_root(),
        scratch_dir: dir.path().to_owned(),
    };

    // The panel's shutdown (confirmed by a long press) stops the daemon like a signal.
    let (panel_shutdown_tx, mut panel_shutdown) = tokio::sync::mpsc::channel::<()>(1);
    let panel = FrontPanel::start(&cfg.panel, dir.path(), move || {
        let _ = panel_shutdown_tx.try_send(());
    })?
    .map(Arc::new);
    let mut local_router = bunker_web::local_api_router(admin.clone(), status.clone());
    let panel_feed = panel.as_ref().map(|panel| {
        local_router = local_router.clone().merge(bunker_web::panel_router(panel.clone() as Arc<dyn PanelControl>));
        let (panel, admin, node, disks) = (panel.clone(), admin.clone(), node.clone(), disks.clone());
        tokio::spawn(async move {
            loop {
                let figures = engine::panel_figures(&node).await;
                panel.show(front_panel::snapshot(admin.pairing_code(), web_addr, &disks.snapshot(), figures.as_ref(), false));
                tokio::time::sleep(front_panel::REFRESH).await;
            }
        })
    });
    let local_router = bunker_web::with_engine(local_router, engine_api.clone());
    let settings = match serde_json::to_value(&cfg) {
        Ok(value) => Some(value),
        Err(e) => {
            tracing::warn!(error = %e, "cannot show the settings on the admin page");
            None
        }
    };
    let admin_router = bunker_web::with_console(
        bunker_web::with_engine(bunker_web::admin_router(admin.clone(), status.clone()), engine_api),
        panel.clone().map(|p| p as Arc<dyn PanelControl>),
        settings,
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    let web_server = tokio::spawn(serve_admin(web, admin_router, stop_rx.clone()));
    let local_server = tokio::spawn(serve(local, local_router, stop_rx.clone()));
    let bootstrap = engine::keep_connected(node.net().clone(), &cfg, stop_rx.clone());

    tracing::info!(url = %format!("http://{web_addr}"), socket = %socket_path.display(), version = env!("CARGO_PKG_VERSION"), "bunkerd is ready");
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    let watchdog = spawn_watchdog();

    let reason = tokio::select! {
        signal = signals.next() => signal,
        // `None` (no panel, so no sender) disables this branch.
        Some(()) = panel_shutdown.recv() => PANEL_SHUTDOWN,
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
        panel.show(front_panel::snapshot(None, web_addr, &disks.snapshot(), None, true));
    }
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    let _ = stop_tx.send(true);
    bootstrap.abort();
    // Requests in flight finish while the engine stops: both within the grace.
    let drain = tokio::time::timeout(SHUTDOWN_GRACE, async {
        let _ = web_server.await;
        let _ = local_server.await;
    });
    let (drained, ()) = tokio::join!(drain, engine::stop(&node, SHUTDOWN_GRACE));
    if drained.is_err() {
        tracing::warn!("open connections did not close within {SHUTDOWN_GRACE:?}; stopping anyway");
    }
    let _ = std::fs::remove_file(&socket_path);
    tracing::info!(uptime_secs = started.elapsed().as_secs(), "stopped cleanly");
    drop(panel);
    if panel_asked && !cfg.panel.shutdown_command.is_empty() {
        run_shutdown_command(&cfg.panel.shutdown_command);
    }
    Ok(())
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
