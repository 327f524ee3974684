//! Callers who are known, limited and accountable: API keys, the RPCs, accounts and providers
//! each may use, rates and daily budgets (in the process, and in a real Redis shared by two
//! replicas), through the real gRPC API.

mod common;

use std::{collections::BTreeMap, time::Duration};

use common::{
    APP_ID, APP_SECRET, Gateway, GatewayProcess, assert_reason, caller, error_info, key_hash, png,
    sample, upload, with_key,
};
use ocrgate::{
    api::pb::{self, ocr_service_client::OcrServiceClient},
    auth::{CallerConfig, OnStoreError, Rpc},
    config::Config,
};
use tonic::{Code, Status, transport::Channel};
use tonic_types::StatusExt as _;
use vendor_sim::{SimConfig, Simulator};

const NUMBER: &str = "6222020200112345678";
const BILLING_KEY: &str = "billing-key-0123456789abcdef";

/// A gateway whose one caller is `billing`, configured by `tweak`.
async fn gateway_with(
    tweak: impl FnOnce(&mut CallerConfig),
    config_tweak: impl FnOnce(&mut Config),
) -> Gateway {
    let mut billing = caller(BILLING_KEY);
    tweak(&mut billing);
    let gateway = Gateway::start_with(SimConfig::default(), |config| {
        config.callers = BTreeMap::from([("billing".to_owned(), billing)]);
        config_tweak(config);
    })
    .await;
    gateway.sim.add_card_image(png(1), NUMBER);
    gateway
}

async fn card(client: &mut OcrServiceClient<Channel>, key: &str) -> Result<String, Status> {
    client
        .recognize_bank_card(with_key(upload(png(1)), key))
        .await
        .map(|answer| answer.into_inner().card_number)
}

#[tokio::test]
async fn with_callers_configured_a_call_needs_a_known_key() {
    let gateway = gateway_with(|_| {}, |_| {}).await;
    let mut client = gateway.client.clone();

    let status = client
        .recognize_bank_card(upload(png(1)))
        .await
        .expect_err("no key");
    assert_reason(&status, Code::Unauthenticated, "UNAUTHENTICATED");
    let status = card(&mut client, "a-guess").await.expect_err("unknown key");
    assert_reason(&status, Code::Unauthenticated, "UNAUTHENTICATED");
    assert!(!status.message().contains("a-guess"), "{status:?}");
    // Neither reached the vendor.
    assert_eq!(gateway.sim.count(vendor_sim::Endpoint::BankCard), 0);

    assert_eq!(card(&mut client, BILLING_KEY).await.expect("known"), NUMBER);

    // Health stays open to probes that carry no key.
    let health = tonic_health::pb::health_client::HealthClient::new(gateway.channel())
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .expect("health answers without a key");
    assert_eq!(health.into_inner().status, 1);

    let (_, page) = gateway.admin_get("/metrics").await;
    assert_eq!(
        sample(
            &page,
            "rpc_server_call_duration_seconds_count",
            &[("ocrgate_caller", "billing"), ("rpc_grpc_status_code", "0")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &page,
            "rpc_server_call_duration_seconds_count",
            &[("ocrgate_caller", "unauthenticated")]
        ),
        Some(2.0)
    );
}

#[tokio::test]
async fn a_caller_uses_only_its_rpcs_accounts_and_providers() {
    let gateway = gateway_with(
        |billing| {
            billing.rpcs = Some(vec![Rpc::RecognizeBankCard]);
            billing.providers = vec!["wechat".into()];
        },
        |_| {},
    )
    .await;
    let mut client = gateway.client.clone();

    let status = client
        .parse_invoice_title(with_key(
            pb::ParseInvoiceTitleRequest {
                scan_text: "text".into(),
                ..Default::default()
            },
            BILLING_KEY,
        ))
        .await
        .expect_err("not its RPC");
    assert_reason(&status, Code::PermissionDenied, "CALLER_PERMISSION_DENIED");

    let mut shop = upload(png(1));
    shop.account = "shop".into();
    let status = client
        .recognize_bank_card(with_key(shop, BILLING_KEY))
        .await
        .expect_err("not its account");
    assert_reason(&status, Code::PermissionDenied, "CALLER_PERMISSION_DENIED");
    assert!(status.message().contains("`shop`"), "{status:?}");

    let mut local = upload(png(1));
    local.provider = "local".into();
    let status = client
        .recognize_bank_card(with_key(local, BILLING_KEY))
        .await
        .expect_err("not a provider it may name");
    assert_reason(&status, Code::PermissionDenied, "CALLER_PERMISSION_DENIED");

    let mut wechat = upload(png(1));
    wechat.provider = "wechat".into();
    let answer = client
        .recognize_bank_card(with_key(wechat, BILLING_KEY))
        .await
        .expect("a provider it may name")
        .into_inner();
    assert_eq!(answer.card_number, NUMBER);
    assert_eq!(gateway.sim.count(vendor_sim::Endpoint::BankCard), 1);
}

#[tokio::test]
async fn a_caller_over_its_rate_is_told_when_to_retry() {
    let gateway = gateway_with(
        |billing| billing.rate_per_second = std::num::NonZeroU32::new(1),
        |_| {},
    )
    .await;
    let mut client = gateway.client.clone();

    assert_eq!(card(&mut client, BILLING_KEY).await.expect("first"), NUMBER);
    // One a second: of the next five, at least the first comes too soon.
    let mut refused = Vec::new();
    for _ in 0..5 {
        if let Err(status) = card(&mut client, BILLING_KEY).await {
            refused.push(status);
        }
    }
    let status = refused.first().expect("over the rate");
    assert_reason(status, Code::ResourceExhausted, "CALLER_RATE_LIMITED");
    let retry = status.get_details_retry_info().expect("RetryInfo");
    assert!(retry.retry_delay.expect("delay") <= Duration::from_secs(1));
    assert_eq!(
        error_info(status).1.get("caller").map(String::as_str),
        Some("billing")
    );
}

#[tokio::test]
async fn a_caller_past_its_daily_budget_waits_for_the_next_utc_day() {
    let gateway = gateway_with(|billing| billing.daily_budget = Some(2), |_| {}).await;
    let mut client = gateway.client.clone();

    for _ in 0..2 {
        assert_eq!(
            card(&mut client, BILLING_KEY).await.expect("in budget"),
            NUMBER
        );
    }
    let status = card(&mut client, BILLING_KEY)
        .await
        .expect_err("over budget");
    assert_reason(&status, Code::ResourceExhausted, "CALLER_BUDGET_EXHAUSTED");
    let retry = status
        .get_details_retry_info()
        .and_then(|retry| retry.retry_delay)
        .expect("RetryInfo");
    assert!(retry <= Duration::from_secs(24 * 3600), "{retry:?}");
    assert_eq!(gateway.sim.count(vendor_sim::Endpoint::BankCard), 2);
}

#[tokio::test]
async fn anonymous_calls_can_be_kept_beside_callers() {
    let gateway = gateway_with(|_| {}, |config| config.auth.anonymous = Some(true)).await;
    let answer = gateway.recognize(upload(png(1))).await.expect("anonymous");
    assert_eq!(answer.card_number, NUMBER);
}

/// A `redis-server` of the test's own on a free loopback port, stopped when dropped. `None`
/// (the test skips) when it is not installed, unless `TEST_REQUIRE_TOOLS` is set.
struct Redis {
    child: tokio::process::Child,
    url: String,
}

impl Redis {
    async fn start() -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let spawned = tokio::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(err) => {
                assert!(
                    std::env::var_os("TEST_REQUIRE_TOOLS").is_none(),
                    "redis-server: {err} (scripts/test.sh installs it)"
                );
                eprintln!("skipped: no redis-server");
                return None;
            }
        };
        // Ready once it says so on stdout.
        use tokio::io::AsyncBufReadExt as _;
        let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
        tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = lines.next_line().await.expect("redis output") {
                if line.contains("Ready to accept connections") {
                    return;
                }
            }
            panic!("redis-server exited");
        })
        .await
        .expect("redis-server starts");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Some(Self {
            child,
            url: format!("redis://127.0.0.1:{port}/0"),
        })
    }
}

#[tokio::test]
async fn two_replicas_share_one_daily_budget_in_redis() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let sim = Simulator::start(SimConfig::default())
        .await
        .expect("simulator");
    sim.add_app(APP_ID, APP_SECRET);
    sim.add_card_image(png(1), NUMBER);
    let hash = key_hash(BILLING_KEY);
    let env = [
        ("OCRGATE_CALLERS__BILLING__API_KEY_SHA256", hash.as_str()),
        ("OCRGATE_CALLERS__BILLING__DAILY_BUDGET", "3"),
        ("OCRGATE_STORE__REDIS_URL", redis.url.as_str()),
        ("OCRGATE_LOG_LEVEL", "debug"),
    ];
    let (first, second) = (
        GatewayProcess::start(&sim, &env).await,
        GatewayProcess::start(&sim, &env).await,
    );
    let (mut a, mut b) = (first.client().await, second.client().await);

    // Three calls between them, then each replica refuses: the count is shared.
    assert_eq!(card(&mut a, BILLING_KEY).await.expect("1"), NUMBER);
    assert_eq!(card(&mut b, BILLING_KEY).await.expect("2"), NUMBER);
    assert_eq!(card(&mut a, BILLING_KEY).await.expect("3"), NUMBER);
    for client in [&mut a, &mut b] {
        let status = card(client, BILLING_KEY).await.expect_err("over budget");
        assert_reason(&status, Code::ResourceExhausted, "CALLER_BUDGET_EXHAUSTED");
    }

    // The key is never logged, by either replica.
    for replica in [first, second] {
        let logs = replica.stop().await;
        assert!(logs.iter().any(|line| line.contains("ocrgate::audit")));
        assert!(!logs.iter().any(|line| line.contains(BILLING_KEY)));
    }
    drop(redis.child);
}

#[tokio::test]
async fn an_unreachable_budget_store_denies_or_allows_as_configured() {
    // A port nothing listens on: the connection is refused at once.
    let unused = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port");
    for (on_error, served) in [(OnStoreError::Deny, false), (OnStoreError::Allow, true)] {
        let gateway = gateway_with(
            |billing| billing.daily_budget = Some(100),
            |config| {
                config.store.redis_url = Some(format!("redis://{unused}/0").into());
                config.store.on_error = on_error;
            },
        )
        .await;
        let mut client = gateway.client.clone();
        let answer = card(&mut client, BILLING_KEY).await;
        let outcome = if served { "allowed" } else { "denied" };
        match answer {
            Ok(number) => {
                assert!(served, "{on_error:?}");
                assert_eq!(number, NUMBER);
            }
            Err(status) => {
                assert!(!served, "{on_error:?}: {status:?}");
                assert_reason(&status, Code::Unavailable, "BUDGET_STORE_UNAVAILABLE");
            }
        }
        let (_, page) = gateway.admin_get("/metrics").await;
        assert_eq!(
            sample(
                &page,
                "ocrgate_budget_store_failures_total",
                &[("outcome", outcome)]
            ),
            Some(1.0)
        );
    }
}

#[tokio::test]
async fn every_call_has_one_audit_line_whoever_ends_it() {
    let sim = Simulator::start(SimConfig::default())
        .await
        .expect("simulator");
    sim.add_app(APP_ID, APP_SECRET);
    sim.add_card_image(png(1), NUMBER);
    let hash = key_hash(BILLING_KEY);
    let env = [("OCRGATE_CALLERS__BILLING__API_KEY_SHA256", hash.as_str())];
    let gateway = GatewayProcess::start(&sim, &env).await;
    let mut client = gateway.client().await;

    // Served, refused by the auth layer, refused by validation, failed at the vendor.
    assert_eq!(
        card(&mut client, BILLING_KEY).await.expect("served"),
        NUMBER
    );
    let refused = card(&mut client, "not-a-known-key")
        .await
        .expect_err("refused");
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    let invalid = client
        .parse_invoice_title(with_key(
            pb::ParseInvoiceTitleRequest::default(),
            BILLING_KEY,
        ))
        .await
        .expect_err("no scan text");
    assert_eq!(invalid.code(), Code::InvalidArgument, "{invalid:?}");
    let failed = client
        .recognize_bank_card(with_key(upload(png(2)), BILLING_KEY))
        .await
        .expect_err("no card in it");
    assert_eq!(failed.code(), Code::NotFound, "{failed:?}");

    let audit = common::audit_lines(&gateway.stop().await);
    let said: Vec<(&str, &str, &str)> = audit
        .iter()
        .map(|entry| {
            (
                entry["message"].as_str().unwrap_or_default(),
                entry["rpc"].as_str().unwrap_or_default(),
                entry["caller"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        said,
        [
            ("call served", "RecognizeBankCard", "billing"),
            ("call refused", "RecognizeBankCard", "unauthenticated"),
            ("call failed", "ParseInvoiceTitle", "billing"),
            ("call failed", "RecognizeBankCard", "billing"),
        ],
        "{audit:#?}"
    );
    assert_eq!(
        audit[0]["card_number"], "622202*********5678",
        "{}",
        audit[0]
    );
    assert_eq!(audit[2]["code"], "InvalidArgument", "{}", audit[2]);
    assert_eq!(audit[3]["code"], "NotFound", "{}", audit[3]);
}
