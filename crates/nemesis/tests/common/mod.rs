//! What the nemesis tests share: finding the `raftkv` binary, reading tuning variables.

use std::path::PathBuf;

/// `RAFTKV_BIN`, else `target/release/raftkv` (test.sh builds the workspace first).
pub fn raftkv_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("RAFTKV_BIN") {
        return PathBuf::from(path);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let path = target.join("release/raftkv");
    assert!(
        path.is_file(),
        "{} is missing: build it first with `cargo build --release -p cli` (./test.sh does), \
         or point RAFTKV_BIN at a raftkv binary",
        path.display()
    );
    path
}

/// The environment variable `name` parsed, or `default`.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
