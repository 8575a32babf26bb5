//! Renders one panel screen for a JSON snapshot to a PNG, without hardware.
//!
//! ```text
//! cargo run -p bunker-panel --example render -- status.json network out.png [scale]
//! ```
//! The JSON is a `PanelStatus` in snake_case; missing fields take their defaults, e.g.
//! `{"state":"healthy","peers":4,"network":{"ip":"192.168.1.5","admin_url":"http://192.168.1.5:8080/"}}`.

use std::process::ExitCode;

use bunker_panel::screens::{render, Screen, View};
use bunker_panel::PanelStatus;

fn run(args: &[String]) -> Result<(), String> {
    let [json, screen, out, rest @ ..] = args else {
        return Err("usage: render STATUS.json SCREEN OUT.png [SCALE]".into());
    };
    let scale = match rest.first() {
        Some(s) => s.parse().map_err(|e| format!("scale {s:?}: {e}"))?,
        None => 4,
    };
    let text = std::fs::read_to_string(json).map_err(|e| format!("reading {json}: {e}"))?;
    let status: PanelStatus = serde_json::from_str(&text).map_err(|e| format!("{json}: {e}"))?;
    let screen = Screen::from_name(screen).map_err(|e| e.to_string())?;
    let png = render(&View::of(screen), &status)
        .to_png(scale, 255)
        .map_err(|e| e.to_string())?;
    std::fs::write(out, png).map_err(|e| format!("writing {out}: {e}"))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("render: {e}");
            ExitCode::FAILURE
        }
    }
}
