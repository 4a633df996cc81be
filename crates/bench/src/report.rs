//! Printing results: a human table with the ratio ours/raft-rs, or one JSON object.
//!
//! Owns: formatting of [`RunStats`]. Must never: measure anything.

use crate::driver::RunStats;
use std::fmt::Write as _;

/// The human-readable table, plus ratios when both implementations ran.
pub fn table(runs: &[RunStats]) -> String {
    let mut s = String::new();
    if let Some(r) = runs.first() {
        let p = &r.params;
        let _ = writeln!(
            s,
            "{} nodes, {} proposals x {} B, batch {} per round, window {}, compact every {}, tick every {} rounds",
            p.nodes, p.proposals, p.entry_bytes, p.batch, p.window, p.compact_every, p.tick_every_rounds
        );
    }
    let _ = writeln!(
        s,
        "{:<13} {:>12} {:>10} {:>10} {:>11} {:>11} {:>13} {:>9} {:>9}",
        "impl",
        "entries/s",
        "leader s",
        "all s",
        "B/entry",
        "allocs/ent",
        "peak live MB",
        "rounds",
        "msgs"
    );
    for r in runs {
        let _ = writeln!(
            s,
            "{:<13} {:>12.0} {:>10.3} {:>10.3} {:>11.1} {:>11.2} {:>13.1} {:>9} {:>9}",
            r.name,
            r.entries_per_sec(),
            r.leader_commit.as_secs_f64(),
            r.all_applied.as_secs_f64(),
            r.bytes_per_entry(),
            r.allocs_per_entry(),
            r.alloc.peak_live_bytes_above_start as f64 / 1e6,
            r.rounds,
            r.messages,
        );
    }
    for (ours, theirs) in pairs(runs) {
        let _ = writeln!(
            s,
            "ratio raftkv/{}: throughput {:.2}x, bytes/entry {:.2}x, allocs/entry {:.2}x, peak live {:.2}x",
            theirs.name,
            ours.entries_per_sec() / theirs.entries_per_sec(),
            ours.bytes_per_entry() / theirs.bytes_per_entry(),
            ours.allocs_per_entry() / theirs.allocs_per_entry(),
            ours.alloc.peak_live_bytes_above_start as f64
                / theirs.alloc.peak_live_bytes_above_start as f64,
        );
    }
    for r in runs
        .iter()
        .filter(|r| r.entries_per_sec_range.0 != r.entries_per_sec_range.1)
    {
        let (lo, hi) = r.entries_per_sec_range;
        let _ = writeln!(
            s,
            "range {}: {lo:.0} .. {hi:.0} entries/s (median shown)",
            r.name
        );
    }
    for r in runs {
        if r.snapshot_messages > 0 || r.refused_proposals > 0 {
            let _ = writeln!(
                s,
                "note {}: {} snapshot messages, {} refused proposals",
                r.name, r.snapshot_messages, r.refused_proposals
            );
        }
    }
    s
}

/// (ours, each raft-rs variant) among `runs`.
fn pairs(runs: &[RunStats]) -> Vec<(&RunStats, &RunStats)> {
    let Some(ours) = runs.iter().find(|r| r.name == "raftkv") else {
        return Vec::new();
    };
    runs.iter()
        .filter(|r| r.name.starts_with("raft-rs"))
        .map(|t| (ours, t))
        .collect()
}

/// One JSON object: the parameters, one entry per run, and the ratios ours / each raft-rs.
pub fn json(runs: &[RunStats]) -> String {
    let mut s = String::from("{");
    if let Some(r) = runs.first() {
        let p = &r.params;
        let _ = write!(
            s,
            "\"params\":{{\"nodes\":{},\"proposals\":{},\"entry_bytes\":{},\"batch\":{},\"window\":{},\
             \"compact_every\":{},\"tick_every_rounds\":{}}},",
            p.nodes, p.proposals, p.entry_bytes, p.batch, p.window, p.compact_every, p.tick_every_rounds
        );
    }
    s.push_str("\"runs\":[");
    for (i, r) in runs.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(
            s,
            "{{\"impl\":\"{}\",\"entries_per_sec\":{:.1},\"entries_per_sec_min\":{:.1},\"entries_per_sec_max\":{:.1},\"leader_commit_secs\":{:.6},\
             \"all_applied_secs\":{:.6},\"alloc_bytes\":{},\"allocs\":{},\"bytes_per_entry\":{:.2},\
             \"allocs_per_entry\":{:.3},\"peak_live_bytes\":{},\"rounds\":{},\"messages\":{},\
             \"snapshot_messages\":{},\"refused_proposals\":{},\"compactions\":{},\
             \"max_stored_entries\":{}}}",
            r.name,
            r.entries_per_sec(),
            r.entries_per_sec_range.0,
            r.entries_per_sec_range.1,
            r.leader_commit.as_secs_f64(),
            r.all_applied.as_secs_f64(),
            r.alloc.alloc_bytes,
            r.alloc.allocs,
            r.bytes_per_entry(),
            r.allocs_per_entry(),
            r.alloc.peak_live_bytes_above_start,
            r.rounds,
            r.messages,
            r.snapshot_messages,
            r.refused_proposals,
            r.compactions,
            r.max_stored_entries,
        );
    }
    s.push_str("],\"ratios\":[");
    for (i, (ours, theirs)) in pairs(runs).into_iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(
            s,
            "{{\"vs\":\"{}\",\"throughput\":{:.4},\"bytes_per_entry\":{:.4},\"allocs_per_entry\":{:.4}}}",
            theirs.name,
            ours.entries_per_sec() / theirs.entries_per_sec(),
            ours.bytes_per_entry() / theirs.bytes_per_entry(),
            ours.allocs_per_entry() / theirs.allocs_per_entry(),
        );
    }
    s.push(']');
    s.push('}');
    s
}
