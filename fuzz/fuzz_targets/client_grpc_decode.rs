//! Fuzz target: a client request as the server receives it. The first byte picks an etcd `KV`
//! or raftkv method, the rest is its protobuf message, which takes the server's path: strict
//! unknown-field check, prost decode, `server::convert`, the proposed command's log entry, and
//! the reply. No panic; each step round-trips (see `raftkv_fuzz::grpc`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    raftkv_fuzz::grpc::check(data);
});
