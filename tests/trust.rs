//! Knowing when to trust a reading, through the real gRPC API: the local reader's confidence,
//! escalation to a cloud vendor on doubt or when the reader is busy, and the result cache that
//! keeps a vendor from being paid twice for one photo.

mod common;

use std::{path::Path, time::Duration};

use common::{Gateway, local_models, ordinary_cards, route, sample, upload, with_local_models};
use ocrgate::{api::pb, config::Config, provider::ErrorKind};
use tonic::Code;
use vendor_sim::{Endpoint, Fault, SimConfig};

/// Every answer the local reader gives has a confidence under 1, so a threshold of 1 doubts them
/// all: which answers a real threshold doubts is the benchmark's to measure, not these tests'.
const DOUBT_EVERY_ANSWER: f32 = 1.0;

/// A gateway routing bank cards to the local reader, then WeChat (the simulator), with
/// `escalate_below` as the threshold.
async fn local_then_wechat(
    models: &Path,
    escalate_below: Option<f32>,
    tweak: impl FnOnce(&mut Config),
) -> Gateway {
    Gateway::start_with(SimConfig::default(), |config| {
        config.routing.bank_card = route(&["local", "wechat"]);
        config.routing.escalate_below = escalate_below;
        // The tests' unoptimised build reads a card in about a second on a shared core.
        config.limits.max_call_duration = Duration::from_secs(60);
        with_local_models(config, models);
        tweak(config);
    })
    .await
}

fn escalations(page: &str, from: &str, to: &str, reason: &str) -> Option<f64> {
    sample(
        page,
        "ocrgate_escalations_total",
        &[("from", from), ("to", to), ("reason", reason)],
    )
}

fn warned_low_confidence(reply: &pb::RecognizeBankCardResponse) -> bool {
    reply
        .warnings()
        .any(|warning| warning == pb::ImageWarning::LowConfidence)
}

#[tokio::test]
async fn a_confident_local_answer_never_reaches_the_vendor() {
    let Some(models) = local_models() else { return };
    let gateway = local_then_wechat(&models, Some(0.5), |_| {}).await;
    let card = ordinary_cards(100, 1).remove(0);

    let reply = gateway.read_card(&card).await;

    assert_eq!(reply.provider, "local");
    assert_eq!(reply.card_number, card.number);
    let confidence = reply
        .confidence
        .expect("the local reader says how sure it is");
    assert!((0.5..1.0).contains(&confidence), "{confidence}");
    assert!(!warned_low_confidence(&reply));
    assert_eq!(gateway.sim.count(Endpoint::BankCard), 0);
}

#[tokio::test]
async fn a_doubtful_local_answer_goes_to_the_vendor_whose_answer_comes_back() {
    let Some(models) = local_models() else { return };
    let gateway = local_then_wechat(&models, Some(DOUBT_EVERY_ANSWER), |_| {}).await;
    let card = ordinary_cards(101, 1).remove(0);
    gateway.sim.add_card_image(card.jpeg.clone(), &card.number);

    let reply = gateway.read_card(&card).await;

    assert_eq!(reply.provider, "wechat");
    assert_eq!(reply.card_number, card.number);
    assert_eq!(reply.confidence, None, "WeChat gives no confidence");
    assert!(!warned_low_confidence(&reply));
    assert_eq!(gateway.sim.count(Endpoint::BankCard), 1);
    let (_, page) = gateway.admin_get("/metrics").await;
    assert_eq!(
        escalations(&page, "local", "wechat", "low_confidence"),
        Some(1.0),
        "{page}"
    );
}

#[tokio::test]
async fn when_the_vendor_fails_the_doubtful_local_answer_comes_back_with_a_warning() {
    let Some(models) = local_models() else { return };
    let gateway = local_then_wechat(&models, Some(DOUBT_EVERY_ANSWER), |_| {}).await;
    let card = ordinary_cards(102, 1).remove(0);
    gateway.sim.inject(
        Endpoint::BankCard,
        Fault::errcode(45009, "reach max api daily quota limit"),
        1,
    );

    let reply = gateway.read_card(&card).await;

    assert_eq!(reply.provider, "local");
    assert_eq!(reply.card_number, card.number);
    assert!(reply.confidence.is_some());
    assert!(warned_low_confidence(&reply), "{:?}", reply.warnings);
    assert_eq!(gateway.sim.count(Endpoint::BankCard), 1);
}

#[tokio::test]
async fn without_a_threshold_every_local_answer_is_kept() {
    let Some(models) = local_models() else { return };
    let gateway = local_then_wechat(&models, None, |_| {}).await;
    let card = ordinary_cards(103, 1).remove(0);

    let reply = gateway.read_card(&card).await;

    assert_eq!(reply.provider, "local");
    assert!(!warned_low_confidence(&reply));
    assert_eq!(gateway.sim.count(Endpoint::BankCard), 0);
}

#[tokio::test]
async fn a_number_read_too_unsure_to_answer_is_not_found_or_goes_on_to_the_vendor() {
    let Some(models) = local_models() else { return };
    let gateway = local_then_wechat(&models, None, |config| {
        // Every reading's confidence is under 1, so none is sure enough.
        config
            .providers
            .set("local.min_confidence", DOUBT_EVERY_ANSWER);
        config.routing.failover_on = vec![ErrorKind::Unavailable, ErrorKind::NotFound];
    })
    .await;
    let card = ordinary_cards(104, 1).remove(0);
    gateway.sim.add_card_image(card.jpeg.clone(), &card.number);

    // Named alone, the reader says it found no number it would answer with.
    let status = gateway
        .recognize(pb::RecognizeBankCardRequest {
            provider: "local".into(),
            ..upload(card.jpeg.clone())
        })
        .await
        .expect_err("too unsure to answer");
    common::assert_reason(&status, Code::NotFound, "LOCAL_NOT_FOUND");
    assert!(
        status.message().contains("local.min_confidence"),
        "{status:?}"
    );
    assert!(!status.message().contains(&card.number), "{status:?}");
    assert_eq!(gateway.sim.count(Endpoint::BankCard), 0);

    // Routed, the call goes on to the vendor, whose answer comes back.
    let reply = gateway.read_card(&card).await;

    assert_eq!(reply.provider, "wechat");
    assert_eq!(reply.card_number, card.number);
    let (_, page) = gateway.admin_get("/metrics").await;
    assert_eq!(
        escalations(&page, "local", "wechat", "not_found"),
        Some(1.0),
        "{page}"
    );
    assert_eq!(
        sample(&page, "ocrgate_local_unsure_total", &[]),
        Some(2.0),
        "{page}"
    );
}

/// A gateway whose bank cards go to WeChat alone, with the result cache on as by default.
async fn wechat_with_cache() -> Gateway {
    Gateway::start_with(SimConfig::default(), |config| {
        config.cache = ocrgate::result_cache::CacheConfig::default();
    })
    .await
}

#[tokio::test]
async fn an_identical_upload_sent_again_is_answered_without_a_second_vendor_call() {
    let gateway = wechat_with_cache().await;
    let photo = common::jpeg(7);
    gateway
        .sim
        .add_card_image(photo.clone(), "6222020200112345678");

    let first = gateway
        .recognize(upload(photo.clone()))
        .await
        .expect("read");
    let again = gateway.recognize(upload(photo)).await.expect("kept");

    assert_eq!(first, again);
    assert_eq!(gateway.sim.count(Endpoint::BankCard), 1);
    let (_, page) = gateway.admin_get("/metrics").await;
    let outcome = |outcome| sample(&page, "ocrgate_result_cache_total", &[("outcome", outcome)]);
    assert_eq!(outcome("hit"), Some(1.0), "{page}");
    assert_eq!(outcome("miss"), Some(1.0), "{page}");
}

#[tokio::test]
async fn an_error_is_not_kept_and_the_upload_sent_again_reaches_the_vendor() {
    let gateway = wechat_with_cache().await;
    let photo = common::jpeg(8);
    gateway
        .sim
        .add_card_image(photo.clone(), "6222020200112345678");
    gateway
        .sim
        .inject(Endpoint::BankCard, Fault::errcode(45009, "quota"), 1);

    let failed = gateway.recognize(upload(photo.clone())).await;
    let retried = gateway.recognize(upload(photo)).await.expect("read");

    assert_eq!(
        failed.expect_err("out of quota").code(),
        Code::ResourceExhausted
    );
    assert_eq!(retried.card_number, "6222020200112345678");
    assert_eq!(gateway.sim.count(Endpoint::BankCard), 2);
}

#[tokio::test]
async fn sixteen_identical_uploads_at_once_share_one_vendor_call() {
    let gateway = wechat_with_cache().await;
    let photo = common::jpeg(9);
    gateway
        .sim
        .add_card_image(photo.clone(), "6222020200112345678");
    // The vendor holds its answer until every upload is in flight.
    gateway.sim.inject(Endpoint::BankCard, Fault::Hold, 16);

    let uploads: Vec<_> = (0..16)
        .map(|_| {
            let mut client = gateway.client.clone();
            let request = upload(photo.clone());
            tokio::spawn(async move { client.recognize_bank_card(request).await })
        })
        .collect();
    gateway.wait_for_in_flight("RecognizeBankCard", 16).await;
    gateway.sim.wait_for_requests(Endpoint::BankCard, 1).await;
    gateway.sim.release_held(16);

    for read in uploads {
        let reply = read.await.expect("task").expect("answered").into_inner();
        assert_eq!(reply.card_number, "6222020200112345678");
    }
    assert_eq!(gateway.sim.count(Endpoint::BankCard), 1);
    let (_, page) = gateway.admin_get("/metrics").await;
    let outcome = |outcome| sample(&page, "ocrgate_result_cache_total", &[("outcome", outcome)]);
    assert_eq!(outcome("miss"), Some(1.0), "{page}");
    assert_eq!(outcome("shared"), Some(15.0), "{page}");
}

#[tokio::test]
async fn a_busy_local_reader_passes_the_call_on_at_once_instead_of_waiting() {
    let Some(models) = local_models() else { return };
    let gateway = local_then_wechat(&models, None, |config| {
        config.providers.set("local.concurrency", 1);
    })
    .await;
    let mut cards = ordinary_cards(110, 6);
    // One read times the reader.
    let timed = cards.remove(0);
    assert_eq!(gateway.read_card(&timed).await.provider, "local");

    // Four reads that name the local provider queue for its one engine...
    let queued: Vec<_> = cards
        .drain(..4)
        .map(|card| {
            let mut client = gateway.client.clone();
            let mut request = upload(card.jpeg);
            request.provider = "local".into();
            tokio::spawn(async move { client.recognize_bank_card(request).await })
        })
        .collect();
    let waiting = async {
        loop {
            let (_, page) = gateway.admin_get("/metrics").await;
            if sample(&page, "ocrgate_local_waiting", &[]) >= Some(3.0) {
                return;
            }
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("three reads wait for the engine");

    // ...so a routed call whose deadline is shorter than their turns (three and a half reads)
    // goes to WeChat at once, and is answered inside it.
    let card = cards.remove(0);
    gateway.sim.add_card_image(card.jpeg.clone(), &card.number);
    let short = Duration::from_millis(500);
    let mut request = tonic::Request::new(upload(card.jpeg.clone()));
    request.set_timeout(short);
    let reply = gateway
        .client
        .clone()
        .recognize_bank_card(request)
        .await
        .expect("answered by WeChat within the deadline")
        .into_inner();

    assert_eq!(reply.provider, "wechat");
    assert_eq!(reply.card_number, card.number);
    let (_, page) = gateway.admin_get("/metrics").await;
    assert_eq!(
        escalations(&page, "local", "wechat", "busy"),
        Some(1.0),
        "{page}"
    );

    // Named alone, the busy reader refuses at once, and says when to try again.
    let mut alone = tonic::Request::new(pb::RecognizeBankCardRequest {
        provider: "local".into(),
        ..upload(card.jpeg)
    });
    alone.set_timeout(short);
    let status = gateway
        .client
        .clone()
        .recognize_bank_card(alone)
        .await
        .expect_err("busy");
    common::assert_reason(
        &status,
        Code::ResourceExhausted,
        &format!("LOCAL_{}", ErrorKind::Busy.as_str()),
    );
    use tonic_types::StatusExt as _;
    assert!(status.get_details_retry_info().is_some(), "{status:?}");

    for read in queued {
        let reply = read.await.expect("task").expect("read").into_inner();
        assert_eq!(reply.provider, "local");
    }
}
