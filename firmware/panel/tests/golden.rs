//! Golden images: every screen for representative snapshots, pixel for pixel.
//!
//! `UPDATE_GOLDEN=1 cargo test -p bunker-panel --test golden` rewrites the PNGs under
//! `tests/golden/` and the 4× copies under `docs/panel/`. A mismatch writes
//! `tests/golden/<name>.actual.png` beside the expected one for review.

mod support;

use std::path::PathBuf;

use bunker_panel::screens::render;
use bunker_panel::Frame;
use support::fixtures;

fn dir(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

#[test]
fn every_screen_matches_its_golden_png() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let golden = dir("tests/golden");
    let docs = dir("../../docs/panel");
    let mut failures = Vec::new();
    let cases = fixtures::cases();
    for (name, status, view) in &cases {
        let frame = render(view, status);
        assert!(
            frame.lit_count() > 50,
            "{name} renders an almost blank screen:\n{frame:?}"
        );
        let path = golden.join(format!("{name}.png"));
        let actual_path = golden.join(format!("{name}.actual.png"));
        if update {
            std::fs::write(&path, frame.to_png(1, 255).unwrap()).unwrap();
            std::fs::create_dir_all(&docs).unwrap();
            std::fs::write(
                docs.join(format!("{name}.png")),
                frame.to_png(4, 255).unwrap(),
            )
            .unwrap();
            let _ = std::fs::remove_file(&actual_path);
            continue;
        }
        let expected = match std::fs::read(&path) {
            Ok(bytes) => Frame::from_png(&bytes).unwrap(),
            Err(e) => {
                failures.push(format!(
                    "{name}: no golden image at {} ({e})",
                    path.display()
                ));
                continue;
            }
        };
        let diff = frame.diff_count(&expected);
        if diff != 0 {
            std::fs::write(&actual_path, frame.to_png(1, 255).unwrap()).unwrap();
            failures.push(format!(
                "{name}: {diff} pixels differ; actual written to {}",
                actual_path.display()
            ));
        } else {
            let _ = std::fs::remove_file(&actual_path);
        }
    }
    assert!(
        failures.is_empty(),
        "golden mismatches (UPDATE_GOLDEN=1 to accept):\n{}",
        failures.join("\n")
    );
    // Golden files nobody renders any more would rot silently.
    let names: Vec<String> = cases.iter().map(|(n, _, _)| format!("{n}.png")).collect();
    for entry in std::fs::read_dir(&golden).unwrap() {
        let file = entry.unwrap().file_name().to_string_lossy().into_owned();
        if file.ends_with(".png") && !file.ends_with(".actual.png") {
            assert!(names.contains(&file), "stale golden image {file}");
        }
    }
}
