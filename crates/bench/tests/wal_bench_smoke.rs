//! Smoke test of the `wal_bench` binary: tiny parameters, every case runs, the recovery child
//! reports back, and the table has every row. Checks that the benchmark still works, not how
//! fast anything is (no timing asserted).

use std::process::Command;

#[test]
fn wal_bench_runs_every_case_with_tiny_parameters() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("wal_bench_smoke");
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new(env!("CARGO_BIN_EXE_wal_bench"))
        .args([
            "--seconds",
            "0.2",
            "--appenders",
            "1,4",
            "--recovery-entries",
            "10000",
        ])
        .args(["--segment-bytes", "1048576", "--dir"])
        .arg(&dir)
        .output()
        .expect("running wal_bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "wal_bench failed:\n{stdout}\n{stderr}"
    );
    let rows: Vec<&str> = stdout.lines().collect();
    let has_row = |case: &str, appenders: &str| {
        rows.iter().any(|l| {
            l.starts_with(case) && l[case.len()..].split_whitespace().next() == Some(appenders)
        })
    };
    assert!(has_row("raw write+fdatasync", "1"), "{stdout}");
    assert!(has_row("group commit", "1"), "{stdout}");
    assert!(has_row("group commit", "4"), "{stdout}");
    assert!(
        stdout.contains("wrote") && stdout.contains("segments"),
        "the log was written over several segments: {stdout}"
    );
    let recovery = rows
        .iter()
        .find(|l| l.starts_with("recovery (warm page cache)"))
        .unwrap_or_else(|| panic!("no recovery line: {stdout}"));
    assert!(recovery.contains("(10000 entries)"), "{recovery}");
    assert!(recovery.contains("peak RSS"), "{recovery}");
    assert!(
        !dir.join("recovery-log").exists(),
        "the recovery log is removed afterwards"
    );
}

#[test]
fn wal_bench_rejects_unknown_arguments() {
    let out = Command::new(env!("CARGO_BIN_EXE_wal_bench"))
        .arg("--frobnicate")
        .output()
        .expect("running wal_bench");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage: wal_bench"));
}
