//! `bunker`: the command line for a running Bunker box.
//!
//! It talks to bunkerd over the local API socket in the box's data
//! directory, so it works for the daemon's own user (or root) only. Every
//! command prints a human table by default and the daemon's JSON with
//! `--json`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use bunker_node::views;
use bunker_web::NodeStatus;
use bunkerd::data_dir::SOCKET_FILE;
use bunkerd::local_api::{self, encode};
use clap::{Parser, Subcommand};
use hyper::Method;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

/// Longest wait for wallet calls that reach the network (channels, payments).
const WALLET_TIMEOUT: Duration = Duration::from_secs(120);

/// Command line for a running Bunker box.
#[derive(Debug, Parser)]
#[command(name = "bunker", version, about)]
struct Cli {
    /// The box's data directory (where bunkerd keeps its socket).
    #[arg(long, value_name = "DIR", env = "BUNKER_DATA_DIR", default_value = "/var/lib/bunker", global = true)]
    data_dir: PathBuf,
    /// The local API socket, if not in the data directory.
    #[arg(long, value_name = "PATH", env = "BUNKER_SOCKET", global = true)]
    socket: Option<PathBuf>,
    /// Prints the daemon's raw JSON answer instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Shows whether the box is running, its identity and the engine at a glance.
    Status,
    /// Shows the pairing code that claims this box on its admin page (the
    /// same code as on the box's screen), while nobody has claimed it.
    PairingCode,
    /// The front panel: see its screen, press its buttons (simulator or
    /// hardware; the screen can be read back from the simulator only).
    #[command(subcommand)]
    Panel(PanelCommand),
    /// Stores a local file in the box's tree (sealed, copies on peers).
    Put {
        /// The local file.
        file: PathBuf,
        /// Where it goes in the box, e.g. /photos/cat.jpg.
        path: String,
        /// Copies on distinct peers.
        #[arg(long, default_value_t = 2)]
        copies: u8,
        /// Keep no copy on the box itself (then at least 2 copies on peers).
        #[arg(long)]
        no_local: bool,
    },
    /// Reads a file back from the box (verified); `-` writes to stdout.
    Get {
        /// The file in the box, e.g. /photos/cat.jpg or /MANIFEST.db.
        path: String,
        /// Where to write it; default: its name in the current directory.
        out: Option<String>,
    },
    /// Lists a folder of the box's tree.
    Ls {
        /// The folder.
        #[arg(default_value = "/")]
        folder: String,
    },
    /// Deletes a file: its local copy and every copy on peers.
    Rm {
        /// The file in the box.
        path: String,
    },
    /// Peers: connected and known, and how the world sees this box.
    Peers,
    /// Storage contracts, both ways.
    Contracts,
    /// The latest audits of our copies on peers.
    Audits {
        /// How many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// The latest Lightning payments.
    Payments {
        /// How many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// The Lightning wallet: balances and channels; subcommands change it.
    Wallet {
        #[command(subcommand)]
        action: Option<WalletCommand>,
    },
    /// The manifest's backup: which peers hold a snapshot of MANIFEST.db and
    /// how current it is; subcommands replicate or check now.
    Backup {
        #[command(subcommand)]
        action: Option<BackupCommand>,
    },
}

#[derive(Debug, Subcommand)]
enum BackupCommand {
    /// Sends a new snapshot of the manifest to its holders now.
    Now,
    /// Fetches the snapshot back from every holder and verifies it now.
    Check,
}

#[derive(Debug, Subcommand)]
enum WalletCommand {
    /// A new on-chain address to fund the wallet.
    Address,
    /// Lists the channels.
    Channels,
    /// Opens a channel.
    Open {
        /// The peer's node id (66 hex digits).
        node_id: String,
        /// Where the peer listens, host:port.
        address: String,
        /// Channel size, sat.
        sat: u64,
        /// Part of it given to the peer, msat.
        #[arg(long, default_value_t = 0)]
        push_msat: u64,
    },
    /// Closes a channel cooperatively.
    Close {
        /// The channel's id (from `bunker wallet channels`).
        user_channel_id: String,
        /// The peer's node id.
        node_id: String,
    },
    /// An invoice to be paid.
    Invoice {
        /// Amount, msat.
        msat: u64,
        /// What it is for.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Pays an invoice.
    Pay {
        /// The BOLT11 invoice.
        invoice: String,
    },
}

#[derive(Debug, Subcommand)]
enum PanelCommand {
    /// Saves the panel's screen as a PNG (128x64 scaled x4).
    Screenshot {
        /// Where to write the PNG.
        file: PathBuf,
    },
    /// Presses a button: short by default (next screen), --long to select.
    Press {
        /// 0 = next/select, 1 = back.
        #[arg(long, default_value_t = 0)]
        button: usize,
        /// A long press (2 s): selects, e.g. confirms a shutdown.
        #[arg(long)]
        long: bool,
    },
}

/// Answer of the local API's `/api/pairing-code`.
#[derive(Debug, serde::Deserialize)]
struct PairingCode {
    pairing_code: String,
}

/// `bunker audits | head`: a reader that goes away ends the CLI quietly, as
/// with any Unix tool, instead of a panic message on the next print. SIGPIPE
/// itself stays ignored (Rust's default): with its default action, a daemon
/// closing the socket under an upload killed the CLI without a word.
fn quiet_when_stdout_closes() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.contains("failed printing to stdout") && msg.contains("Broken pipe") {
            // What a shell reports for a reader that went away (128 + SIGPIPE).
            std::process::exit(141);
        }
        default(info);
    }));
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    quiet_when_stdout_closes();
    let cli = Cli::parse();
    let socket = cli.socket.clone().unwrap_or_else(|| cli.data_dir.join(SOCKET_FILE));
    match run(&cli, &socket).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bunker: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: &Cli, socket: &Path) -> anyhow::Result<()> {
    let json = cli.json;
    match &cli.command {
        Command::Status => status(socket, json).await,
        Command::PairingCode => {
            let answer = local_api::get_json::<PairingCode>(socket, "/api/pairing-code").await?;
            println!("{}", answer.pairing_code);
            Ok(())
        }
        Command::Panel(PanelCommand::Screenshot { file }) => {
            let png = local_api::get_bytes(socket, "/api/panel.png").await?;
            std::fs::write(file, &png).with_context(|| format!("cannot write {}", file.display()))?;
            println!("saved the panel's screen to {}", file.display());
            Ok(())
        }
        Command::Panel(PanelCommand::Press { button, long }) => {
            let hold_ms = if *long { 2000 } else { 100 };
            let body = json!({ "button": button, "hold_ms": hold_ms });
            Ok(local_api::post_json(socket, "/api/panel/press", &body).await?)
        }
        Command::Put { file, path, copies, no_local } => put(socket, file, path, *copies, !no_local, json).await,
        Command::Get { path, out } => get(socket, path, out.as_deref()).await,
        Command::Ls { folder } => {
            let answer = call(socket, Method::GET, &format!("/api/files?folder={}", encode(folder)), None).await?;
            show(json, answer, |v: views::Listing| print_listing(&v))
        }
        Command::Rm { path } => {
            call(socket, Method::DELETE, &format!("/api/files/content?path={}", encode(path)), None).await?;
            if !json {
                println!("removed {path}");
            }
            Ok(())
        }
        Command::Peers => {
            let answer = call(socket, Method::GET, "/api/peers", None).await?;
            show(json, answer, |v: views::PeersView| print_peers(&v))
        }
        Command::Contracts => {
            let answer = call(socket, Method::GET, "/api/contracts", None).await?;
            show(json, answer, |v: Vec<views::ContractView>| print_contracts(&v))
        }
        Command::Audits { limit } => {
            let answer = call(socket, Method::GET, &format!("/api/audits?limit={limit}"), None).await?;
            show(json, answer, |v: Vec<views::AuditView>| print_audits(&v))
        }
        Command::Payments { limit } => {
            let answer = call(socket, Method::GET, &format!("/api/payments?limit={limit}"), None).await?;
            show(json, answer, |v: Vec<views::PaymentView>| print_payments(&v))
        }
        Command::Wallet { action } => wallet(socket, action.as_ref(), json).await,
        Command::Backup { action } => backup(socket, action.as_ref(), json).await,
    }
}

/// `bunker backup [now|check]`.
async fn backup(socket: &Path, action: Option<&BackupCommand>, json: bool) -> anyhow::Result<()> {
    let (path, field) = match action {
        None => {
            let answer = call(socket, Method::GET, "/api/backup", None).await?;
            return show(json, answer, |v: views::ReplicationView| print_replication(&v));
        }
        Some(BackupCommand::Now) => ("/api/backup/replicate", "round"),
        Some(BackupCommand::Check) => ("/api/backup/audit", "audits"),
    };
    // The daemon waits up to 25 s for the round; allow for that.
    let answer = local_api::call_json(socket, Method::POST, path, None, Duration::from_secs(40)).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(());
    }
    match field {
        "round" => {
            let round = &answer["round"];
            let stored = round["stored"].as_array().map_or(0, Vec::len);
            println!("snapshot {} ({} bytes) stored on {stored} peer(s)", round["version"], round["bytes"]);
            for f in round["failed"].as_array().into_iter().flatten() {
                println!("  not stored on {}: {}", short(f[0].as_str().unwrap_or("?")), f[1].as_str().unwrap_or(""));
            }
        }
        _ => {
            let audits = answer["audits"].as_array().cloned().unwrap_or_default();
            if audits.is_empty() {
                println!("no holder to check");
            }
            for a in audits {
                let detail = a["detail"].as_str().filter(|d| !d.is_empty()).map(|d| format!(": {d}")).unwrap_or_default();
                println!("{} {}{detail}", short(a["peer"].as_str().unwrap_or("?")), a["outcome"].as_str().unwrap_or("?"));
            }
        }
    }
    let status: views::ReplicationView =
        serde_json::from_value(answer["status"].clone()).context("the daemon's answer is not what this bunker expects")?;
    println!();
    print_replication(&status);
    Ok(())
}

fn print_replication(r: &views::ReplicationView) {
    println!("{}", r.summary);
    match r.latest_version {
        0 => println!("newest snapshot: none made yet"),
        v => println!("newest snapshot: version {v}"),
    }
    println!("holders:         {} of {} wanted have it ({} in all)", r.current_holders, r.target_holders, r.holders.len());
    println!("last replicated: {}", r.last_replicated_at.map_or("never".to_string(), time));
    if let (Some(at), Some(words)) = (r.last_round_at, r.last_round.as_deref()) {
        println!("last round:      {} ({words})", time(at));
    }
    println!("next round:      {}", r.next_due_at.map_or("not scheduled yet".to_string(), time));
    if r.holders.is_empty() {
        return;
    }
    let rows = r
        .holders
        .iter()
        .map(|h| {
            let audit = match &h.last_audit {
                Some(a) if a.detail.is_empty() => format!("{} {}", a.outcome, time(a.at)),
                Some(a) => format!("{} {} ({})", a.outcome, time(a.at), a.detail),
                None => "not since start".to_string(),
            };
            vec![h.peer.clone(), h.confirmed_version.to_string(), time(h.confirmed_at), audit]
        })
        .collect();
    table(&["HOLDER", "VERSION", "CONFIRMED", "LAST AUDIT"], rows);
}

/// One JSON call with the default timeout.
async fn call(socket: &Path, method: Method, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
    Ok(local_api::call_json(socket, method, path, body, local_api::TIMEOUT).await?)
}

/// Prints `answer` as JSON, or decoded as `T` through `table`.
fn show<T: serde::de::DeserializeOwned>(json: bool, answer: Value, table: impl FnOnce(T)) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        table(serde_json::from_value(answer).context("the daemon's answer is not what this bunker expects")?);
    }
    Ok(())
}

async fn status(socket: &Path, json: bool) -> anyhow::Result<()> {
    let daemon = local_api::get_json::<NodeStatus>(socket, "/api/status").await?;
    // The engine's figures are extra: a daemon whose engine cannot answer
    // still reports that it runs.
    let engine = call(socket, Method::GET, "/api/node", None).await;
    if json {
        let mut out = serde_json::to_value(&daemon)?;
        if let Value::Object(map) = &mut out {
            match engine {
                Ok(e) => map.insert("engine".into(), e),
                Err(e) => map.insert("engine_error".into(), Value::String(e.to_string())),
            };
        }
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!("state:    {}", daemon.state);
    println!("version:  {}", daemon.version);
    println!("uptime:   {}s", daemon.uptime_secs);
    println!("peer id:  {}", daemon.peer_id.as_deref().unwrap_or("not known yet"));
    match daemon.data_dir_space {
        Some(space) => println!(
            "storage:  {} free of {} (data directory's file system)",
            human_bytes(space.free_bytes),
            human_bytes(space.total_bytes)
        ),
        None => println!("storage:  unknown (the daemon could not read it)"),
    }
    match engine.and_then(|v| Ok(serde_json::from_value::<views::NodeStatus>(v)?)) {
        Ok(e) => {
            println!("files:    {} ({}), {} under-replicated", e.files, human_bytes(e.stored_bytes), e.under_replicated);
            println!("hosting:  {} for peers, {} more on offer", human_bytes(e.hosted_bytes), human_bytes(e.offerable_bytes));
            println!("peers:    {} connected", e.connected_peers);
            println!("audits:   {} of {} passed in 24 h", e.audits_passed_24h, e.audits_total_24h);
            println!("payments: earned {} msat, spent {} msat", e.earned_msat, e.spent_msat);
            println!("lightning: {}", e.lightning);
            for w in &e.workers {
                let err = w.last_error.as_deref().map(|e| format!(" (last error: {e})")).unwrap_or_default();
                println!("worker {}: {}{err}", w.name, w.state);
            }
        }
        Err(e) => println!("engine:   unavailable ({e})"),
    }
    Ok(())
}

fn progress_bar(len: u64, verb: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(Some(len), indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(verb.to_string());
    bar
}

async fn put(socket: &Path, local: &Path, path: &str, copies: u8, keep_local: bool, json: bool) -> anyhow::Result<()> {
    let file = tokio::fs::File::open(local).await.with_context(|| format!("cannot open {}", local.display()))?;
    let meta = file.metadata().await.with_context(|| format!("cannot read {}", local.display()))?;
    if !meta.is_file() {
        bail!("{} is not a file", local.display());
    }
    let len = meta.len();
    let bar = progress_bar(len, "sending");
    let b = bar.clone();
    let url = format!("/api/files/content?path={}&copies={copies}&keep_local={keep_local}", encode(path));
    let answer = local_api::upload(socket, &url, file, len, move |sent| {
        b.set_position(sent);
        if sent >= len {
            b.set_message("placing copies");
        }
    })
    .await;
    bar.finish_and_clear();
    let answer = answer?;
    show(json, answer, |f: views::FileView| {
        println!(
            "stored {} ({}): {} cop{} on peers{}",
            f.path,
            human_bytes(f.size),
            f.active_replicas,
            if f.active_replicas == 1 { "y" } else { "ies" },
            if f.has_local { ", one on this box" } else { "" }
        )
    })
}

async fn get(socket: &Path, path: &str, out: Option<&str>) -> anyhow::Result<()> {
    let mut download = local_api::download(socket, &format!("/api/files/content?path={}", encode(path))).await?;
    let to_stdout = out == Some("-");
    let dest = match out {
        Some("-") => None,
        Some(p) => Some(PathBuf::from(p)),
        None => {
            let name = path.rsplit('/').next().filter(|n| !n.is_empty() && *n != "." && *n != "..");
            Some(PathBuf::from(name.context("the box path names no file")?))
        }
    };
    let bar = if to_stdout { indicatif::ProgressBar::hidden() } else { progress_bar(download.len.unwrap_or(0), "receiving") };
    // Into a side file first: an interrupted download never leaves a
    // truncated file under the real name.
    let part = dest.as_ref().map(|d| {
        let mut name = d.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        name.push(".part");
        d.with_file_name(name)
    });
    let mut writer: Box<dyn tokio::io::AsyncWrite + Unpin> = match &part {
        Some(p) => Box::new(tokio::fs::File::create(p).await.with_context(|| format!("cannot create {}", p.display()))?),
        None => Box::new(tokio::io::stdout()),
    };
    let mut received = 0u64;
    let result: anyhow::Result<()> = async {
        while let Some(chunk) = download.chunk().await? {
            writer.write_all(&chunk).await.context("cannot write what was received")?;
            received += chunk.len() as u64;
            bar.set_position(received);
        }
        writer.flush().await?;
        if let Some(len) = download.len {
            if received != len {
                bail!("the daemon announced {len} bytes and sent {received}");
            }
        }
        Ok(())
    }
    .await;
    bar.finish_and_clear();
    drop(writer);
    match (result, part, dest) {
        (Err(e), Some(part), _) => {
            let _ = std::fs::remove_file(&part);
            Err(e)
        }
        (Err(e), None, _) => Err(e),
        (Ok(()), Some(part), Some(dest)) => {
            std::fs::rename(&part, &dest).with_context(|| format!("cannot move {} to {}", part.display(), dest.display()))?;
            eprintln!("wrote {} ({})", dest.display(), human_bytes(received));
            Ok(())
        }
        (Ok(()), _, _) => Ok(()),
    }
}

async fn wallet(socket: &Path, action: Option<&WalletCommand>, json: bool) -> anyhow::Result<()> {
    let long = |method, path: String, body: Option<Value>| async move {
        local_api::call_json(socket, method, &path, body.as_ref(), WALLET_TIMEOUT).await
    };
    match action {
        None => {
            let answer = call(socket, Method::GET, "/api/wallet", None).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&answer)?);
                return Ok(());
            }
            println!("node id:   {}", answer["node_id"].as_str().unwrap_or("?"));
            let b = &answer["balances"];
            println!("on-chain:  {} sat ({} spendable)", b["onchain_sat"], b["onchain_spendable_sat"]);
            println!("lightning: {} msat ({} sendable now)", b["lightning_msat"], b["sendable_msat"]);
            print_channels(&answer["channels"]);
            Ok(())
        }
        Some(WalletCommand::Channels) => {
            let answer = call(socket, Method::GET, "/api/wallet", None).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&answer["channels"])?);
            } else {
                print_channels(&answer["channels"]);
            }
            Ok(())
        }
        Some(WalletCommand::Address) => {
            let answer = long(Method::POST, "/api/wallet/address".into(), None).await?;
            print_field(json, &answer, "address")
        }
        Some(WalletCommand::Open { node_id, address, sat, push_msat }) => {
            let body = json!({ "node_id": node_id, "address": address, "sat": sat, "push_msat": push_msat });
            let answer = long(Method::POST, "/api/wallet/channels".into(), Some(body)).await?;
            print_field(json, &answer, "user_channel_id")
        }
        Some(WalletCommand::Close { user_channel_id, node_id }) => {
            let path = format!("/api/wallet/channels/{}?node_id={}", encode(user_channel_id), encode(node_id));
            long(Method::DELETE, path, None).await?;
            if !json {
                println!("closing channel {user_channel_id}");
            }
            Ok(())
        }
        Some(WalletCommand::Invoice { msat, description }) => {
            let body = json!({ "msat": msat, "description": description });
            let answer = long(Method::POST, "/api/wallet/invoice".into(), Some(body)).await?;
            print_field(json, &answer, "invoice")
        }
        Some(WalletCommand::Pay { invoice }) => {
            let answer = long(Method::POST, "/api/wallet/pay".into(), Some(json!({ "invoice": invoice }))).await?;
            print_field(json, &answer, "payment_id")
        }
    }
}

fn print_field(json: bool, answer: &Value, field: &str) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(answer)?);
    } else {
        println!("{}", answer[field].as_str().context("the daemon's answer lacks the value")?);
    }
    Ok(())
}

// ---------------------------------------------------------------- tables

/// Prints rows under a header, each column as wide as its widest cell.
fn table(header: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row);
    }
}

fn print_listing(l: &views::Listing) {
    let mut rows: Vec<Vec<String>> =
        l.folders.iter().map(|f| vec![format!("{f}/"), String::new(), String::new(), String::new()]).collect();
    for f in &l.files {
        let name = f.path.rsplit('/').next().unwrap_or(&f.path).to_string();
        let copies = if f.is_manifest {
            "the box's database".to_string()
        } else {
            format!(
                "{}/{} on peers{}",
                f.active_replicas,
                f.policy.copies,
                if f.has_local { " + local" } else { "" }
            )
        };
        rows.push(vec![name, human_bytes(f.size), copies, time(f.modified_at)]);
    }
    println!("{}", l.folder);
    table(&["NAME", "SIZE", "COPIES", "MODIFIED"], rows);
}

fn print_peers(p: &views::PeersView) {
    println!("this box: {} (NAT: {})", p.local_peer_id, p.nat);
    for a in &p.listen_addrs {
        println!("listening on {a}");
    }
    let rows = p
        .peers
        .iter()
        .map(|peer| {
            vec![
                peer.peer.clone(),
                if peer.connected { "connected".into() } else { "known".into() },
                format!("{:.1}/{:.1}", peer.audit_successes, peer.audit_failures),
                peer.addresses.first().cloned().unwrap_or_default(),
            ]
        })
        .collect();
    table(&["PEER", "STATE", "AUDITS OK/FAILED", "ADDRESS"], rows);
}

fn print_contracts(cs: &[views::ContractView]) {
    let rows = cs
        .iter()
        .map(|c| {
            vec![
                short(&c.id),
                c.direction.clone(),
                short(&c.peer),
                human_bytes(c.bytes),
                if c.is_swap { "swap".into() } else { format!("{} msat/GiB-day", c.price_msat_per_gib_day) },
                c.state.clone(),
                format!("{}/{}", c.paid_msat, c.owed_msat),
            ]
        })
        .collect();
    table(&["ID", "DIRECTION", "PEER", "BYTES", "PRICE", "STATE", "PAID/OWED MSAT"], rows);
}

fn print_audits(audits: &[views::AuditView]) {
    let rows = audits
        .iter()
        .map(|a| {
            vec![
                time(a.at),
                a.path.clone(),
                a.replica.to_string(),
                short(&a.host),
                a.kind.clone(),
                a.outcome.clone(),
                format!("{} ms", a.latency_ms),
                a.detail.clone(),
            ]
        })
        .collect();
    table(&["WHEN", "FILE", "REPLICA", "HOST", "KIND", "OUTCOME", "LATENCY", "DETAIL"], rows);
}

fn print_payments(ps: &[views::PaymentView]) {
    let rows = ps
        .iter()
        .map(|p| {
            vec![
                time(p.created_at),
                p.direction.clone(),
                p.amount_msat.to_string(),
                p.fee_msat.map(|f| f.to_string()).unwrap_or_default(),
                p.contract.as_deref().map(short).unwrap_or_default(),
                p.state.clone(),
            ]
        })
        .collect();
    table(&["WHEN", "DIRECTION", "MSAT", "FEE MSAT", "CONTRACT", "STATE"], rows);
}

fn print_channels(channels: &Value) {
    let rows = channels
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    vec![
                        c["user_channel_id"].as_str().unwrap_or("?").to_string(),
                        short(c["counterparty"].as_str().unwrap_or("?")),
                        c["value_sat"].to_string(),
                        c["outbound_msat"].to_string(),
                        c["inbound_msat"].to_string(),
                        if c["usable"] == true { "usable" } else if c["ready"] == true { "ready" } else { "pending" }.into(),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    table(&["CHANNEL", "PEER", "SAT", "OUT MSAT", "IN MSAT", "STATE"], rows);
}

/// The first 12 characters of a long id, enough to tell ids apart on screen.
fn short(id: &str) -> String {
    if id.chars().count() > 16 {
        format!("{}…", id.chars().take(12).collect::<String>())
    } else {
        id.to_string()
    }
}

/// Unix seconds as `YYYY-MM-DD HH:MM` UTC.
fn time(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}", rem / 3600, rem % 3600 / 60)
}

/// Bytes in decimal units, as disk makers and `df -H` count them.
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_dates() {
        assert_eq!(time(0), "1970-01-01 00:00");
        assert_eq!(time(1_700_000_000), "2023-11-14 22:13");
        assert_eq!(time(951_782_400), "2000-02-29 00:00");
    }

    #[test]
    fn long_ids_are_shortened() {
        assert_eq!(short("abc"), "abc");
        assert_eq!(short("12D3KooWAbCdEfGhIjKlMnOp"), "12D3KooWAbCd…");
    }
}
