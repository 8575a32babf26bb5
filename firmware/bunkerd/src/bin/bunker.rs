//! `bunker`: the command line for a running Bunker box.
//!
//! It talks to bunkerd over the local API socket in the box's data
//! directory, so it works for the daemon's own user (or root) only.

use std::path::PathBuf;
use std::process::ExitCode;

use bunker_web::NodeStatus;
use bunkerd::data_dir::SOCKET_FILE;
use bunkerd::local_api;
use clap::{Parser, Subcommand};

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
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Shows whether the box is running, and its identity.
    Status {
        /// Prints the raw JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Shows the pairing code that claims this box on its admin page (the
    /// same code as on the box's screen), while nobody has claimed it.
    PairingCode,
    /// The front panel: see its screen, press its buttons (simulator or
    /// hardware; the screen can be read back from the simulator only).
    #[command(subcommand)]
    Panel(PanelCommand),
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

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let socket = cli.socket.unwrap_or_else(|| cli.data_dir.join(SOCKET_FILE));
    match cli.command {
        Command::Status { json } => match local_api::get_json::<NodeStatus>(&socket, "/api/status").await {
            Ok(st) if json => match serde_json::to_string_pretty(&st) {
                Ok(text) => {
                    println!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            },
            Ok(st) => {
                println!("state:    {}", st.state);
                println!("version:  {}", st.version);
                println!("uptime:   {}s", st.uptime_secs);
                println!("peer id:  {}", st.peer_id.as_deref().unwrap_or("not known yet"));
                match st.data_dir_space {
                    Some(space) => println!(
                        "storage:  {} free of {} (data directory's file system)",
                        human_bytes(space.free_bytes),
                        human_bytes(space.total_bytes)
                    ),
                    None => println!("storage:  unknown (the daemon could not read it)"),
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
        Command::PairingCode => match local_api::get_json::<PairingCode>(&socket, "/api/pairing-code").await {
            Ok(answer) => {
                println!("{}", answer.pairing_code);
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
        Command::Panel(PanelCommand::Screenshot { file }) => match local_api::get_bytes(&socket, "/api/panel.png").await {
            Ok(png) => match std::fs::write(&file, &png) {
                Ok(()) => {
                    println!("saved the panel's screen to {}", file.display());
                    ExitCode::SUCCESS
                }
                Err(e) => fail(format!("cannot write {}: {e}", file.display())),
            },
            Err(e) => fail(e),
        },
        Command::Panel(PanelCommand::Press { button, long }) => {
            let hold_ms = if long { 2000 } else { 100 };
            let body = serde_json::json!({ "button": button, "hold_ms": hold_ms });
            match local_api::post_json(&socket, "/api/panel/press", &body).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(e),
            }
        }
    }
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

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("bunker: {e}");
    ExitCode::FAILURE
}
