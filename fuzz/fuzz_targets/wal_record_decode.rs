//! Fuzz target: every decoder of `storage::codec` on arbitrary bytes. None may panic; a
//! record that decodes re-encodes to exactly the bytes it came from (the framing is
//! canonical), and every other format survives decode → encode → decode unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    raftkv_fuzz::decode::check(data);
});
