//! Links the dynamically linked release build without `libgcc_s.so.1`.
//!
//! Rust's standard library asks the linker for `-lgcc_s`, the shared unwinder,
//! though a release build (panic = "abort") never unwinds. Loading and
//! relocating it costs every `--once` run about 0.1 ms of CPU and the service
//! 84 KiB of resident memory. A linker script named `libgcc_s.so` in a directory
//! searched first turns that `-lgcc_s` into GCC's static unwinder, `libgcc_eh.a`
//! (24 KiB more in the binary). The static build (`crt-static`) already links it
//! that way, and test builds, which unwind, keep the shared one.

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let gnu = env::var("CARGO_CFG_TARGET_ENV").is_ok_and(|e| e == "gnu");
    let crt_static =
        env::var("CARGO_CFG_TARGET_FEATURE").is_ok_and(|f| f.split(',').any(|f| f == "crt-static"));
    let release = env::var("PROFILE").is_ok_and(|p| p == "release");
    if !gnu || crt_static || !release {
        return;
    }
    let Some(out) = env::var_os("OUT_DIR") else {
        return;
    };
    let dir = PathBuf::from(out).join("gcc_s");
    // On any failure the build simply keeps the shared unwinder.
    if std::fs::create_dir_all(&dir).is_ok()
        && std::fs::write(dir.join("libgcc_s.so"), "INPUT(-lgcc_eh)\n").is_ok()
    {
        println!("cargo:rustc-link-search=native={}", dir.display());
    }
}
