//! Clients in other languages, run as their users would run them, against the real server.
//!
//! They need tools from outside cargo (Python's grpcio, Node's grpc-js, grpcurl), which
//! `scripts/test.sh` installs and names in `TEST_TOOLS_BIN`; it also sets `TEST_REQUIRE_TOOLS`,
//! so that there a missing tool fails the test instead of skipping it.

mod common;

use std::{
    path::{Path, PathBuf},
    process::Output,
};

use common::{Gateway, png, tencent_gateway, tool};
use serde_json::json;
use vendor_sim::SimConfig;

const SCAN_TEXT: &str = "https://mp.weixin.qq.com/intp/invoice/usertitlewxa?invoice_key=poly";

/// The path of `name` among the installed tools, or `None` (after saying so) when the tests run
/// without them.
fn project(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

async fn run(program: &Path, args: &[&str], env: &[(&str, &Path)]) -> Output {
    tokio::process::Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap_or_else(|err| panic!("{} runs: {err}", program.display()))
}

fn lines(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A gateway that knows one card and one title, and the path of an image of that card. Cards go
/// to Tencent, which reads more than the number.
async fn gateway_with_answers(dir: &Path) -> (Gateway, PathBuf) {
    let gateway = tencent_gateway(SimConfig::default()).await;
    gateway.sim.add_card_image(png(1), "6222020200112345679");
    gateway.sim.set_tencent_extras(json!({
        "ValidDate": "07/2029",
        "WarningCode": [-9112],
        "QualityValue": 88,
    }));
    gateway.sim.add_invoice_title(
        SCAN_TEXT,
        json!({"title_type": 0, "title": "Example Co.", "tax_no": "91440300708461136T"}),
    );
    let image = dir.join("card.png");
    std::fs::write(&image, png(1)).expect("image written");
    std::fs::write(dir.join("not-a-card.png"), png(2)).expect("image written");
    (gateway, image)
}

fn assert_answers(output: &Output) {
    let text = lines(output);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("card_number=6222020200112345679"), "{text}");
    assert!(text.contains("bank=ICBC"), "{text}");
    assert!(text.contains("expiry=07/2029"), "{text}");
    assert!(text.contains("warnings=IMAGE_WARNING_GLARE"), "{text}");
    assert!(text.contains("quality=88"), "{text}");
    assert!(text.contains("title=Example Co."), "{text}");
    assert!(
        text.contains("tax_number=91440300708461136T valid=True")
            || text.contains("tax_number=91440300708461136T valid=true"),
        "{text}"
    );
}

fn assert_not_found(output: &Output) {
    let text = lines(output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains(
            "error code=NOT_FOUND reason=TENCENT_NOT_FOUND errcode=FailedOperation.OcrFailed"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn python_example_reads_a_card_and_a_title_and_an_error_reason() {
    let Some(python) = tool("python") else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let stubs = dir.path().join("stubs");
    std::fs::create_dir(&stubs).expect("stub dir");
    let proto_dir = project("proto");
    let generated = run(
        &python,
        &[
            "-m",
            "grpc_tools.protoc",
            "-I",
            proto_dir.to_str().expect("utf-8"),
            &format!("--python_out={}", stubs.display()),
            &format!("--grpc_python_out={}", stubs.display()),
            project("proto/ocrgate/v1/ocrgate.proto")
                .to_str()
                .expect("utf-8"),
        ],
        &[],
    )
    .await;
    assert!(generated.status.success(), "{}", lines(&generated));
    let (gateway, image) = gateway_with_answers(dir.path()).await;
    let example = project("examples/python/ocrgate_example.py");
    let addr = gateway.address.to_string();
    let env = [("PYTHONPATH", stubs.as_path())];

    let good = run(
        &python,
        &[
            example.to_str().expect("utf-8"),
            image.to_str().expect("utf-8"),
            SCAN_TEXT,
            "--addr",
            &addr,
        ],
        &env,
    )
    .await;
    let bad_image = dir.path().join("not-a-card.png");
    let bad = run(
        &python,
        &[
            example.to_str().expect("utf-8"),
            bad_image.to_str().expect("utf-8"),
            SCAN_TEXT,
            "--addr",
            &addr,
        ],
        &env,
    )
    .await;

    assert_answers(&good);
    assert_not_found(&bad);
}

#[tokio::test]
async fn node_example_reads_a_card_and_a_title_and_an_error_reason() {
    let node = PathBuf::from("node");
    if !project("examples/node/node_modules").exists() {
        assert!(
            std::env::var_os("TEST_REQUIRE_TOOLS").is_none(),
            "examples/node has no node_modules"
        );
        eprintln!("skipped: run `npm ci --prefix examples/node` (scripts/test.sh does)");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let (gateway, image) = gateway_with_answers(dir.path()).await;
    let example = project("examples/node/ocrgate_example.js");
    let addr = gateway.address.to_string();

    let good = run(
        &node,
        &[
            example.to_str().expect("utf-8"),
            image.to_str().expect("utf-8"),
            SCAN_TEXT,
            &addr,
        ],
        &[],
    )
    .await;
    let bad_image = dir.path().join("not-a-card.png");
    let bad = run(
        &node,
        &[
            example.to_str().expect("utf-8"),
            bad_image.to_str().expect("utf-8"),
            SCAN_TEXT,
            &addr,
        ],
        &[],
    )
    .await;

    assert_answers(&good);
    assert_not_found(&bad);
}

#[tokio::test]
async fn grpcurl_lists_and_calls_the_service_through_reflection() {
    let Some(grpcurl) = tool("grpcurl") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let (gateway, _) = gateway_with_answers(dir.path()).await;
    let addr = gateway.address.to_string();

    let listed = run(&grpcurl, &["-plaintext", &addr, "list"], &[]).await;
    let described = run(
        &grpcurl,
        &["-plaintext", &addr, "describe", "ocrgate.v1.OcrService"],
        &[],
    )
    .await;
    let request = json!({"scan_text": SCAN_TEXT}).to_string();
    let called = run(
        &grpcurl,
        &[
            "-plaintext",
            "-d",
            &request,
            &addr,
            "ocrgate.v1.OcrService/ParseInvoiceTitle",
        ],
        &[],
    )
    .await;
    let failed = run(
        &grpcurl,
        &[
            "-plaintext",
            "-d",
            r#"{"image_url": "ftp://x"}"#,
            &addr,
            "ocrgate.v1.OcrService/RecognizeBankCard",
        ],
        &[],
    )
    .await;

    assert!(
        lines(&listed).contains("ocrgate.v1.OcrService"),
        "{}",
        lines(&listed)
    );
    assert!(
        lines(&described).contains("rpc RecognizeBankCard"),
        "{}",
        lines(&described)
    );
    assert!(called.status.success(), "{}", lines(&called));
    let reply: serde_json::Value = serde_json::from_slice(&called.stdout).expect("JSON");
    assert_eq!(reply["title"], "Example Co.");
    assert_eq!(
        reply["taxNumberFormat"],
        "TAX_NUMBER_FORMAT_UNIFIED_SOCIAL_CREDIT_CODE"
    );
    // Reflection also serves the error detail types, so grpcurl prints them decoded.
    let error = lines(&failed);
    assert!(!failed.status.success());
    assert!(
        error.contains("InvalidArgument") && error.contains("INVALID_REQUEST"),
        "{error}"
    );
}
