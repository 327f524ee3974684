//! The admin port: Prometheus metrics after real calls, and the HTTP probes.

mod common;

use common::{Gateway, png, sample, upload};
use vendor_sim::{Endpoint, Fault};

#[tokio::test]
async fn metrics_count_calls_upstream_requests_tokens_and_quota_by_their_labels() {
    let gateway = Gateway::start().await;
    gateway.sim.add_card_image(png(1), "6222020200112345678");
    gateway.recognize(upload(png(1))).await.expect("recognised");
    gateway.recognize(upload(png(1))).await.expect("recognised");
    gateway
        .recognize(upload(png(2)))
        .await
        .expect_err("no card");
    gateway.sim.inject(
        Endpoint::BankCard,
        Fault::errcode(101003, "not enough market quota"),
        1,
    );
    gateway.recognize(upload(png(1))).await.expect_err("quota");
    gateway
        .parse_title("text")
        .await
        .expect_err("unknown title");

    let (status, page) = gateway.admin_get("/metrics").await;

    assert_eq!(status, 200);
    let card = [("rpc_method", "RecognizeBankCard")];
    let rpc = "rpc_server_call_duration_seconds_count";
    assert_eq!(
        sample(&page, rpc, &[card[0], ("rpc_grpc_status_code", "0")]),
        Some(2.0),
        "{page}"
    );
    assert_eq!(
        sample(&page, rpc, &[card[0], ("rpc_grpc_status_code", "5")]),
        Some(1.0)
    );
    assert_eq!(
        sample(&page, rpc, &[card[0], ("rpc_grpc_status_code", "8")]),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &page,
            rpc,
            &[
                ("rpc_method", "ParseInvoiceTitle"),
                ("rpc_grpc_status_code", "3")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(sample(&page, "ocrgate_rpc_in_flight", &card), Some(0.0));

    let upstream = "ocrgate_upstream_duration_seconds_count";
    let bank = ("endpoint", "cv/ocr/bankcard");
    assert_eq!(
        sample(
            &page,
            upstream,
            &[bank, ("errcode", "0"), ("provider", "wechat")]
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(&page, upstream, &[bank, ("errcode", "101001")]),
        Some(1.0)
    );
    assert_eq!(
        sample(&page, upstream, &[bank, ("errcode", "101003")]),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &page,
            upstream,
            &[("endpoint", "cgi-bin/stable_token"), ("errcode", "0")]
        ),
        Some(1.0)
    );

    // Each provider call by its outcome, as the layer around every provider times it.
    let provider = "ocrgate_provider_call_duration_seconds_count";
    let wechat_cards = [("provider", "wechat"), card[0]];
    for (outcome, calls) in [("ok", 2.0), ("not_found", 1.0), ("quota_exhausted", 1.0)] {
        assert_eq!(
            sample(
                &page,
                provider,
                &[wechat_cards[0], wechat_cards[1], ("outcome", outcome)]
            ),
            Some(calls),
            "{outcome}"
        );
    }

    // Accounts by their configured name: the page shows no app id.
    assert!(!page.contains(common::APP_ID), "{page}");
    let app = ("account", "default");
    assert_eq!(
        sample(
            &page,
            "ocrgate_token_fetches_total",
            &[app, ("outcome", "ok")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &page,
            "ocrgate_token_lookups_total",
            &[app, ("cache", "miss")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &page,
            "ocrgate_token_lookups_total",
            &[app, ("cache", "hit")]
        ),
        Some(4.0)
    );
    assert_eq!(
        sample(
            &page,
            "ocrgate_quota_exhausted_total",
            &[("provider", "wechat"), card[0]]
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn health_and_readiness_probes_answer_over_http() {
    let gateway = Gateway::start_without_credentials().await;

    assert_eq!(gateway.admin_get("/healthz").await.0, 200);
    assert_eq!(gateway.admin_get("/readyz").await.0, 200);
    assert_eq!(gateway.admin_get("/nope").await.0, 404);
}
