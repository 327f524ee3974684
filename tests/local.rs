//! The local provider and routing, through the real gRPC API: synthetic card photos read exactly,
//! the errors of bad images, failover from a WeChat out of quota, and a provider named by the
//! request. And, through the provider's own API, the reading of a number's lines where the
//! generator says they are, which the OCR bench measures recognition with.

mod common;

use std::path::Path;

use common::{
    Gateway, by_url, cards, local_models, ordinary_cards, sample, upload, wechat_then_local,
    with_local_models,
};
use ocrgate::{
    api::pb,
    providers::local::{LocalConfig, LocalProvider},
};
use tonic::Code;
use vendor_sim::{Endpoint, Fault, SimConfig};

/// A gateway without WeChat credentials whose models are installed: bank cards go to `local`.
/// Calls may take two minutes: the hardest photos go through every look (some 5 s in a release
/// build), and the tests' unoptimised build on two shared cores runs them over ten times slower.
async fn local_only(models: &Path) -> Gateway {
    Gateway::start_with(SimConfig::default(), |config| {
        config.providers.set("wechat.app_id", None::<String>);
        config.providers.set("wechat.app_secret", None::<String>);
        config.limits.max_call_duration = std::time::Duration::from_secs(120);
        with_local_models(config, models);
    })
    .await
}

#[tokio::test]
async fn without_credentials_cards_are_read_locally_and_titles_need_wechat() {
    let Some(models) = local_models() else { return };
    let gateway = local_only(&models).await;

    for card in ordinary_cards(0, 4) {
        let reply = gateway.read_card(&card).await;
        assert_eq!(reply.card_number, card.number, "seed {}", card.seed);
        assert_eq!(reply.provider, "local");
        assert!(reply.luhn_valid);
    }

    let title = gateway.parse_title("text").await.expect_err("no WeChat");
    assert_eq!(title.code(), Code::FailedPrecondition);
    assert_eq!(common::error_info(&title).0, "WECHAT_MISCONFIGURED");
    assert!(gateway.sim.requests().is_empty());
}

#[tokio::test]
async fn a_photo_stored_sideways_with_exif_orientation_6_is_read_upright() {
    let Some(models) = local_models() else { return };
    let gateway = local_only(&models).await;
    let card = &ordinary_cards(40, 1)[0];
    // A phone holding the card in portrait stores the pixels turned 90° counter-clockwise and
    // says "rotate 90° clockwise to view" (orientation 6).
    let sideways = as_jpeg(&decoded(&card.jpeg).rotate270());

    let reply = gateway
        .recognize(upload(ocrgate_cardgen::with_exif_orientation(&sideways, 6)))
        .await
        .expect("read upright");
    assert_eq!(reply.card_number, card.number);

    // The same pixels without the orientation are a card on its side: not read as this number.
    let as_stored = gateway.recognize(upload(sideways)).await;
    assert!(
        as_stored
            .as_ref()
            .is_err_and(|status| status.code() == Code::NotFound),
        "{as_stored:?}"
    );
}

fn decoded(photo: &[u8]) -> image::DynamicImage {
    image::load_from_memory(photo).expect("decodes")
}

/// `photo` encoded again as a JPEG, as a phone would store it after changing it.
fn as_jpeg(photo: &image::DynamicImage) -> Vec<u8> {
    let mut encoded = std::io::Cursor::new(Vec::new());
    photo
        .write_to(&mut encoded, image::ImageFormat::Jpeg)
        .expect("encodes");
    encoded.into_inner()
}

/// Draws the card of a seed in one of the generator's modes.
type Draw = fn(&ocrgate_cardgen::CardGenerator, u64) -> ocrgate_cardgen::Card;

/// Reads the generator's cards of `seeds`, drawn by `draw` (its `set` of photos), through
/// `gateway` and expects each number.
async fn reads_cards(gateway: &Gateway, set: &str, draw: Draw, seeds: &[u64]) {
    let generator = cards();
    for &seed in seeds {
        let card = draw(&generator, seed);
        let reply = gateway.read_card(&card).await;
        assert_eq!(reply.card_number, card.number, "{set} seed {seed}");
    }
}

/// Reads the generator's hard cards of `seeds` through `gateway` and expects each number.
async fn reads_hard_cards(gateway: &Gateway, seeds: &[u64]) {
    reads_cards(
        gateway,
        "hard",
        ocrgate_cardgen::CardGenerator::hard_card,
        seeds,
    )
    .await;
}

/// Reads the generator's wild cards of `seeds` through `gateway` and expects each number.
async fn reads_wild_cards(gateway: &Gateway, seeds: &[u64]) {
    reads_cards(
        gateway,
        "wild",
        ocrgate_cardgen::CardGenerator::wild_card,
        seeds,
    )
    .await;
}

/// Reads the generator's design cards of `seeds` through `gateway` and expects each number.
async fn reads_design_cards(gateway: &Gateway, seeds: &[u64]) {
    reads_cards(
        gateway,
        "design",
        ocrgate_cardgen::CardGenerator::design_card,
        seeds,
    )
    .await;
}

#[tokio::test]
async fn hard_phone_photos_turned_or_with_a_price_beside_the_number_are_read() {
    let Some(models) = local_models() else { return };
    // Hard card 0 is turned 12° with metal embossing. Hard card 6 has a receipt's price on its
    // number's row: read by leaving the price out.
    reads_hard_cards(&local_only(&models).await, &[0, 6]).await;
}

#[tokio::test]
async fn hard_phone_photos_are_read_along_their_lines_without_the_print_around_the_card() {
    let Some(models) = local_models() else { return };
    // Hard card 102's number is turned 8°: its groups, detected apart, are one row only along
    // their own direction. Hard card 174 lies by receipts whose `WIFI 8888 6684` lines, joined,
    // would pass the Luhn check. With PP-OCRv6 small's own detector, hard card 186's number was
    // read whole only in a look at its row, hard card 152's first group (light print on a light
    // pattern) only in that row in grey with its light evened out, and hard card 741's first
    // look took in only `22848` of its `622848` group; the detector trained on cards finds all
    // three at the first look. No look settles hard card 343's number, and the most trusted
    // reading of all is that number.
    reads_hard_cards(&local_only(&models).await, &[102, 152, 174, 186, 343, 741]).await;
}

#[tokio::test]
async fn a_portrait_card_whose_number_is_printed_in_lines_is_read_line_after_line() {
    let Some(models) = local_models() else { return };
    // Design cards 2, 3 and 46 are portrait fronts (seeds of the range the design mode was
    // developed on): 4-4-4-4, 4-4-4-7 and 6-13 numbers, each in two to four lines. Design cards
    // 1020 and 1058 (the tuning range) were read whole, with PP-OCRv6 small's own detector, only
    // in a look at the number's row reaching the whole of the line above it (a line cut in half
    // there reads as half as tall, and is not the next line of the number); the detector
    // trained on cards finds 1020 whole at the first look and 1058 in the upright image read
    // larger. Design card 120147's second line has a receipt's date just left of it on its row:
    // the line under the first is the part of that row under it.
    reads_design_cards(&local_only(&models).await, &[2, 3, 46, 1020, 1058, 120147]).await;
}

#[tokio::test]
async fn the_lines_of_a_turned_portrait_card_are_read_one_under_another() {
    let Some(models) = local_models() else { return };
    // Design card 1000 (the tuning range) is a portrait front turned about 5° anticlockwise, its
    // 6-13 number in two lines. The second line rises so far to the right that its axis-aligned
    // box reaches up into the first's: no look found a number while lines were taken to be one
    // under another by those boxes, rather than across the lines' own direction.
    reads_design_cards(&local_only(&models).await, &[1000]).await;
}

#[tokio::test]
async fn a_portrait_cards_first_line_is_read_beside_other_print_on_its_row() {
    let Some(models) = local_models() else { return };
    // Design card 1168 (the tuning range) is a portrait front, its 6-13 number in two lines,
    // lying on a receipt whose date is on the first line's row, just left of it. The second line
    // lies under the card's part of that row only, less than half its own length: no look found
    // a number while a number's first line could only be a whole row.
    reads_design_cards(&local_only(&models).await, &[1168]).await;
}

#[tokio::test]
async fn a_number_beside_a_receipt_is_not_read_on_into_the_receipts_next_line() {
    let Some(models) = local_models() else { return };
    // Hard card 480124 lies by a receipt whose `8888 6655` is on its number's row, left of it,
    // and whose `128.480` is under both. Stacked from the receipt's box, the row read on into
    // `128`, and `6258 0710 7451 3158 128` passes the Luhn check: it was answered at 0.999.
    reads_hard_cards(&local_only(&models).await, &[480124]).await;
}

#[tokio::test]
async fn a_tilted_number_keeps_its_first_digits_over_a_line_that_starts_before_it() {
    let Some(models) = local_models() else { return };
    // Design card 550118, a back turned some 8°: `601382 9240394197550` over `AUTHORIZED
    // SIGNATURE`, which starts a little left of it. The two boxes overlapped over most of the
    // signature's height, so they were taken for neighbours on one line and cut apart where they
    // overlap: the number lost `601`, and what was left began as no issuer's cards do.
    reads_design_cards(&local_only(&models).await, &[550118]).await;
}

#[tokio::test]
async fn a_number_row_read_the_wrong_way_up_is_read_again_turned_over() {
    let Some(models) = local_models() else { return };
    // Wild card 600016 lies upside down, turned some 20°, its `6013 8267 9211 8829 796` small and
    // blurred. Every look reads that line upright, as no number (`96 2 157 898 E19`), since the
    // direction classifier takes it to be upright (0.30) and no neighbour of digits says
    // otherwise; read turned over, it reads right with certainty.
    reads_wild_cards(&local_only(&models).await, &[600016]).await;
}

#[test]
fn the_recognisers_read_a_number_where_the_generator_says_it_is_and_not_beside_it() {
    let Some(models) = local_models() else { return };
    let telemetry = ocrgate::telemetry::Telemetry::without_exporters().expect("telemetry");
    let provider = LocalProvider::new(
        &LocalConfig {
            models_dir: models,
            concurrency: Some(std::num::NonZeroUsize::MIN),
            ..LocalConfig::default()
        },
        telemetry.metrics(),
    )
    .expect("the local provider");
    let generator = cards();
    // Card 0; design card 2, a portrait front with its number in four lines; wild card 1,
    // photographed upside down.
    for card in [
        generator.card(0),
        generator.design_card(2),
        generator.wild_card(1),
    ] {
        let photo = decoded(&card.jpeg).to_rgb8();
        let digits: Vec<String> = card
            .number_lines
            .iter()
            .map(ocrgate_cardgen::NumberLine::digits)
            .collect();
        let lines: Vec<_> = card.number_lines.iter().map(|line| line.corners).collect();
        // The same boxes moved across their lines by twice their height: off the number.
        let beside: Vec<_> = lines
            .iter()
            .map(|&[top_left, top_right, bottom_right, bottom_left]| {
                let down = (
                    2.0 * (bottom_left.0 - top_left.0),
                    2.0 * (bottom_left.1 - top_left.1),
                );
                [top_left, top_right, bottom_right, bottom_left]
                    .map(|(x, y)| (x + down.0, y + down.1))
            })
            .collect();

        let read = provider
            .read_given_lines(&photo, &lines, 1.4)
            .expect("read");
        assert_eq!(read.len(), digits.len());
        for (read, digits) in read.iter().zip(&digits) {
            assert!(
                read.recogniser == *digits || read.card_digits == *digits,
                "seed {}: {read:?}",
                card.seed
            );
        }
        let read = provider
            .read_given_lines(&photo, &beside, 1.4)
            .expect("read");
        for (read, digits) in read.iter().zip(&digits) {
            assert!(
                read.recogniser != *digits && read.card_digits != *digits,
                "seed {}: {read:?}",
                card.seed
            );
        }
    }
}

#[tokio::test]
async fn print_tone_on_tone_under_speckle_is_found() {
    let Some(models) = local_models() else { return };
    // Design cards 1045 (a portrait front) and 1170 (a back) print their numbers tone on tone
    // under speckle. PP-OCRv6 small's own detector found no line of digits in either photo as it
    // is (a look at the whole image in grey with its light evened out did: a pass since deleted);
    // the detector trained on cards finds both at the first look.
    reads_design_cards(&local_only(&models).await, &[1045, 1170]).await;
}

#[tokio::test]
async fn print_as_light_as_its_ground_in_another_hue_is_read() {
    let Some(models) = local_models() else { return };
    // Wild card 440092 (a range run for figures): with the colour channels seen alone left out
    // (`--without channels`), the reader answers NOT_FOUND; with them, no pass settles its
    // number, but the most trusted reading of all is that number. (Wild card 180067, pinned here
    // before, is read without them since the detector was trained on cards.)
    reads_wild_cards(&local_only(&models).await, &[440_092]).await;
}

#[tokio::test]
async fn a_number_the_original_detector_misses_is_found_by_the_one_trained_on_cards() {
    let Some(models) = local_models() else { return };
    // Design card 410110 (a range run for figures when the detector was measured, never trained
    // on): with PP-OCRv6 small's own detector the reader finds no number in it; with the
    // detector trained to find card numbers' lines, the upright image read larger does.
    reads_design_cards(&local_only(&models).await, &[410_110]).await;
}

#[tokio::test]
async fn digits_the_first_recogniser_misreads_are_read_by_the_second() {
    let Some(models) = local_models() else { return };
    // Design card 1026 (the tuning range), a blurred card lying upside down: no look settles its
    // number. Without ocrgate's own recogniser of card numbers' lines (switched off in a
    // throwaway build) the reader answers NOT_FOUND; with it, the number. (Design card 1100,
    // whose first group PP-OCR misread with its own detector, is read without it since the
    // detector was trained on cards.)
    reads_design_cards(&local_only(&models).await, &[1026]).await;
}

#[tokio::test]
async fn a_group_whose_digits_the_recogniser_reads_as_letters_is_read_as_digits() {
    let Some(models) = local_models() else { return };
    // Design card 1056 (the tuning range), a portrait front, prints its 19-digit number in three
    // lines, the last `566`, in a font whose 6 PP-OCR reads as `b`: `5bb` in every look, so no
    // line under the other two reads as digits, and nothing was found. Where it read each `b`,
    // the recogniser's output gives the 6 a share too: read as digits only, the line is `566`.
    reads_design_cards(&local_only(&models).await, &[1056]).await;
}

#[tokio::test]
async fn a_number_whose_last_group_the_first_look_misses_is_not_answered_short() {
    let Some(models) = local_models() else { return };
    let gateway = local_only(&models).await;
    // Hard card 457 and wild card 118 have 19 digits. The first look detects all but their last
    // group, and the 16 digits it reads pass the Luhn check; but their banks' cards (621226,
    // 622202) have 19 digits, so that reading is not settled, and the next look, at the image
    // larger, reads all 19.
    reads_hard_cards(&gateway, &[457]).await;
    reads_wild_cards(&gateway, &[118]).await;
}

#[tokio::test]
async fn a_number_whose_first_digit_a_box_once_cut_off_is_read_whole() {
    let Some(models) = local_models() else { return };
    // Wild card 180176 (the tuning range). With PP-OCRv6 small's own detector the box around its
    // number, turned some 15°, cut off its first digit (`013 8282 4343 8686 027`), and nothing
    // was read surely enough to answer; the row read as one band, from its first box of digits
    // to its last and a little past each, gave all 19 digits. The detector trained on cards
    // reads it whole in the upright image read larger: this photo no longer shows the row read
    // whole alone reading a number. Wild card 440016 does (without the pass the reader answers
    // a wrong number), but its read takes too long in the tests' debug build to pin.
    reads_wild_cards(&local_only(&models).await, &[180176]).await;
}

#[tokio::test]
async fn a_card_lying_upside_down_is_read_the_right_way_round() {
    let Some(models) = local_models() else { return };
    let gateway = local_only(&models).await;
    // A whole photo taken upside down: hard card 0 turned over, its clutter with it.
    let card = cards().hard_card(0);
    let turned = as_jpeg(&decoded(&card.jpeg).rotate180());
    let reply = gateway
        .recognize(upload(turned))
        .await
        .expect("read turned over");
    assert_eq!(reply.card_number, card.number);

    // Wild card 43 lies upside down among receipts that do not: only its own lines are read
    // turned over, and its groups joined right to left. Wild card 122's third group, 6680, reads
    // as digits either way up and was read upright (0899); its other groups say which way up it
    // is.
    reads_wild_cards(&gateway, &[43, 122]).await;

    // Wild card 78 lies so too. The recogniser trained on the lines it misread reads two digits
    // of its second group wrong (`4983` for `4233`; the original recogniser read it right after
    // the Luhn correction, at 0.83): a misread of its print, not of its turn, since every other
    // group is read in order. Such an answer must not be trusted.
    let card = cards().wild_card(78);
    let reply = gateway.read_card(&card).await;
    let confidence = reply
        .confidence
        .expect("the local reader says how sure it is");
    assert!(
        reply.card_number == card.number || confidence < 0.9,
        "wild seed 78 read {} at {confidence}",
        reply.card_number
    );
}

#[tokio::test]
async fn a_card_turned_past_thirty_degrees_is_read_along_its_lines() {
    let Some(models) = local_models() else { return };
    let gateway = local_only(&models).await;
    // A card photographed turned 38° either way: its lines are cut out along their direction,
    // not read in their axis-aligned boxes, and the image is turned upright for the other looks.
    let card = &ordinary_cards(40, 1)[0];
    for degrees in [38.0_f32, -38.0] {
        let photo = as_jpeg(&turned(&decoded(&card.jpeg), degrees));
        let reply = gateway
            .recognize(upload(photo))
            .await
            .unwrap_or_else(|status| panic!("turned {degrees}°: {status:?}"));
        assert_eq!(reply.card_number, card.number, "turned {degrees}°");
    }
}

/// `photo` on a grey ground as wide as its diagonal, turned `degrees` clockwise about its centre,
/// so that none of it is cut off.
fn turned(photo: &image::DynamicImage, degrees: f32) -> image::DynamicImage {
    use imageproc::geometric_transformations::{Border, Interpolation, rotate_about_center};
    let grey = image::Rgb([128, 128, 128]);
    let photo = photo.to_rgb8();
    let side = f64::from(photo.width())
        .hypot(f64::from(photo.height()))
        .ceil() as u32;
    let mut ground = image::RgbImage::from_pixel(side, side, grey);
    let at = |length: u32| i64::from((side - length) / 2);
    image::imageops::overlay(&mut ground, &photo, at(photo.width()), at(photo.height()));
    rotate_about_center(
        &ground,
        degrees.to_radians(),
        Interpolation::Bilinear,
        Border::Constant(grey),
    )
    .into()
}

#[tokio::test]
async fn the_expiry_is_read_and_a_blurred_photo_is_blurry() {
    let Some(models) = local_models() else { return };
    let gateway = local_only(&models).await;
    for card in ordinary_cards(0, 4) {
        let reply = gateway.read_card(&card).await;
        let expiry = reply.expiry.expect("an expiry");
        assert_eq!(
            (expiry.month, expiry.year % 100),
            card.expiry,
            "seed {}",
            card.seed
        );
        let quality = reply.quality.expect("a quality");
        assert!(quality >= 50, "seed {}: {quality}", card.seed);
        assert!(reply.warnings.is_empty(), "seed {}: {reply:?}", card.seed);
    }

    // The first of them, out of focus: still read, but flagged.
    let card = &ordinary_cards(0, 1)[0];
    let blurred = decoded(&card.jpeg).blur(3.0);
    let reply = gateway
        .recognize(upload(as_jpeg(&blurred)))
        .await
        .expect("read");
    assert_eq!(reply.card_number, card.number);
    assert!(reply.quality.expect("a quality") < 50, "{reply:?}");
    assert_eq!(
        reply.warnings().collect::<Vec<_>>(),
        [pb::ImageWarning::Blurry]
    );
}

#[tokio::test]
async fn a_photo_without_a_card_number_is_not_found() {
    let Some(models) = local_models() else { return };
    let gateway = local_only(&models).await;

    let status = gateway
        .recognize(upload(cards().non_card(3)))
        .await
        .expect_err("no card number");

    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert_eq!(common::error_info(&status).0, "LOCAL_NOT_FOUND");
}

#[tokio::test]
async fn a_corrupt_image_is_invalid_argument() {
    let Some(models) = local_models() else { return };
    let gateway = local_only(&models).await;
    // A JPEG's header, then nothing: it passes the format sniff, the decoder refuses it.
    let mut truncated = ordinary_cards(0, 1).remove(0).jpeg;
    truncated.truncate(600);

    let status = gateway
        .recognize(upload(truncated))
        .await
        .expect_err("corrupt");

    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(common::error_info(&status).0, "LOCAL_INVALID_INPUT");
    assert!(
        status.message().contains("could not be decoded"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn an_image_url_is_refused_by_the_local_provider_with_what_to_send() {
    let Some(models) = local_models() else { return };
    let gateway = local_only(&models).await;

    let status = gateway
        .recognize(by_url("https://example.com/card.jpg"))
        .await
        .expect_err("refused");

    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(common::error_info(&status).0, "LOCAL_INVALID_INPUT");
    assert!(status.message().contains("`image`"), "{}", status.message());
}

#[tokio::test]
async fn a_wechat_out_of_quota_fails_over_to_local_and_the_failover_is_counted() {
    let Some(models) = local_models() else { return };
    let gateway = wechat_then_local(&models).await;
    gateway.sim.inject(
        Endpoint::BankCard,
        Fault::errcode(45009, "reach max api daily quota limit"),
        1,
    );
    let card = ordinary_cards(0, 1).remove(0);

    let reply = gateway
        .recognize(upload(card.jpeg.clone()))
        .await
        .expect("answered by local");

    assert_eq!(reply.card_number, card.number);
    assert_eq!(reply.provider, "local");
    assert_eq!(
        gateway.sim.count(Endpoint::BankCard),
        1,
        "WeChat was asked first"
    );
    let (_, page) = gateway.admin_get("/metrics").await;
    let failovers = sample(
        &page,
        "ocrgate_provider_failovers_total",
        &[
            ("rpc_method", "RecognizeBankCard"),
            ("from", "wechat"),
            ("to", "local"),
            ("kind", "QUOTA_EXHAUSTED"),
        ],
    );
    assert_eq!(failovers, Some(1.0), "{page}");
}

#[tokio::test]
async fn an_error_that_is_not_a_failover_kind_is_answered_as_it_is() {
    let Some(models) = local_models() else { return };
    let gateway = wechat_then_local(&models).await;
    // No card registered at the simulator: WeChat answers "no card found".
    let card = ordinary_cards(0, 1).remove(0);

    let status = gateway
        .recognize(upload(card.jpeg))
        .await
        .expect_err("not found");

    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(common::error_info(&status).0, "WECHAT_NOT_FOUND");
}

#[tokio::test]
async fn a_request_naming_a_provider_gets_that_provider_only() {
    let Some(models) = local_models() else { return };
    let gateway = wechat_then_local(&models).await;
    let card = ordinary_cards(0, 1).remove(0);
    let named = |provider: &str| pb::RecognizeBankCardRequest {
        provider: provider.into(),
        ..upload(card.jpeg.clone())
    };

    let local = gateway
        .recognize(named("local"))
        .await
        .expect("local reads it");
    assert_eq!(
        (local.provider.as_str(), local.card_number.as_str()),
        ("local", card.number.as_str())
    );
    assert_eq!(gateway.sim.count(Endpoint::BankCard), 0);

    gateway.sim.inject(
        Endpoint::BankCard,
        Fault::errcode(45009, "reach max api daily quota limit"),
        1,
    );
    let status = gateway
        .recognize(named("wechat"))
        .await
        .expect_err("no failover");
    assert_eq!(status.code(), Code::ResourceExhausted);

    let status = gateway.recognize(named("acme")).await.expect_err("unknown");
    common::assert_invalid_field(&status, "provider");
    assert!(
        status.message().contains("wechat, local"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn the_server_answers_other_calls_while_cards_are_being_read() {
    let Some(models) = local_models() else { return };
    let gateway = Gateway::start_with(SimConfig::default(), |config| {
        config.routing.bank_card = common::route(&["local"]);
        config.providers.set("local.concurrency", 1);
        with_local_models(config, &models);
    })
    .await;
    let reads: Vec<_> = ordinary_cards(0, 4)
        .into_iter()
        .map(|card| {
            let mut client = gateway.client.clone();
            tokio::spawn(async move { client.recognize_bank_card(upload(card.jpeg)).await })
        })
        .collect();

    // Four cards queue for one engine; an invoice title (WeChat, via the simulator) does not.
    gateway.wait_for_in_flight("RecognizeBankCard", 4).await;
    gateway.sim.add_invoice_title(
        "scan",
        serde_json::json!({"title_type": 0, "title": "ACME"}),
    );
    gateway.parse_title("scan").await.expect("title answered");
    let still_reading = reads.iter().filter(|read| !read.is_finished()).count();

    for read in reads {
        read.await.expect("task").expect("card read");
    }
    assert!(
        still_reading > 0,
        "the title was answered only after every card had been read"
    );
}
