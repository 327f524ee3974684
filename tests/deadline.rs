//! The client's deadline bounds everything the gateway does for a call.

mod common;

use std::time::{Duration, Instant};

use common::{Gateway, error_info, png, upload};
use tonic::Code;
use vendor_sim::{Endpoint, Fault, SimConfig};

fn with_deadline<T>(message: T, timeout: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(timeout);
    request
}

#[tokio::test]
async fn upstream_that_never_answers_ends_in_deadline_exceeded_at_the_deadline() {
    let gateway = Gateway::start().await;
    gateway.sim.inject(Endpoint::BankCard, Fault::Hold, 1);

    let started = Instant::now();
    let status = gateway
        .client_without_local_deadline()
        .recognize_bank_card(with_deadline(upload(png(1)), Duration::from_millis(300)))
        .await
        .expect_err("deadline");

    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(error_info(&status).0, "DEADLINE_EXCEEDED");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(
        gateway.sim.count(Endpoint::BankCard),
        1,
        "the call did reach WeChat"
    );
}

#[tokio::test]
async fn token_fetch_that_never_answers_ends_in_deadline_exceeded() {
    let gateway = Gateway::start().await;
    gateway.sim.inject(Endpoint::StableToken, Fault::Hold, 1);

    let status = gateway
        .client_without_local_deadline()
        .parse_invoice_title(with_deadline(
            ocrgate::api::pb::ParseInvoiceTitleRequest {
                scan_text: "text".into(),
                ..Default::default()
            },
            Duration::from_millis(300),
        ))
        .await
        .expect_err("deadline");

    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(error_info(&status).0, "DEADLINE_EXCEEDED");
}

#[tokio::test]
async fn call_waiting_on_another_calls_token_fetch_still_ends_at_its_own_deadline() {
    let gateway = Gateway::start().await;
    gateway.sim.add_card_image(png(1), "6222020200112345678");
    gateway.sim.inject(Endpoint::StableToken, Fault::Hold, 1);
    // The first call, with no deadline, starts the one token fetch and waits on it.
    let patient = tokio::spawn({
        let mut client = gateway.client.clone();
        async move { client.recognize_bank_card(upload(png(1))).await }
    });
    gateway
        .sim
        .wait_for_requests(Endpoint::StableToken, 1)
        .await;

    let hurried = gateway
        .client_without_local_deadline()
        .recognize_bank_card(with_deadline(upload(png(1)), Duration::from_millis(200)))
        .await
        .expect_err("deadline");

    assert_eq!(hurried.code(), Code::DeadlineExceeded, "{hurried:?}");
    assert_eq!(error_info(&hurried).0, "DEADLINE_EXCEEDED");
    gateway.sim.release_held(1);
    let reply = patient.await.expect("task").expect("first call succeeds");
    assert_eq!(reply.into_inner().card_number, "6222020200112345678");
    assert_eq!(gateway.sim.count(Endpoint::StableToken), 1);
}

#[tokio::test]
async fn busy_retries_stop_when_the_next_backoff_would_pass_the_deadline() {
    // A long backoff and a short deadline: the gateway answers at once instead of sleeping past it.
    let gateway = Gateway::start_with(SimConfig::default(), |config| {
        config.providers.set("wechat.busy_backoff", "30s");
    })
    .await;
    gateway
        .sim
        .inject(Endpoint::BankCard, Fault::errcode(-1, "system error"), 10);

    let started = Instant::now();
    let status = gateway
        .client
        .clone()
        .recognize_bank_card(with_deadline(upload(png(1)), Duration::from_secs(5)))
        .await
        .expect_err("gives up");

    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(gateway.sim.count(Endpoint::BankCard), 1);
}

#[tokio::test]
async fn slow_upstream_within_the_deadline_succeeds() {
    let gateway = Gateway::start().await;
    gateway.sim.add_card_image(png(1), "6222020200112345678");
    gateway.sim.inject(
        Endpoint::BankCard,
        Fault::Delay(Duration::from_millis(50)),
        1,
    );

    let reply = gateway
        .client
        .clone()
        .recognize_bank_card(with_deadline(upload(png(1)), Duration::from_secs(10)))
        .await
        .expect("answered in time");

    assert_eq!(reply.into_inner().card_number, "6222020200112345678");
}
