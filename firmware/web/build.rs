//! The web UI is embedded with `include_dir!`, which cargo cannot see
//! through: without this, editing `web-ui/public` would leave a stale page
//! in the next bunkerd build.

fn main() {
    // A directory here is scanned as a whole: any file changed under it
    // rebuilds the crate.
    println!("cargo:rerun-if-changed=../../web-ui/public");
}
