//! Invoice titles from a photo or a screenshot of their QR code (`qr_image`), through the real
//! gRPC API against the simulator: the gateway decodes the code and sends its text to WeChat.

mod common;

use bytesize::ByteSize;
use common::{
    APP_ID, APP_SECRET, Gateway, GatewayProcess, assert_invalid_field, assert_reason, calls, cards,
};
use ocrgate::api::pb;
use ocrgate_cardgen::{QrImage, QrScene, other_code_text};
use serde_json::json;
use tonic::{Code, Status};
use vendor_sim::{Endpoint, SimConfig, Simulator};

fn qr_request(image: Vec<u8>) -> pb::ParseInvoiceTitleRequest {
    pb::ParseInvoiceTitleRequest {
        qr_image: image.into(),
        ..Default::default()
    }
}

async fn parse(
    gateway: &Gateway,
    request: pb::ParseInvoiceTitleRequest,
) -> Result<pb::ParseInvoiceTitleResponse, Status> {
    gateway
        .client
        .clone()
        .parse_invoice_title(request)
        .await
        .map(tonic::Response::into_inner)
}

/// Sends `image`'s code and expects WeChat to have been asked with exactly its text.
async fn reaches_scantitle_with_its_text(image: &QrImage) {
    let gateway = Gateway::start().await;
    gateway.sim.add_invoice_title(
        &image.text,
        json!({"title_type": 0, "title": "Example Co."}),
    );

    let title = parse(&gateway, qr_request(image.bytes.clone()))
        .await
        .unwrap_or_else(|status| panic!("{} seed {}: {status:?}", image.scene, image.seed));

    assert_eq!(title.title, "Example Co.");
    let sent = calls(&gateway.sim, Endpoint::ScanTitle);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].json, Some(json!({"scan_text": image.text})));
}

#[tokio::test]
async fn a_screenshot_of_the_code_reaches_scantitle_with_its_text() {
    reaches_scantitle_with_its_text(&cards().qr_image(QrScene::Screenshot, 1)).await;
}

#[tokio::test]
async fn a_tilted_photo_of_a_phone_screen_reaches_scantitle_with_its_text() {
    reaches_scantitle_with_its_text(&cards().qr_image(QrScene::ScreenPhoto, 2)).await;
}

#[tokio::test]
async fn among_several_codes_the_invoice_titles_is_taken() {
    let image = cards().qr_image(QrScene::Several, 3);
    assert!(!image.others.is_empty());
    reaches_scantitle_with_its_text(&image).await;
}

#[tokio::test]
async fn an_image_without_a_code_is_not_found_and_wechat_is_not_asked() {
    let gateway = Gateway::start().await;
    let card = &common::ordinary_cards(0, 1)[0];

    let status = parse(&gateway, qr_request(card.jpeg.clone()))
        .await
        .expect_err("no code");

    assert_reason(&status, Code::NotFound, "QR_NOT_FOUND");
    assert!(gateway.sim.requests().is_empty(), "WeChat was called");
}

#[tokio::test]
async fn a_code_of_another_kind_is_refused_without_saying_what_it_holds() {
    let gateway = Gateway::start().await;
    let text = other_code_text(5);
    let image = cards().qr_image_of(QrScene::Screenshot, 5, &text);

    let status = parse(&gateway, qr_request(image.bytes))
        .await
        .expect_err("not an invoice title");

    assert_reason(&status, Code::InvalidArgument, "QR_NOT_INVOICE_TITLE");
    assert!(!status.message().contains(&text), "{status:?}");
    assert!(gateway.sim.requests().is_empty(), "WeChat was called");
}

#[tokio::test]
async fn an_oversized_a_broken_and_a_huge_image_are_refused_naming_the_field() {
    let gateway = Gateway::start_with(SimConfig::default(), |config| {
        config.limits.max_image_bytes = ByteSize::kib(256);
    })
    .await;
    let mut oversized = cards().qr_image(QrScene::Screenshot, 1).bytes;
    oversized.resize(256 * 1024 + 1, 0);
    let mut broken = b"\x89PNG\r\n\x1a\n".to_vec();
    broken.extend_from_slice(&[0x5a; 512]);
    // 20 megapixels of white: a small file, refused from its header before it is decoded.
    let mut huge = std::io::Cursor::new(Vec::new());
    image::GrayImage::from_pixel(5000, 4000, image::Luma([255]))
        .write_to(&mut huge, image::ImageFormat::Png)
        .expect("PNG");

    for (image, says) in [
        (oversized, "the limit is 262144 bytes"),
        (broken, "could not be decoded"),
        (huge.into_inner(), "megapixels"),
    ] {
        let status = parse(&gateway, qr_request(image))
            .await
            .expect_err("refused");
        assert_invalid_field(&status, "qr_image");
        assert!(status.message().contains(says), "{status:?}");
    }
    assert!(gateway.sim.requests().is_empty(), "WeChat was called");
}

#[tokio::test]
async fn exactly_one_of_the_text_and_the_image_is_taken() {
    let gateway = Gateway::start().await;
    let image = cards().qr_image(QrScene::Screenshot, 1);

    let both = parse(
        &gateway,
        pb::ParseInvoiceTitleRequest {
            scan_text: image.text.clone(),
            qr_image: image.bytes.into(),
            ..Default::default()
        },
    )
    .await
    .expect_err("both");
    let neither = parse(&gateway, pb::ParseInvoiceTitleRequest::default())
        .await
        .expect_err("neither");

    assert_invalid_field(&both, "qr_image");
    assert_invalid_field(&neither, "scan_text");
}

#[tokio::test]
async fn the_decoded_text_is_in_no_log_line() {
    let sim = Simulator::start(SimConfig::default())
        .await
        .expect("simulator");
    sim.add_app(APP_ID, APP_SECRET);
    let image = cards().qr_image(QrScene::Screenshot, 1);
    sim.add_invoice_title(&image.text, json!({"title_type": 1, "title": "张三"}));
    let other = cards().qr_image_of(QrScene::Screenshot, 5, &other_code_text(5));
    let gateway = GatewayProcess::start(&sim, &[("RUST_LOG", "debug")]).await;
    let mut client = gateway.client().await;

    client
        .parse_invoice_title(qr_request(image.bytes.clone()))
        .await
        .expect("parsed");
    client
        .parse_invoice_title(qr_request(other.bytes.clone()))
        .await
        .expect_err("not an invoice title");
    let logs = gateway.stop().await;

    let key = image.text.rsplit_once("invoice_key=").expect("a key").1;
    assert!(logs.len() > 5, "too few log lines to judge");
    for line in &logs {
        assert!(!line.contains(key), "the invoice key in: {line}");
        assert!(
            !line.contains(&other.text),
            "the other code's text in: {line}"
        );
    }
}
