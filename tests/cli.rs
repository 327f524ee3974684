//! `ocrgate card` and `ocrgate title` as processes against a running server.

mod common;

use std::process::Output;

use common::{Gateway, png};
use serde_json::{Value, json};
use vendor_sim::{Endpoint, Fault};

const SCAN_TEXT: &str = "https://mp.weixin.qq.com/intp/invoice/usertitlewxa?invoice_key=k1";

async fn ocrgate(gateway: &Gateway, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_ocrgate"))
        .args(args)
        .arg("--addr")
        .arg(format!("http://{}", gateway.address))
        .env_clear()
        .output()
        .await
        .expect("ocrgate runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn card_prints_the_number_and_what_ocrgate_knows_of_it() {
    let gateway = Gateway::start().await;
    gateway.sim.add_card_image(png(1), "6222020200112345679");
    let dir = tempfile::tempdir().expect("temp dir");
    let image = dir.path().join("card.png");
    std::fs::write(&image, png(1)).expect("image written");

    let output = ocrgate(&gateway, &["card", image.to_str().expect("utf-8")]).await;

    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("card number   6222020200112345679"), "{text}");
    assert!(text.contains("622202*********5679"), "{text}");
    assert!(text.contains("中国工商银行 (ICBC), debit"), "{text}");
    assert!(text.contains("UnionPay"), "{text}");
    assert!(!text.contains("expiry"), "WeChat reads no expiry: {text}");
}

#[tokio::test]
async fn card_prints_what_the_provider_read_beyond_the_number() {
    let gateway = common::tencent_gateway(vendor_sim::SimConfig::default()).await;
    gateway.sim.add_card_image(png(1), "6222020200112345679");
    gateway.sim.set_tencent_extras(serde_json::json!({
        "ValidDate": "03/2031", "WarningCode": [-9114, -9111], "QualityValue": 64,
        "CardName": "牡丹卡",
    }));
    let dir = tempfile::tempdir().expect("temp dir");
    let image = dir.path().join("card.png");
    std::fs::write(&image, png(1)).expect("image written");

    let text = stdout(&ocrgate(&gateway, &["card", image.to_str().expect("utf-8")]).await);
    assert!(text.contains("expiry        03/2031"), "{text}");
    assert!(text.contains("card name     牡丹卡"), "{text}");
    assert!(text.contains("quality       64/100"), "{text}");
    assert!(
        text.contains("warnings      reshoot, border incomplete"),
        "{text}"
    );
    assert!(text.contains("provider      tencent"), "{text}");

    let json = stdout(
        &ocrgate(
            &gateway,
            &["card", "--json", image.to_str().expect("utf-8")],
        )
        .await,
    );
    let json: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(json["expiry"], "03/2031");
    assert_eq!(
        json["warnings"],
        serde_json::json!(["reshoot", "border incomplete"])
    );
    assert_eq!(json["quality"], 64);
}

#[tokio::test]
async fn card_with_a_url_and_json_prints_json() {
    let gateway = Gateway::start().await;
    gateway
        .sim
        .add_card_url("https://example.com/card.jpg", "4111111111111111");

    let output = ocrgate(
        &gateway,
        &["card", "https://example.com/card.jpg", "--json"],
    )
    .await;

    assert!(output.status.success(), "{}", stderr(&output));
    let reply: Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    assert_eq!(reply["card_number"], "4111111111111111");
    assert_eq!(reply["network"], "Visa");
    assert_eq!(reply["issuer"], Value::Null);
    assert_eq!(reply["provider"], "wechat");
}

#[tokio::test]
async fn title_prints_the_invoice_title() {
    let gateway = Gateway::start().await;
    gateway.sim.add_invoice_title(
        SCAN_TEXT,
        json!({"title_type": 0, "title": "Example Co.", "tax_no": "91440300708461136T"}),
    );

    let output = ocrgate(&gateway, &["title", SCAN_TEXT]).await;

    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("Example Co. [organization]"), "{text}");
    assert!(
        text.contains("91440300708461136T (unified social credit code, valid)"),
        "{text}"
    );
}

#[tokio::test]
async fn title_with_an_image_prints_the_title_behind_its_qr_code() {
    let gateway = Gateway::start().await;
    let image = common::cards().qr_image(ocrgate_cardgen::QrScene::Screenshot, 1);
    gateway.sim.add_invoice_title(
        &image.text,
        json!({"title_type": 0, "title": "Example Co."}),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("qr.png");
    std::fs::write(&path, &image.bytes).expect("image written");

    let output = ocrgate(
        &gateway,
        &["title", "--image", path.to_str().expect("utf-8")],
    )
    .await;
    let without = ocrgate(&gateway, &["title"]).await;

    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("Example Co. [organization]"));
    assert_eq!(without.status.code(), Some(2), "neither a text nor --image");
}

#[tokio::test]
async fn a_failed_call_prints_code_reason_and_message_and_exits_non_zero() {
    let gateway = Gateway::start().await;
    gateway.sim.inject(
        Endpoint::BankCard,
        Fault::errcode(101003, "not enough market quota"),
        1,
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let image = dir.path().join("card.png");
    std::fs::write(&image, png(1)).expect("image written");

    let output = ocrgate(&gateway, &["card", image.to_str().expect("utf-8")]).await;

    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(
        text.contains("RESOURCE_EXHAUSTED WECHAT_QUOTA_EXHAUSTED"),
        "{text}"
    );
    assert!(text.contains("not enough market quota"), "{text}");
    assert!(text.contains("errcode 101003"), "{text}");
}

#[tokio::test]
async fn a_failed_call_with_json_prints_the_error_as_json() {
    let gateway = Gateway::start().await;

    let output = ocrgate(&gateway, &["title", "  ", "--json"]).await;

    assert_eq!(output.status.code(), Some(1));
    let reply: Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    assert_eq!(reply["error"]["code"], "INVALID_ARGUMENT");
    assert_eq!(reply["error"]["reason"], "INVALID_REQUEST");
    assert_eq!(reply["error"]["metadata"]["field"], "scan_text");
}

#[tokio::test]
async fn an_unreadable_file_is_reported_without_calling_the_server() {
    let gateway = Gateway::start().await;

    let output = ocrgate(&gateway, &["card", "/nonexistent/card.png"]).await;

    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("cannot read /nonexistent/card.png"));
    assert!(gateway.sim.requests().is_empty());
}

#[tokio::test]
async fn the_library_client_returns_answers_and_typed_errors() {
    let gateway = Gateway::start().await;
    gateway.sim.add_card_image(png(1), "6222020200112345679");
    let client = ocrgate::client::OcrClient::connect(format!("http://{}", gateway.address))
        .await
        .expect("connects")
        .with_timeout(std::time::Duration::from_secs(5));

    let card = client
        .recognize_bank_card(png(1))
        .await
        .expect("recognised");
    let err = client
        .parse_invoice_title("unknown")
        .await
        .expect_err("unknown title");

    assert_eq!(card.card_number, "6222020200112345679");
    assert_eq!(err.code, tonic::Code::InvalidArgument);
    assert_eq!(err.reason.as_deref(), Some("WECHAT_INVALID_INPUT"));
    assert_eq!(err.errcode(), Some("40097"));
}

#[tokio::test]
async fn card_with_a_provider_asks_that_provider_only() {
    let Some(models) = common::local_models() else {
        return;
    };
    let gateway = common::wechat_then_local(&models).await;
    let card = common::ordinary_cards(0, 1).remove(0);
    let dir = tempfile::tempdir().expect("temp dir");
    let image = dir.path().join("card.jpg");
    std::fs::write(&image, &card.jpeg).expect("image written");
    let path = image.to_str().expect("utf-8");

    let output = ocrgate(&gateway, &["card", path, "--provider", "local", "--json"]).await;

    assert!(output.status.success(), "{}", stderr(&output));
    let reply: Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    assert_eq!(reply["card_number"], card.number.as_str());
    assert_eq!(reply["provider"], "local");
    assert_eq!(gateway.sim.count(Endpoint::BankCard), 0);
}
