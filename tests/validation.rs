//! Bad input is refused with INVALID_ARGUMENT naming the field, before any call to WeChat.

mod common;

use bytesize::ByteSize;
use common::{Gateway, assert_invalid_field, by_url, jpeg, png, upload};
use ocrgate::api::pb;
use vendor_sim::{Endpoint, SimConfig};

const NUMBER: &str = "6222020200112233445";

async fn refused_before_upstream(
    gateway: &Gateway,
    request: pb::RecognizeBankCardRequest,
    field: &str,
) {
    let status = gateway.recognize(request).await.expect_err("refused");
    assert_invalid_field(&status, field);
    assert!(gateway.sim.requests().is_empty(), "WeChat was called");
}

#[tokio::test]
async fn request_without_image_is_refused() {
    let gateway = Gateway::start().await;
    refused_before_upstream(&gateway, pb::RecognizeBankCardRequest::default(), "image").await;
}

#[tokio::test]
async fn empty_image_is_refused() {
    let gateway = Gateway::start().await;
    refused_before_upstream(&gateway, upload(Vec::new()), "image").await;
}

#[tokio::test]
async fn image_over_the_default_10_mib_is_refused_naming_the_limit() {
    let gateway = Gateway::start().await;
    let mut image = png(1);
    image.resize(10 * 1024 * 1024 + 1, 0);
    let status = gateway.recognize(upload(image)).await.expect_err("refused");
    assert_invalid_field(&status, "image");
    assert!(
        status.message().contains("the limit is 10485760 bytes"),
        "{status:?}"
    );
    assert!(gateway.sim.requests().is_empty(), "WeChat was called");
}

#[tokio::test]
async fn the_image_limit_is_configurable() {
    let gateway = Gateway::start_with(SimConfig::default(), |config| {
        config.limits.max_image_bytes = ByteSize::kib(100);
    })
    .await;
    let mut image = png(1);
    image.resize(100 * 1024 + 1, 0);
    refused_before_upstream(&gateway, upload(image.clone()), "image").await;

    image.truncate(100 * 1024);
    gateway
        .recognize(upload(image))
        .await
        .expect_err("not a card WeChat knows");
    assert_eq!(
        gateway.sim.count(Endpoint::BankCard),
        1,
        "validation let it through"
    );
}

#[tokio::test]
async fn an_image_of_exactly_10_mib_passes_validation_and_reaches_wechat_fitted() {
    let gateway = Gateway::start_with(
        SimConfig {
            default_card_number: Some(NUMBER.into()),
            ..SimConfig::default()
        },
        |_| {},
    )
    .await;
    // A JPEG with padding after its end marker, which decoders ignore.
    let mut image = jpeg(1);
    image.resize(10 * 1024 * 1024, 0);
    let reply = gateway.recognize(upload(image)).await.expect("read");
    assert_eq!(reply.card_number, NUMBER);
    let calls = common::calls(&gateway.sim, Endpoint::BankCard);
    let sent = &calls[0].files[0];
    assert!(sent.len <= 2_000_000, "{sent:?}");
    assert_eq!(sent.content_type.as_deref(), Some("image/jpeg"));
}

#[tokio::test]
async fn bytes_that_are_not_an_image_are_refused() {
    let gateway = Gateway::start().await;
    refused_before_upstream(&gateway, upload(b"%PDF-1.7\n%binary".to_vec()), "image").await;
    refused_before_upstream(&gateway, upload(b"just some text".to_vec()), "image").await;
}

/// What a buggy client in any language can put on the wire: both members of the `source` oneof.
#[derive(Clone, PartialEq, prost::Message)]
struct BothSources {
    #[prost(bytes = "vec", tag = "1")]
    image: Vec<u8>,
    #[prost(string, tag = "2")]
    image_url: String,
}

#[tokio::test]
async fn image_and_url_together_are_refused() {
    let gateway = Gateway::start().await;
    let mut grpc = tonic::client::Grpc::new(gateway.channel());
    grpc.ready().await.expect("ready");

    let status = grpc
        .unary::<_, pb::RecognizeBankCardResponse, _>(
            tonic::Request::new(BothSources {
                image: png(1),
                image_url: "https://example.com/card.jpg".into(),
            }),
            http::uri::PathAndQuery::from_static("/ocrgate.v1.OcrService/RecognizeBankCard"),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .expect_err("refused");

    assert_invalid_field(&status, "image_url");
    assert!(status.message().contains("both"), "{}", status.message());
    assert!(gateway.sim.requests().is_empty());
}

#[tokio::test]
async fn relative_url_is_refused() {
    let gateway = Gateway::start().await;
    refused_before_upstream(&gateway, by_url("/cards/front.jpg"), "image_url").await;
}

#[tokio::test]
async fn non_http_url_is_refused() {
    let gateway = Gateway::start().await;
    refused_before_upstream(&gateway, by_url("ftp://example.com/card.jpg"), "image_url").await;
    refused_before_upstream(&gateway, by_url("file:///etc/passwd"), "image_url").await;
}

#[tokio::test]
async fn empty_url_is_refused() {
    let gateway = Gateway::start().await;
    refused_before_upstream(&gateway, by_url(""), "image_url").await;
}

#[tokio::test]
async fn overlong_url_is_refused() {
    let gateway = Gateway::start().await;
    let url = format!("https://example.com/{}", "a".repeat(2100));
    refused_before_upstream(&gateway, by_url(&url), "image_url").await;
}

#[tokio::test]
async fn unknown_recognition_mode_is_refused() {
    let gateway = Gateway::start().await;
    let mut request = upload(png(1));
    request.mode = 42;
    refused_before_upstream(&gateway, request, "mode").await;
}

#[tokio::test]
async fn empty_scan_text_is_refused() {
    let gateway = Gateway::start().await;
    for scan_text in ["", "   \n\t"] {
        let status = gateway.parse_title(scan_text).await.expect_err("refused");
        assert_invalid_field(&status, "scan_text");
    }
    assert!(gateway.sim.requests().is_empty());
}

#[tokio::test]
async fn oversized_scan_text_is_refused() {
    let gateway = Gateway::start().await;
    let status = gateway
        .parse_title(&"x".repeat(4097))
        .await
        .expect_err("refused");
    assert_invalid_field(&status, "scan_text");
    assert!(gateway.sim.requests().is_empty());
}
