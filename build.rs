//! Compiles `proto/` with protox (a pure-Rust protobuf compiler), so no system `protoc` is needed.

use std::{env, fs, path::PathBuf};

use protox::prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(["ocrgate/v1/ocrgate.proto"], ["proto"])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    // Server reflection serves this set, so grpcurl and friends need no local copy of the proto.
    fs::write(
        out_dir.join("ocrgate_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .codec_path("crate::api::codec::OcrCodec")
        // Images reach the vendor as the very buffer that came off the wire, never copied.
        .bytes(".ocrgate.v1.RecognizeBankCardRequest.image")
        .bytes(".ocrgate.v1.ParseInvoiceTitleRequest.qr_image")
        .compile_fds(descriptors)?;
    Ok(())
}
