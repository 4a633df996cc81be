//! Compiles `proto/**/*.proto` with protox (a protobuf compiler in pure Rust, so no system
//! `protoc` is needed) and hands the descriptors to tonic-prost-build, which writes one Rust
//! file per protobuf package into `OUT_DIR`. The encoded descriptor set is written there too,
//! for `FILE_DESCRIPTOR_SET` (gRPC reflection).

use std::{env, fs, path::PathBuf};

/// Every file we compile; imports are resolved against `proto/`.
const PROTO_FILES: [&str; 5] = [
    "mvccpb/kv.proto",
    "authpb/auth.proto",
    "etcdserverpb/rpc.proto",
    "raftkv/v1/raftkv.proto",
    "raftkv/peer/v1/peer.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);

    let mut compiler = protox::Compiler::new(["proto"])?;
    compiler.include_source_info(true).include_imports(true);
    compiler.open_files(PROTO_FILES)?;
    fs::write(
        out_dir.join("file_descriptor_set.bin"),
        compiler.encode_file_descriptor_set(),
    )?;

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Server traits get default methods answering Unimplemented, so the server implements
        // only the etcd methods it supports.
        .generate_default_stubs(true)
        // Peer payloads are handed on without copying.
        .bytes(".raftkv.peer.v1")
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}
