//! The access token cache: one fetch per app, refresh on rejection, never a forced refresh.

mod common;

use std::time::Duration;

use common::{APP_ID, APP_SECRET, Gateway, error_info, png, upload};
use ocrgate::api::pb;
use tonic::Code;
use vendor_sim::{Endpoint, Fault, SimConfig};

const NUMBER: &str = "6222020200112345678";

async fn gateway_with_card() -> (Gateway, Vec<u8>) {
    let gateway = Gateway::start().await;
    let image = png(7);
    gateway.sim.add_card_image(image.clone(), NUMBER);
    (gateway, image)
}

#[tokio::test]
async fn token_is_fetched_once_and_reused_across_calls() {
    let (gateway, image) = gateway_with_card().await;

    for _ in 0..3 {
        gateway
            .recognize(upload(image.clone()))
            .await
            .expect("recognised");
        gateway
            .parse_title("text")
            .await
            .expect_err("no such title");
    }

    assert_eq!(gateway.sim.count(Endpoint::StableToken), 1);
    let tokens = gateway.sim.issued_tokens();
    for call in gateway
        .sim
        .requests()
        .iter()
        .filter(|r| r.endpoint == Endpoint::BankCard)
    {
        assert_eq!(call.query_param("access_token"), Some(tokens[0].as_str()));
    }
}

#[tokio::test]
async fn token_fetch_uses_stable_token_in_normal_mode() {
    let (gateway, image) = gateway_with_card().await;

    gateway.recognize(upload(image)).await.expect("recognised");

    let fetch = &gateway.sim.requests()[0];
    assert_eq!(fetch.endpoint, Endpoint::StableToken);
    assert_eq!(fetch.method, "POST");
    let body = fetch.json.as_ref().expect("JSON body");
    assert_eq!(body["grant_type"], "client_credential");
    assert_eq!(body["appid"], APP_ID);
    assert_eq!(body["secret"], APP_SECRET);
    assert_eq!(body["force_refresh"], false);
}

#[tokio::test]
async fn sixty_four_concurrent_calls_on_a_cold_cache_fetch_one_token() {
    let (gateway, image) = gateway_with_card().await;
    // Hold the one token fetch until every call is inside the gateway.
    gateway.sim.inject(Endpoint::StableToken, Fault::Hold, 1);

    let calls = (0..64).map(|_| gateway.recognize(upload(image.clone())));
    let release = async {
        gateway.wait_for_in_flight("RecognizeBankCard", 64).await;
        gateway.sim.release_held(1);
    };
    let (replies, ()) = tokio::join!(futures_util::future::join_all(calls), release);

    assert!(
        replies
            .iter()
            .all(|r| r.as_ref().is_ok_and(|r| r.card_number == NUMBER))
    );
    assert_eq!(gateway.sim.count(Endpoint::StableToken), 1);
    assert_eq!(gateway.sim.count(Endpoint::BankCard), 64);
}

#[tokio::test]
async fn sixty_four_concurrent_calls_after_revocation_refetch_one_token() {
    let (gateway, image) = gateway_with_card().await;
    gateway
        .recognize(upload(image.clone()))
        .await
        .expect("warm");
    gateway.sim.revoke_tokens(APP_ID);

    let calls = (0..64).map(|_| gateway.recognize(upload(image.clone())));
    let replies = futures_util::future::join_all(calls).await;

    for reply in &replies {
        assert_eq!(reply.as_ref().expect("recovered").card_number, NUMBER);
    }
    assert_eq!(
        gateway.sim.count(Endpoint::StableToken),
        2,
        "one fetch to warm, one after revocation"
    );
}

#[tokio::test]
async fn token_revoked_upstream_is_refreshed_and_the_call_succeeds() {
    let (gateway, image) = gateway_with_card().await;
    gateway
        .recognize(upload(image.clone()))
        .await
        .expect("warm");
    gateway.sim.revoke_tokens(APP_ID);

    let reply = gateway.recognize(upload(image)).await.expect("recovered");

    assert_eq!(reply.card_number, NUMBER);
    let tokens = gateway.sim.issued_tokens();
    assert_eq!(tokens.len(), 2);
    let last = gateway.sim.requests().pop().expect("calls");
    assert_eq!(last.query_param("access_token"), Some(tokens[1].as_str()));
}

#[tokio::test]
async fn expired_token_is_refreshed_and_the_call_succeeds() {
    let (gateway, image) = gateway_with_card().await;
    gateway
        .parse_title("warm")
        .await
        .expect_err("no such title");
    gateway.sim.expire_tokens(APP_ID);

    gateway.recognize(upload(image)).await.expect("recovered");

    assert_eq!(gateway.sim.count(Endpoint::StableToken), 2);
}

#[tokio::test]
async fn token_rejected_twice_is_refreshed_once_then_unauthenticated() {
    let (gateway, image) = gateway_with_card().await;
    gateway.sim.inject(
        Endpoint::BankCard,
        Fault::errcode(40001, "invalid credential"),
        100,
    );

    let status = gateway
        .recognize(upload(image))
        .await
        .expect_err("gives up");

    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(
        gateway.sim.count(Endpoint::BankCard),
        2,
        "one retry, no loop"
    );
    assert_eq!(gateway.sim.count(Endpoint::StableToken), 2);
    for fetch in gateway
        .sim
        .requests()
        .iter()
        .filter(|r| r.endpoint == Endpoint::StableToken)
    {
        assert_eq!(
            fetch.json.as_ref().expect("body")["force_refresh"],
            false,
            "never forced"
        );
    }
}

#[tokio::test]
async fn busy_once_is_retried_and_succeeds() {
    let (gateway, image) = gateway_with_card().await;
    gateway
        .sim
        .inject(Endpoint::BankCard, Fault::errcode(-1, "system error"), 1);

    let reply = gateway.recognize(upload(image)).await.expect("recovered");

    assert_eq!(reply.card_number, NUMBER);
    assert_eq!(gateway.sim.count(Endpoint::BankCard), 2);
}

#[tokio::test]
async fn persistent_busy_gives_up_after_the_retry_cap() {
    let (gateway, image) = gateway_with_card().await;
    gateway
        .sim
        .inject(Endpoint::BankCard, Fault::errcode(-1, "system error"), 100);

    let status = gateway
        .recognize(upload(image))
        .await
        .expect_err("gives up");

    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(
        gateway.sim.count(Endpoint::BankCard),
        3,
        "one try and two retries"
    );
}

#[tokio::test]
async fn busy_token_endpoint_is_retried() {
    let (gateway, image) = gateway_with_card().await;
    gateway
        .sim
        .inject(Endpoint::StableToken, Fault::errcode(-1, "system error"), 1);

    gateway.recognize(upload(image)).await.expect("recovered");

    assert_eq!(gateway.sim.count(Endpoint::StableToken), 2);
}

#[tokio::test]
async fn short_lived_token_is_cached_for_half_its_life() {
    // WeChat may hand out a token with only 300 s left; a 300 s margin must not make it uncacheable.
    let gateway = Gateway::start_with(
        SimConfig {
            token_lifetime: Duration::from_secs(300),
            ..SimConfig::default()
        },
        |_| {},
    )
    .await;
    gateway.sim.add_card_image(png(7), NUMBER);

    for _ in 0..3 {
        gateway.recognize(upload(png(7))).await.expect("recognised");
    }

    assert_eq!(gateway.sim.count(Endpoint::StableToken), 1);
}

#[tokio::test]
async fn legacy_token_endpoint_is_used_when_opted_in() {
    let gateway = Gateway::start_with(SimConfig::default(), |config| {
        config.providers.set("wechat.token_endpoint", "legacy");
    })
    .await;
    gateway.sim.add_card_image(png(7), NUMBER);

    gateway.recognize(upload(png(7))).await.expect("recognised");
    gateway.recognize(upload(png(7))).await.expect("recognised");

    assert_eq!(gateway.sim.count(Endpoint::StableToken), 0);
    assert_eq!(gateway.sim.count(Endpoint::Token), 1);
    let fetch = &gateway.sim.requests()[0];
    assert_eq!(fetch.method, "GET");
    assert_eq!(fetch.query_param("appid"), Some(APP_ID));
}

#[tokio::test]
async fn each_account_has_its_own_token_and_a_request_can_name_one() {
    let gateway = Gateway::start_with(SimConfig::default(), |config| {
        config
            .providers
            .set("wechat.accounts.shop.app_id", "wx-shop");
        config
            .providers
            .set("wechat.accounts.shop.app_secret", "shop-secret");
    })
    .await;
    gateway.sim.add_app("wx-shop", "shop-secret");
    gateway.sim.add_card_image(png(7), NUMBER);

    let mut request = upload(png(7));
    request.account = "shop".into();
    gateway.recognize(request).await.expect("shop account");
    gateway
        .recognize(upload(png(7)))
        .await
        .expect("default account");

    let fetched: Vec<String> = gateway
        .sim
        .requests()
        .iter()
        .filter(|r| r.endpoint == Endpoint::StableToken)
        .map(|r| {
            r.json.as_ref().expect("body")["appid"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(fetched, ["wx-shop", APP_ID]);
}

#[tokio::test]
async fn unknown_account_is_failed_precondition_naming_the_configured_ones() {
    let gateway = Gateway::start().await;

    let status = gateway
        .client
        .clone()
        .parse_invoice_title(pb::ParseInvoiceTitleRequest {
            scan_text: "text".into(),
            account: "nope".into(),
            ..Default::default()
        })
        .await
        .expect_err("refused");

    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(error_info(&status).0, "WECHAT_MISCONFIGURED");
    assert!(
        status.message().contains("`nope`") && status.message().contains("default"),
        "{}",
        status.message()
    );
    assert!(gateway.sim.requests().is_empty());
}
