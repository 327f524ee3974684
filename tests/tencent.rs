//! The Tencent Cloud provider beyond what every provider does (`tests/conformance/`): its rich
//! answers, its signature (against Tencent's own SDK), its credentials, and failover to it.

mod common;

use std::io::Cursor;

use base64::Engine as _;
use common::{
    Gateway, GatewayProcess, TENCENT_SECRET_ID, TENCENT_SECRET_KEY, error_info, png, route,
    tencent_gateway, tool, upload, with_tencent,
};
use ocrgate::{api::pb, providers::tencent::sign::Signing};
use secrecy::SecretString;
use serde_json::json;
use tonic::Code;
use vendor_sim::{Endpoint, Fault, SimConfig, Simulator};

const NUMBER: &str = "6214830212345678";

async fn tencent_only() -> Gateway {
    tencent_gateway(SimConfig::default()).await
}

fn tencent_calls(sim: &Simulator) -> Vec<vendor_sim::RecordedRequest> {
    common::calls(sim, Endpoint::TencentBankCard)
}

#[tokio::test]
async fn a_client_gets_expiry_warnings_quality_and_the_vendors_bank_over_grpc() {
    let gateway = tencent_only().await;
    // A prefix the built-in BIN table does not know: the issuer comes from Tencent.
    let number = "6299990000000001";
    gateway.sim.add_card_image(png(1), number);
    gateway.sim.set_tencent_extras(json!({
        "BankInfo": "示例银行(99990000)",
        "ValidDate": "07/2029",
        "CardType": "贷记卡",
        "CardName": "示例银行白金卡",
        "WarningCode": [-9113, -9114, -9113],
        "QualityValue": 42,
    }));

    let reply = gateway.recognize(upload(png(1))).await.expect("answered");

    assert_eq!(reply.card_number, number);
    assert_eq!(reply.provider, "tencent");
    assert_eq!(
        reply.expiry,
        Some(pb::CardExpiry {
            month: 7,
            year: 2029
        })
    );
    assert_eq!(
        reply.warnings().collect::<Vec<_>>(),
        [
            pb::ImageWarning::Photocopy,
            pb::ImageWarning::Reshoot,
            pb::ImageWarning::Blurry
        ]
    );
    assert_eq!(reply.quality, Some(42));
    assert_eq!(reply.card_name, "示例银行白金卡");
    let issuer = reply.issuer.expect("the vendor's bank");
    assert_eq!(issuer.bank_name, "示例银行");
    assert_eq!(issuer.bank_code, "");
    assert_eq!(issuer.card_type(), pb::CardType::Credit);

    let calls = tencent_calls(&gateway.sim);
    let call = &calls[0];
    assert_eq!(call.header("x-tc-action"), Some("BankCardOCR"));
    assert_eq!(call.header("x-tc-version"), Some("2018-11-19"));
    assert_eq!(
        call.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    let body = call.json.as_ref().expect("a JSON body");
    assert_eq!(
        body["ImageBase64"],
        base64::engine::general_purpose::STANDARD.encode(png(1))
    );
    for check in [
        "EnableCopyCheck",
        "EnableReshootCheck",
        "EnableBorderCheck",
        "EnableQualityValue",
    ] {
        assert_eq!(body[check], true, "{check}");
    }
    let sent = format!("{:?} {body}", call.headers);
    assert!(!sent.contains(TENCENT_SECRET_KEY), "{sent}");
}

#[tokio::test]
async fn a_card_the_bin_table_knows_keeps_its_issuer_and_nothing_unasked_is_set() {
    let gateway = tencent_only().await;
    gateway.sim.add_card_image(png(2), "6222020200112345678");

    let reply = gateway.recognize(upload(png(2))).await.expect("answered");

    assert_eq!(reply.issuer.expect("BIN table").bank_code, "ICBC");
    assert_eq!(reply.expiry, None);
    assert!(reply.warnings.is_empty());
    assert_eq!(reply.quality, None);
    assert_eq!(reply.card_name, "");
}

#[tokio::test]
async fn wechat_out_of_quota_fails_over_to_tencent() {
    let sim = common::simulator(SimConfig::default()).await;
    let mut config = common::config_for(&sim);
    with_tencent(&mut config, &sim);
    config.routing.bank_card = route(&["wechat", "tencent"]);
    let gateway = Gateway::serve(sim, config).await;
    gateway.sim.add_card_image(png(3), NUMBER);
    gateway.sim.set_quota(Endpoint::BankCard, 0);

    let reply = gateway.recognize(upload(png(3))).await.expect("answered");

    assert_eq!(reply.provider, "tencent");
    assert_eq!(reply.card_number, NUMBER);
    assert_eq!(gateway.sim.count(Endpoint::BankCard), 1);
    assert_eq!(gateway.sim.count(Endpoint::TencentBankCard), 1);
}

#[tokio::test]
async fn a_gif_or_webp_upload_reaches_tencent_as_a_jpeg_of_the_same_picture() {
    let gateway = tencent_gateway(SimConfig {
        default_card_number: Some(NUMBER.into()),
        ..SimConfig::default()
    })
    .await;
    let picture =
        image::RgbImage::from_fn(40, 24, |x, y| image::Rgb([x as u8 * 6, y as u8 * 9, 90]));
    let mut uploads = Vec::new();
    for format in [image::ImageFormat::Gif, image::ImageFormat::WebP] {
        let mut encoded = Cursor::new(Vec::new());
        picture.write_to(&mut encoded, format).expect("encodes");
        let encoded = encoded.into_inner();

        let reply = gateway
            .recognize(upload(encoded.clone()))
            .await
            .expect("answered");
        assert_eq!(reply.card_number, NUMBER);
        uploads.push(
            image::load_from_memory(&encoded)
                .expect("decodes")
                .to_rgb8(),
        );
    }

    for (sent, uploaded) in common::sent_to_tencent(&gateway.sim)
        .into_iter()
        .zip(uploads)
    {
        assert!(sent.starts_with(b"\xFF\xD8\xFF"), "a JPEG");
        let decoded = image::load_from_memory(&sent).expect("decodes").to_rgb8();
        assert_eq!(
            decoded.dimensions(),
            uploaded.dimensions(),
            "never rescaled"
        );
        // JPEG at quality 85 keeps every channel of this smooth picture within a few levels.
        let error = decoded
            .as_raw()
            .iter()
            .zip(uploaded.as_raw())
            .map(|(a, b)| f64::from(a.abs_diff(*b)))
            .sum::<f64>()
            / decoded.as_raw().len() as f64;
        assert!(error < 4.0, "mean error {error}");
    }
}

#[tokio::test]
async fn an_expired_signature_is_signed_afresh_and_tried_once_more() {
    let gateway = tencent_only().await;
    gateway.sim.add_card_image(png(4), NUMBER);
    gateway.sim.inject(
        Endpoint::TencentBankCard,
        Fault::tencent("AuthFailure.SignatureExpire", "the signature has expired"),
        1,
    );

    let reply = gateway.recognize(upload(png(4))).await.expect("answered");

    assert_eq!(reply.card_number, NUMBER);
    assert_eq!(gateway.sim.count(Endpoint::TencentBankCard), 2);
}

#[tokio::test]
async fn a_clock_far_off_is_misconfigured_after_one_fresh_signature() {
    let gateway = tencent_only().await;
    gateway.sim.add_card_image(png(5), NUMBER);
    gateway.sim.set_tencent_clock_offset(10 * 60);

    let status = gateway.recognize(upload(png(5))).await.expect_err("stale");

    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    let (reason, metadata) = error_info(&status);
    assert_eq!(reason, "TENCENT_MISCONFIGURED");
    assert_eq!(metadata["errcode"], "AuthFailure.SignatureExpire");
    assert_eq!(gateway.sim.count(Endpoint::TencentBankCard), 2);
}

#[tokio::test]
async fn the_vendors_rate_limit_is_retried_then_reported_as_quota() {
    let gateway = tencent_only().await;
    gateway.sim.add_card_image(png(6), NUMBER);
    gateway.sim.inject(
        Endpoint::TencentBankCard,
        Fault::tencent("RequestLimitExceeded", "too many requests"),
        1,
    );
    let reply = gateway
        .recognize(upload(png(6)))
        .await
        .expect("answered after a retry");
    assert_eq!(reply.card_number, NUMBER);

    gateway.sim.inject(
        Endpoint::TencentBankCard,
        Fault::tencent("RequestLimitExceeded", "too many requests"),
        10,
    );
    let status = gateway
        .recognize(upload(png(6)))
        .await
        .expect_err("rate limited");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(error_info(&status).0, "TENCENT_QUOTA_EXHAUSTED");
    // One try, two more with the retries, for each call.
    assert_eq!(gateway.sim.count(Endpoint::TencentBankCard), 2 + 3);
}

#[tokio::test]
async fn temporary_credentials_are_read_from_files_at_every_call() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (key_file, token_file) = (dir.path().join("key"), dir.path().join("token"));
    std::fs::write(&key_file, "temporary-key-1\n").expect("written");
    std::fs::write(&token_file, "session-token-1\n").expect("written");
    let sim = Simulator::start(SimConfig::default())
        .await
        .expect("simulator");
    sim.add_tencent_key(
        TENCENT_SECRET_ID,
        "temporary-key-1",
        Some("session-token-1"),
    );
    sim.add_card_image(png(7), NUMBER);
    let mut config = common::config_for(&sim);
    with_tencent(&mut config, &sim);
    config.routing.bank_card = route(&["tencent"]);
    config.providers.set("tencent.secret_key", None::<String>);
    config.providers.set("tencent.secret_key_file", &key_file);
    config.providers.set("tencent.token_file", &token_file);
    let gateway = Gateway::serve(sim, config).await;

    gateway.recognize(upload(png(7))).await.expect("answered");
    // The credentials rotate, as STS credentials do: no restart.
    gateway.sim.add_tencent_key(
        TENCENT_SECRET_ID,
        "temporary-key-2",
        Some("session-token-2"),
    );
    std::fs::write(&key_file, "temporary-key-2\n").expect("written");
    std::fs::write(&token_file, "session-token-2\n").expect("written");
    gateway
        .recognize(upload(png(7)))
        .await
        .expect("answered with the new ones");

    let tokens: Vec<_> = tencent_calls(&gateway.sim)
        .iter()
        .map(|call| call.header("x-tc-token").map(str::to_owned))
        .collect();
    assert_eq!(
        tokens,
        [
            Some("session-token-1".to_owned()),
            Some("session-token-2".to_owned())
        ]
    );
}

#[tokio::test]
async fn the_binary_serves_tencent_from_the_environment_and_hides_a_wrong_key() {
    let sim = common::simulator(SimConfig::default()).await;
    sim.add_card_image(png(8), NUMBER);
    sim.set_tencent_extras(
        json!({"ValidDate": "11/2030", "QualityValue": 93, "WarningCode": [-9111]}),
    );
    let base_url = sim.base_url();
    let env = |key: &'static str| {
        [
            ("OCRGATE_TENCENT_SECRET_ID", TENCENT_SECRET_ID),
            ("OCRGATE_TENCENT_SECRET_KEY", key),
            ("OCRGATE_TENCENT_ENDPOINT", base_url.as_str()),
            ("OCRGATE_TENCENT_REGION", "ap-shanghai"),
            ("OCRGATE_ROUTING__BANK_CARD", r#"["tencent", "wechat"]"#),
            ("OCRGATE_ROUTING__FAILOVER_ON", r#"["unavailable"]"#),
        ]
    };

    let gateway = GatewayProcess::start(&sim, &env(TENCENT_SECRET_KEY)).await;
    let reply = gateway
        .client()
        .await
        .recognize_bank_card(upload(png(8)))
        .await
        .expect("answered")
        .into_inner();
    assert_eq!(reply.provider, "tencent");
    assert_eq!(
        reply.expiry,
        Some(pb::CardExpiry {
            month: 11,
            year: 2030
        })
    );
    assert_eq!(reply.quality, Some(93));
    assert_eq!(
        reply.warnings().collect::<Vec<_>>(),
        [pb::ImageWarning::BorderIncomplete]
    );
    assert_eq!(
        tencent_calls(&sim)[0].header("x-tc-region"),
        Some("ap-shanghai")
    );
    gateway.stop().await;

    let wrong = "a-wrong-tencent-key-0123456789";
    let gateway = GatewayProcess::start(&sim, &env(wrong)).await;
    let status = gateway
        .client()
        .await
        .recognize_bank_card(upload(png(8)))
        .await
        .expect_err("wrong key");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(error_info(&status).0, "TENCENT_MISCONFIGURED");
    assert!(!format!("{status:?}").contains(wrong));
    let logs = gateway.stop().await;
    let logs = logs.join("\n");
    assert!(
        logs.contains("AuthFailure.SignatureFailure"),
        "the failure is logged"
    );
    assert!(!logs.contains(wrong), "the key is in the logs");
    assert!(!logs.contains(TENCENT_SECRET_KEY));
}

/// The signer agrees with Tencent's own: the `tencentcloud-sdk-python-common` package signs the
/// same requests (`scripts/tc3-vectors.py`), and every header and body byte must match.
#[tokio::test]
async fn the_signature_matches_tencents_own_sdk() {
    let Some(python) = tool("python") else { return };
    let cases = json!([
        {"secret_id": "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", "secret_key": "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
         "timestamp": 1551113065, "host": "ocr.tencentcloudapi.com",
         "params": {"ImageUrl": "https://example.com/card.jpg", "EnableCopyCheck": true}},
        {"secret_id": "AKIDother", "secret_key": "0012345678901234",
         "timestamp": 1798761599, "host": "ocr.ap-guangzhou.tencentcloudapi.com",
         "params": {"ImageBase64": "iVBORw0KGgo=", "EnableQualityValue": true, "EnableBorderCheck": false}},
        {"secret_id": "AKIDunicode", "secret_key": "k€y with spaces",
         "timestamp": 1798761600, "host": "127.0.0.1:8443",
         "params": {"ImageUrl": "https://example.com/卡.png"}},
    ]);
    let mut child = tokio::process::Command::new(python)
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/tc3-vectors.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python runs");
    let mut stdin = child.stdin.take().expect("stdin");
    tokio::io::AsyncWriteExt::write_all(&mut stdin, cases.to_string().as_bytes())
        .await
        .expect("cases written");
    drop(stdin);
    let output = child.wait_with_output().await.expect("python exits");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let signed: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).expect("JSON");

    for (case, sdk) in cases.as_array().expect("cases").iter().zip(&signed) {
        let secret_key = SecretString::from(case["secret_key"].as_str().expect("key"));
        let ours = Signing {
            secret_id: case["secret_id"].as_str().expect("id"),
            secret_key: &secret_key,
            service: "ocr",
            host: case["host"].as_str().expect("host"),
            content_type: sdk["content_type"].as_str().expect("content type"),
            timestamp: case["timestamp"].as_u64().expect("timestamp"),
            body: sdk["body"].as_str().expect("body").as_bytes(),
        }
        .authorization();
        assert_eq!(
            ours,
            sdk["authorization"].as_str().expect("signature"),
            "{case}"
        );
    }
}
