//! Build script.
//!
//! - `sqlx::migrate!` embeds `migrations/` at compile time, so a new or changed migration
//!   file must rebuild the crate (R-LOG-1: a schema the binary does not know would be
//!   applied by nobody).
//! - Release builds of the server on x86_64 Linux with rustc 1.90 or later (which links
//!   with its own lld there) put the functions that run at start-up and idle first in
//!   `.text`, in the order of `link/startup-symbols.txt` (made by
//!   `scripts/startup-order.sh`). The kernel maps code 64 KiB around each page fault;
//!   start-up code spread over the whole text kept nearly all of it resident at idle
//!   (issue 22). Names the file lists that a build no longer has are skipped.
//!   `EIDGATE_NO_LINK_ORDER=1` leaves the layout to the linker (for a linker other than
//!   lld).

use std::env;
use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=link/startup-symbols.txt");
    println!("cargo:rerun-if-env-changed=EIDGATE_NO_LINK_ORDER");

    let release = env::var("PROFILE").is_ok_and(|p| p == "release");
    let lld_target = env::var("TARGET").is_ok_and(|t| t == "x86_64-unknown-linux-gnu");
    let opted_out = env::var("EIDGATE_NO_LINK_ORDER").is_ok_and(|v| !v.is_empty() && v != "0");
    let Ok(dir) = env::var("CARGO_MANIFEST_DIR") else {
        return;
    };
    let order = Path::new(&dir).join("link/startup-symbols.txt");
    if release && lld_target && !opted_out && order.is_file() && rustc_links_with_lld() {
        println!(
            "cargo:rustc-link-arg-bin=eidgate=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo:rustc-link-arg-bin=eidgate=-Wl,--no-warn-symbol-ordering");
    }
}

/// rustc 1.90 and later link x86_64 Linux binaries with their own lld; older ones call the
/// system linker, which may not know `--symbol-ordering-file`.
fn rustc_links_with_lld() -> bool {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(out) = Command::new(rustc).arg("--version").output() else {
        return false;
    };
    let version = String::from_utf8_lossy(&out.stdout);
    // "rustc 1.95.0 (59807616e 2026-04-14)"
    let mut numbers = version
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .split('.')
        .map(|n| n.parse::<u32>().ok());
    match (numbers.next().flatten(), numbers.next().flatten()) {
        (Some(major), Some(minor)) => major > 1 || minor >= 90,
        _ => false,
    }
}
