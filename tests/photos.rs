//! Phone photos through the real gRPC API: several megabytes, stored sideways with an EXIF
//! orientation. Each vendor gets an upload byte for byte when it takes it, and a JPEG fitted to its
//! limit when it does not.

mod common;

use common::{
    Gateway, assert_reason, calls, cards, jpeg, png, sent_to_tencent, simulator, tencent_gateway,
    upload,
};
use tonic::Code;
use vendor_sim::{Endpoint, SimConfig};

const NUMBER: &str = "6222020200112233445";

/// A phone photo of card `seed`: 4000 pixels wide, with grain, between 6 and 10 MiB.
fn phone_photo(seed: u64) -> Vec<u8> {
    let card = cards().card(seed);
    let photo = ocrgate_cardgen::phone_photo(&card.jpeg, 4000, 5.0, seed);
    assert!(
        (6 << 20..10 << 20).contains(&photo.len()),
        "{} bytes",
        photo.len()
    );
    photo
}

fn sim_config() -> SimConfig {
    SimConfig {
        default_card_number: Some(NUMBER.into()),
        ..SimConfig::default()
    }
}

#[tokio::test]
async fn a_6_mib_phone_photo_reaches_wechat_as_a_jpeg_under_2_mb() {
    let gateway = Gateway::start_with(sim_config(), |_| {}).await;
    let photo = phone_photo(1);

    let reply = gateway.recognize(upload(photo)).await.expect("read");

    assert_eq!(reply.card_number, NUMBER);
    let calls = calls(&gateway.sim, Endpoint::BankCard);
    let [call] = calls.as_slice() else {
        panic!("{} calls", calls.len())
    };
    let sent = &call.files[0];
    assert!(sent.len <= 2_000_000, "{sent:?}");
    assert_eq!(sent.content_type.as_deref(), Some("image/jpeg"));
    assert_eq!(sent.file_name.as_deref(), Some("image.jpg"));
}

#[tokio::test]
async fn a_6_mib_phone_photo_reaches_tencent_within_7_mb_of_base64_and_upright() {
    let gateway = tencent_gateway(sim_config()).await;
    // Stored sideways (portrait pixels of a landscape card), as a phone saves it, with EXIF
    // orientation 6: "rotate 90° clockwise to view".
    let photo = image::load_from_memory(&phone_photo(2)).expect("decodes");
    let mut sideways = std::io::Cursor::new(Vec::new());
    photo
        .rotate270()
        .write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
            &mut sideways,
            95,
        ))
        .expect("encodes");
    let sideways = ocrgate_cardgen::with_exif_orientation(sideways.get_ref(), 6);
    assert!(
        sideways.len() > 7_000_000 / 4 * 3,
        "{} bytes",
        sideways.len()
    );

    let reply = gateway.recognize(upload(sideways)).await.expect("read");

    assert_eq!(reply.card_number, NUMBER);
    let sent = sent_to_tencent(&gateway.sim);
    let [image] = sent.as_slice() else {
        panic!("{} calls", sent.len())
    };
    let base64_len = image.len().div_ceil(3) * 4;
    assert!(base64_len <= 7_000_000, "{base64_len} bytes of base64");
    assert!(image.starts_with(b"\xFF\xD8\xFF"), "a JPEG");
    let sent = image::load_from_memory(image).expect("decodes");
    assert!(
        sent.width() > sent.height(),
        "turned upright: {}×{}",
        sent.width(),
        sent.height()
    );
    assert!(sent.width() <= photo.width(), "never upscaled");
}

#[tokio::test]
async fn images_each_vendor_takes_reach_it_byte_for_byte() {
    let sim = simulator(SimConfig::default()).await;
    let photo = cards().card(3).jpeg;
    sim.add_card_image(photo.clone(), NUMBER);
    sim.add_card_image(png(4), NUMBER);
    let mut config = common::config_for(&sim);
    common::with_tencent(&mut config, &sim);
    config.routing.bank_card = common::route(&["wechat", "tencent"]);
    let gateway = Gateway::serve(sim, config).await;

    for provider in ["wechat", "tencent"] {
        for image in [photo.clone(), png(4)] {
            let mut request = upload(image);
            request.provider = provider.into();
            // The simulator knows these exact bytes only: a re-encoded image would not be read.
            let reply = gateway.recognize(request).await.expect("read");
            assert_eq!(reply.card_number, NUMBER, "{provider}");
        }
    }
    let wechat = calls(&gateway.sim, Endpoint::BankCard);
    let lengths: Vec<_> = wechat.iter().map(|call| call.files[0].len).collect();
    assert_eq!(lengths, [photo.len(), png(4).len()]);
    assert_eq!(sent_to_tencent(&gateway.sim), [photo, png(4)]);
}

#[tokio::test]
async fn a_photo_of_more_pixels_than_allowed_is_refused_before_it_is_decoded() {
    let gateway = Gateway::start_with(sim_config(), |config| {
        config.providers.set("wechat.max_image_pixels", 4_000_000);
    })
    .await;

    let status = gateway
        .recognize(upload(phone_photo(5)))
        .await
        .expect_err("12 megapixels over a 4 megapixel limit");

    assert_reason(&status, Code::InvalidArgument, "WECHAT_INVALID_INPUT");
    assert!(status.message().contains("megapixels"), "{status:?}");
    assert_eq!(gateway.sim.count(Endpoint::BankCard), 0);
}

#[tokio::test]
async fn an_upload_that_is_not_a_picture_inside_is_refused_when_it_must_be_fitted() {
    let gateway = Gateway::start_with(sim_config(), |_| {}).await;
    // A JPEG's first bytes, then 3 MB of nothing: too large for WeChat, and undecodable.
    let mut broken = jpeg(6)[..40].to_vec();
    broken.resize(3_000_000, 0);

    let status = gateway.recognize(upload(broken)).await.expect_err("broken");

    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("could not be decoded"),
        "{status:?}"
    );
    assert_eq!(gateway.sim.count(Endpoint::BankCard), 0);
}
