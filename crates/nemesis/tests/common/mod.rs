//! What the nemesis tests share: finding the `raftkv` binary, reading tuning variables.

use std::path::PathBuf;

/// `RAFTKV_BIN`, else the `raftkv` built beside this test binary: `target/<profile>/raftkv`
/// (the test runs from `target/<profile>/deps/`; test.sh builds the workspace first).
pub fn raftkv_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("RAFTKV_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test binary's own path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test binary lives in target/<profile>/deps");
    let path = profile_dir.join("raftkv");
    assert!(
        path.is_file(),
        "{} is missing: build it first with `cargo build --profile checked -p cli` \
         (./test.sh does), or point RAFTKV_BIN at a raftkv binary",
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
