//! ParseInvoiceTitle end to end: real gRPC client, real server, simulated WeChat.

mod common;

use common::Gateway;
use ocrgate::api::pb::{TaxNumberFormat, TitleType};
use serde_json::json;
use vendor_sim::Endpoint;

const SCAN_TEXT: &str =
    "https://mp.weixin.qq.com/intp/invoice/usertitlewxa?action=list_auth&invoice_key=abcd";

#[tokio::test]
async fn organisation_title_arrives_with_every_field_renamed() {
    let gateway = Gateway::start().await;
    gateway.sim.add_invoice_title(
        SCAN_TEXT,
        json!({
            "title_type": 0,
            "title": "深圳市腾讯计算机系统有限公司",
            "phone": "0755-86013388",
            "tax_no": "91440300708461136T",
            "addr": "深圳市南山区",
            "bank_type": "招商银行深圳分行",
            "bank_no": "755900012345678",
        }),
    );

    let reply = gateway.parse_title(SCAN_TEXT).await.expect("parsed");

    assert_eq!(reply.title_type(), TitleType::Organization);
    assert_eq!(reply.title, "深圳市腾讯计算机系统有限公司");
    assert_eq!(reply.phone, "0755-86013388");
    assert_eq!(reply.tax_number, "91440300708461136T");
    assert_eq!(reply.address, "深圳市南山区");
    assert_eq!(reply.bank_name, "招商银行深圳分行");
    assert_eq!(reply.bank_account, "755900012345678");
    assert_eq!(reply.provider, "wechat");
}

#[tokio::test]
async fn individual_title_with_missing_fields_arrives_with_empty_strings() {
    let gateway = Gateway::start().await;
    gateway
        .sim
        .add_invoice_title(SCAN_TEXT, json!({"title_type": 1, "title": "张三"}));

    let reply = gateway.parse_title(SCAN_TEXT).await.expect("parsed");

    assert_eq!(reply.title_type(), TitleType::Individual);
    assert_eq!(reply.title, "张三");
    assert_eq!(reply.tax_number, "");
    assert_eq!(reply.bank_account, "");
}

#[tokio::test]
async fn missing_title_type_is_unspecified() {
    let gateway = Gateway::start().await;
    gateway.sim.add_invoice_title(
        SCAN_TEXT,
        json!({"title": "用户抬头", "tax_no": "1286715052"}),
    );

    let reply = gateway.parse_title(SCAN_TEXT).await.expect("parsed");

    assert_eq!(reply.title_type(), TitleType::Unspecified);
    assert_eq!(reply.tax_number, "1286715052");
}

#[tokio::test]
async fn scan_text_travels_trimmed_in_the_json_body_not_the_query() {
    let gateway = Gateway::start().await;
    gateway
        .sim
        .add_invoice_title(SCAN_TEXT, json!({"title_type": 1, "title": "李四"}));

    gateway
        .parse_title(&format!("  {SCAN_TEXT}\n"))
        .await
        .expect("parsed");

    let call = gateway
        .sim
        .requests()
        .into_iter()
        .find(|r| r.endpoint == Endpoint::ScanTitle)
        .expect("scantitle call");
    assert_eq!(call.method, "POST");
    assert_eq!(call.query_param("scan_text"), None);
    assert_eq!(call.json, Some(json!({"scan_text": SCAN_TEXT})));
}

#[tokio::test]
async fn fields_are_trimmed_and_a_valid_credit_code_is_recognised() {
    let gateway = Gateway::start().await;
    gateway.sim.add_invoice_title(
        SCAN_TEXT,
        json!({"title_type": 0, "title": "  Example Co.  ", "tax_no": " 91440300708461136T\n", "phone": ""}),
    );

    let reply = gateway.parse_title(SCAN_TEXT).await.expect("parsed");

    assert_eq!(reply.title, "Example Co.");
    assert_eq!(reply.tax_number, "91440300708461136T");
    assert_eq!(reply.phone, "");
    assert_eq!(
        reply.tax_number_format(),
        TaxNumberFormat::UnifiedSocialCreditCode
    );
    assert!(reply.tax_number_valid);
}

#[tokio::test]
async fn a_credit_code_with_a_wrong_check_character_is_reported_not_refused() {
    let gateway = Gateway::start().await;
    gateway.sim.add_invoice_title(
        SCAN_TEXT,
        json!({"title": "Example Co.", "tax_no": "91440300708461136A"}),
    );

    let reply = gateway.parse_title(SCAN_TEXT).await.expect("parsed");

    assert_eq!(reply.tax_number, "91440300708461136A");
    assert_eq!(
        reply.tax_number_format(),
        TaxNumberFormat::UnifiedSocialCreditCode
    );
    assert!(!reply.tax_number_valid);
}

#[tokio::test]
async fn an_older_15_character_taxpayer_number_is_recognised_and_a_missing_one_is_unspecified() {
    let gateway = Gateway::start().await;
    gateway.sim.add_invoice_title(
        SCAN_TEXT,
        json!({"title": "Old Co.", "tax_no": "440300708461136"}),
    );
    gateway
        .sim
        .add_invoice_title("no-tax-number", json!({"title_type": 1, "title": "张三"}));

    let old = gateway.parse_title(SCAN_TEXT).await.expect("parsed");
    let none = gateway.parse_title("no-tax-number").await.expect("parsed");

    assert_eq!(old.tax_number_format(), TaxNumberFormat::Taxpayer15);
    assert!(old.tax_number_valid);
    assert_eq!(none.tax_number_format(), TaxNumberFormat::Unspecified);
    assert!(!none.tax_number_valid);
}
