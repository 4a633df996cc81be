//! Fuzz target: what a member reads from a peer connection. The input as one frame payload
//! (`server::wire::decode`) and as a whole connection (hello, attribute block, frames): no
//! panic; a decoded message, hello or attribute block re-encodes to what it came from (see
//! `raftkv_fuzz::peer`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    raftkv_fuzz::peer::check(data);
});
