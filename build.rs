//! Compiles the Suprema G-SDK protos (`proto/suprema/`) into the gRPC server's types.
//!
//! `protox` is a protobuf compiler written in Rust: the build needs no `protoc`, so a fresh
//! machine with Rust builds doorsim with `cargo run` alone.

fn main() {
    let protos = ["proto/suprema/voip.proto", "proto/suprema/gsdk_voip.proto", "proto/suprema/err.proto"];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptors = match protox::compile(protos, ["proto/suprema"]) {
        Ok(d) => d,
        Err(e) => panic!("the Suprema protos do not compile: {e}"),
    };
    if let Err(e) = tonic_prost_build::configure().build_client(false).compile_fds(descriptors) {
        panic!("gRPC code generation failed: {e}");
    }
}
