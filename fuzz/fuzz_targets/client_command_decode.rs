//! Fuzz target: the bytes a committed log entry, its reply and a snapshot carry into the `kv`
//! state machine. No panic; what decodes re-encodes to its exact bytes; an entry applies (and
//! retries) with a decodable reply and a state that survives snapshot → restore; a refused
//! snapshot changes nothing (see `raftkv_fuzz::command`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    raftkv_fuzz::command::check(data);
});
