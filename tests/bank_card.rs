//! RecognizeBankCard end to end: real gRPC client, real server, simulated WeChat.

mod common;

use common::{Gateway, by_url, jpeg, png, upload};
use ocrgate::api::pb;
use vendor_sim::{Endpoint, ReplyShape};

#[tokio::test]
async fn uploaded_image_is_recognised() {
    let gateway = Gateway::start().await;
    let image = png(1);
    gateway
        .sim
        .add_card_image(image.clone(), "6222020200112345678");

    let reply = gateway.recognize(upload(image)).await.expect("recognised");

    assert_eq!(reply.card_number, "6222020200112345678");
    assert_eq!(reply.provider, "wechat");
}

#[tokio::test]
async fn upload_is_sent_as_multipart_img_part_with_file_name_and_content_type() {
    let gateway = Gateway::start().await;
    let image = jpeg(2);
    gateway
        .sim
        .add_card_image(image.clone(), "6222020200112345678");

    gateway
        .recognize(upload(image.clone()))
        .await
        .expect("recognised");

    let call = gateway
        .sim
        .requests()
        .into_iter()
        .find(|r| r.endpoint == Endpoint::BankCard)
        .expect("bank card call");
    assert_eq!(call.method, "POST");
    assert!(
        call.content_type
            .as_deref()
            .unwrap_or_default()
            .starts_with("multipart/form-data")
    );
    assert_eq!(call.files.len(), 1);
    let part = &call.files[0];
    assert_eq!(part.field, "img");
    assert_eq!(part.file_name.as_deref(), Some("image.jpg"));
    assert_eq!(part.content_type.as_deref(), Some("image/jpeg"));
    assert_eq!(part.len, image.len());
    assert_eq!(call.query_param("type"), Some("photo"));
    assert_eq!(call.query_param("img_url"), None);
}

#[tokio::test]
async fn example_reply_shape_with_string_errcode_and_id_field_is_understood() {
    let gateway = Gateway::start().await;
    gateway.sim.set_reply_shape(ReplyShape::Example);
    let image = png(3);
    gateway
        .sim
        .add_card_image(image.clone(), "6217 0032-1000 4567 890");

    let reply = gateway.recognize(upload(image)).await.expect("recognised");

    assert_eq!(reply.card_number, "6217003210004567890", "digits only");
}

#[tokio::test]
async fn image_url_is_passed_url_encoded_in_the_query() {
    let gateway = Gateway::start().await;
    let url = "https://img.example.com/cards/front.jpg?size=large&v=2";
    gateway.sim.add_card_url(url, "4367420012345678");

    let reply = gateway.recognize(by_url(url)).await.expect("recognised");

    assert_eq!(reply.card_number, "4367420012345678");
    let call = gateway
        .sim
        .requests()
        .into_iter()
        .find(|r| r.endpoint == Endpoint::BankCard)
        .expect("bank card call");
    assert_eq!(
        call.query_param("img_url"),
        Some(url),
        "decodes back to the URL"
    );
    assert!(call.files.is_empty(), "no upload when a URL is given");
}

#[tokio::test]
async fn scan_mode_is_passed_as_type_scan() {
    let gateway = Gateway::start().await;
    let image = png(4);
    gateway
        .sim
        .add_card_image(image.clone(), "6222020200112345678");
    let mut request = upload(image);
    request.mode = pb::RecognitionMode::Scan.into();

    gateway.recognize(request).await.expect("recognised");

    let call = gateway
        .sim
        .requests()
        .into_iter()
        .find(|r| r.endpoint == Endpoint::BankCard)
        .expect("bank card call");
    assert_eq!(call.query_param("type"), Some("scan"));
}

#[tokio::test]
async fn answer_carries_masked_number_luhn_issuer_and_network() {
    let gateway = Gateway::start().await;
    gateway
        .sim
        .add_card_image(png(5), "6222 0202 0011 2345 679");

    let reply = gateway.recognize(upload(png(5))).await.expect("recognised");

    assert_eq!(reply.card_number, "6222020200112345679");
    assert_eq!(reply.masked_number, "622202*********5679");
    assert!(reply.luhn_valid);
    let issuer = reply.issuer.clone().expect("ICBC is in the BIN table");
    assert_eq!(issuer.bank_code, "ICBC");
    assert_eq!(issuer.bank_name, "中国工商银行");
    assert_eq!(issuer.card_type(), pb::CardType::Debit);
    assert_eq!(reply.network(), pb::CardNetwork::Unionpay);
}

#[tokio::test]
async fn luhn_failure_is_a_warning_not_a_rejection() {
    let gateway = Gateway::start().await;
    gateway.sim.add_card_image(png(6), "6222020200112345678");

    let reply = gateway
        .recognize(upload(png(6)))
        .await
        .expect("still answered");

    assert!(!reply.luhn_valid);
    assert_eq!(reply.issuer.expect("known BIN").bank_code, "ICBC");
}

#[tokio::test]
async fn unknown_bin_leaves_the_issuer_unset_but_names_the_network() {
    let gateway = Gateway::start().await;
    gateway
        .sim
        .add_card_url("https://example.com/visa.jpg", "4111111111111111");

    let reply = gateway
        .recognize(by_url("https://example.com/visa.jpg"))
        .await
        .expect("recognised");

    assert_eq!(reply.issuer, None);
    assert_eq!(reply.network(), pb::CardNetwork::Visa);
    assert!(reply.luhn_valid);
}
