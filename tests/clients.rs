//! Clients in other languages, run as their users would run them, against the real server.
//!
//! They need tools from outside cargo (Python's grpcio, Node's grpc-js, grpcurl, Go and a JDK
//! with gRPC's Debian packages), which `scripts/test.sh` installs (naming its own in
//! `TEST_TOOLS_BIN`); it also sets `TEST_REQUIRE_TOOLS`, so that there a missing tool fails the
//! test instead of skipping it.

mod common;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Output,
};

use common::{
    Gateway, caller, cards, config_for, png, route, simulator, tencent_gateway, tool, with_tencent,
};
use ocrgate_cardgen::QrScene;
use serde_json::json;
use vendor_sim::{Endpoint, Fault, SimConfig};

const SCAN_TEXT: &str = "https://mp.weixin.qq.com/intp/invoice/usertitlewxa?invoice_key=poly";
const API_KEY: &str = "polyglot-key-0123456789abcdef";
/// The file [`answers`] writes a screenshot of the title's QR code to.
const QR_IMAGE: &str = "title-qr.png";

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
    answers(tencent_gateway(SimConfig::default()).await, dir)
}

/// The gateway of [`gateway_with_answers`], serving only the caller whose key is [`API_KEY`].
async fn gateway_with_a_caller(dir: &Path) -> (Gateway, PathBuf) {
    let sim = simulator(SimConfig::default()).await;
    let mut config = config_for(&sim);
    with_tencent(&mut config, &sim);
    config.routing.bank_card = route(&["tencent"]);
    config.callers = BTreeMap::from([("polyglot".to_owned(), caller(API_KEY))]);
    answers(Gateway::serve(sim, config).await, dir)
}

/// Teaches `gateway`'s simulator the card and the title, and writes the card's image to `dir`,
/// and a screenshot of the title's QR code as [`QR_IMAGE`].
fn answers(gateway: Gateway, dir: &Path) -> (Gateway, PathBuf) {
    gateway.sim.add_card_image(png(1), "6222020200112345679");
    gateway.sim.set_tencent_extras(json!({
        "ValidDate": "07/2029",
        "WarningCode": [-9112],
        "QualityValue": 88,
    }));
    let title = json!({"title_type": 0, "title": "Example Co.", "tax_no": "91440300708461136T"});
    gateway.sim.add_invoice_title(SCAN_TEXT, title.clone());
    let qr = cards().qr_image(QrScene::Screenshot, 1);
    gateway.sim.add_invoice_title(&qr.text, title);
    std::fs::write(dir.join(QR_IMAGE), &qr.bytes).expect("image written");
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
    let qr = dir.path().join(QR_IMAGE);
    let from_qr = run(
        &python,
        &[
            example.to_str().expect("utf-8"),
            image.to_str().expect("utf-8"),
            qr.to_str().expect("utf-8"),
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
    assert_answers(&from_qr);
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
    let qr = dir.path().join(QR_IMAGE);
    let from_qr = run(
        &node,
        &[
            example.to_str().expect("utf-8"),
            image.to_str().expect("utf-8"),
            qr.to_str().expect("utf-8"),
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
    assert_answers(&from_qr);
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

/// A compiled example: its program, and how it is given an address, a deadline in milliseconds,
/// an image and a scan text (the API key goes in `OCRGATE_API_KEY`).
struct CompiledExample {
    program: PathBuf,
    args: fn(addr: &str, deadline_ms: u64, image: &str, scan_text: &str) -> Vec<String>,
}

impl CompiledExample {
    async fn run(&self, addr: &str, deadline_ms: u64, image: &Path, key: &str) -> Output {
        let image = image.to_str().expect("utf-8");
        tokio::process::Command::new(&self.program)
            .args((self.args)(addr, deadline_ms, image, SCAN_TEXT))
            .env("OCRGATE_API_KEY", key)
            .output()
            .await
            .unwrap_or_else(|err| panic!("{} runs: {err}", self.program.display()))
    }

    /// A card and a title read with the caller's key; the reason of a card that is not found; a
    /// wrong key refused; a title the vendor holds past the call's deadline.
    async fn check(&self, dir: &Path) {
        let (gateway, image) = gateway_with_a_caller(dir).await;
        let addr = gateway.address.to_string();

        assert_answers(&self.run(&addr, 10_000, &image, API_KEY).await);
        let not_a_card = dir.join("not-a-card.png");
        assert_not_found(&self.run(&addr, 10_000, &not_a_card, API_KEY).await);
        assert_fails(
            &self.run(&addr, 10_000, &image, "not-the-key").await,
            "error code=UNAUTHENTICATED reason=UNAUTHENTICATED",
        );
        gateway.sim.inject(Endpoint::ScanTitle, Fault::Hold, 1);
        let late = self.run(&addr, 2_000, &image, API_KEY).await;
        assert_fails(&late, "error code=DEADLINE_EXCEEDED");
        assert!(
            lines(&late).contains("card_number=6222020200112345679"),
            "the card was read within the deadline: {}",
            lines(&late)
        );
    }
}

fn assert_fails(output: &Output, error: &str) {
    let text = lines(output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains(error), "{text}");
}

/// Builds a compiled example with its `build.sh`; `None` (after saying so) when its toolchain is
/// not installed and the tests may skip.
async fn build_example(language: &str, toolchain: &[&str], out: &Path) -> Option<PathBuf> {
    let missing: Vec<&str> = toolchain
        .iter()
        .copied()
        .filter(|program| which(program).is_none())
        .collect();
    if !missing.is_empty() {
        assert!(
            std::env::var_os("TEST_REQUIRE_TOOLS").is_none(),
            "the {language} example needs {missing:?}: scripts/test.sh installs them"
        );
        eprintln!("skipped: {missing:?} not installed; run scripts/test.sh");
        return None;
    }
    let mut build = tokio::process::Command::new(project(&format!("examples/{language}/build.sh")));
    build.arg(out);
    if let Some(python) = tool("python") {
        build.env("PYTHON", python);
    }
    let built = build.output().await.expect("build.sh runs");
    assert!(built.status.success(), "{}", lines(&built));
    Some(out.join("ocrgate-example"))
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

#[tokio::test]
async fn go_example_reads_a_card_and_a_title_with_a_key_and_a_deadline_and_names_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let toolchain = ["go", "protoc", "protoc-gen-go", "protoc-gen-go-grpc"];
    let Some(program) = build_example("go", &toolchain, &dir.path().join("go")).await else {
        return;
    };
    let example = CompiledExample {
        program,
        args: |addr, deadline_ms, image, scan_text| {
            vec![
                "-addr".into(),
                addr.into(),
                "-timeout".into(),
                format!("{deadline_ms}ms"),
                image.into(),
                scan_text.into(),
            ]
        },
    };
    example.check(dir.path()).await;
}

#[tokio::test]
async fn java_example_reads_a_card_and_a_title_with_a_key_and_a_deadline_and_names_errors() {
    if tool("python").is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let toolchain = ["java", "javac", "protoc", "grpc_java_plugin"];
    let Some(program) = build_example("java", &toolchain, &dir.path().join("java")).await else {
        return;
    };
    let example = CompiledExample {
        program,
        args: |addr, deadline_ms, image, scan_text| {
            vec![
                "--addr".into(),
                addr.into(),
                "--timeout-ms".into(),
                deadline_ms.to_string(),
                image.into(),
                scan_text.into(),
            ]
        },
    };
    example.check(dir.path()).await;
}
