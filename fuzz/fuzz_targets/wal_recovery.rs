//! Fuzz target: recovery of a damaged write-ahead log. A valid WAL is built on a `FaultFs`
//! from a workload the input chooses, then the input's remaining bytes are written over,
//! after, or instead of part of a segment (or the identity / snapshot file), and
//! `DiskStore::open` + `initial_state` must never panic; whenever the damage contains no
//! forged valid record, the outcome must match a model of recovery (see `raftkv_fuzz::recovery`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    raftkv_fuzz::recovery::check(data);
});
