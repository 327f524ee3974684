//! Every row of WeChat's errcode table reaches the client as its gRPC status,
//! with a `google.rpc.ErrorInfo` carrying a stable reason and the vendor errcode.

mod common;

use common::{APP_SECRET, Gateway, error_info, png, upload};
use tonic::Code;
use vendor_sim::{Endpoint, Fault, SimConfig};

/// (errcode, errmsg, code, reason) for each row; retried rows repeat the fault for every try.
const TABLE: &[(i64, &str, Code, &str)] = &[
    (-1, "system error", Code::Unavailable, "WECHAT_UNAVAILABLE"),
    (
        -1000,
        "system error",
        Code::Unavailable,
        "WECHAT_UNAVAILABLE",
    ),
    (
        40001,
        "invalid credential",
        Code::Unauthenticated,
        "WECHAT_UNAUTHENTICATED",
    ),
    (
        40014,
        "invalid access_token",
        Code::Unauthenticated,
        "WECHAT_UNAUTHENTICATED",
    ),
    (
        42001,
        "access_token expired",
        Code::Unauthenticated,
        "WECHAT_UNAUTHENTICATED",
    ),
    (
        40013,
        "invalid appid",
        Code::FailedPrecondition,
        "WECHAT_MISCONFIGURED",
    ),
    (
        40125,
        "invalid appsecret",
        Code::FailedPrecondition,
        "WECHAT_MISCONFIGURED",
    ),
    (
        40243,
        "AppSecret frozen",
        Code::FailedPrecondition,
        "WECHAT_MISCONFIGURED",
    ),
    (
        41002,
        "appid missing",
        Code::FailedPrecondition,
        "WECHAT_MISCONFIGURED",
    ),
    (
        41004,
        "appsecret missing",
        Code::FailedPrecondition,
        "WECHAT_MISCONFIGURED",
    ),
    (
        40164,
        "invalid ip, not in whitelist",
        Code::PermissionDenied,
        "WECHAT_PERMISSION_DENIED",
    ),
    (
        89501,
        "ip waiting for approval",
        Code::PermissionDenied,
        "WECHAT_PERMISSION_DENIED",
    ),
    (
        89503,
        "ip waiting for approval",
        Code::PermissionDenied,
        "WECHAT_PERMISSION_DENIED",
    ),
    (
        89506,
        "ip blocked",
        Code::PermissionDenied,
        "WECHAT_PERMISSION_DENIED",
    ),
    (
        89507,
        "ip blocked for an hour",
        Code::PermissionDenied,
        "WECHAT_PERMISSION_DENIED",
    ),
    (
        48001,
        "api unauthorized",
        Code::PermissionDenied,
        "WECHAT_PERMISSION_DENIED",
    ),
    (
        50001,
        "user unauthorized",
        Code::PermissionDenied,
        "WECHAT_PERMISSION_DENIED",
    ),
    (
        61024,
        "not authorized",
        Code::PermissionDenied,
        "WECHAT_PERMISSION_DENIED",
    ),
    (
        45009,
        "reach max api daily quota limit",
        Code::ResourceExhausted,
        "WECHAT_QUOTA_EXHAUSTED",
    ),
    (
        45011,
        "api minute-quota reach limit",
        Code::ResourceExhausted,
        "WECHAT_QUOTA_EXHAUSTED",
    ),
    (
        101003,
        "not enough market quota",
        Code::ResourceExhausted,
        "WECHAT_QUOTA_EXHAUSTED",
    ),
    (
        41005,
        "media data missing",
        Code::InvalidArgument,
        "WECHAT_INVALID_INPUT",
    ),
    (
        40006,
        "invalid media size",
        Code::InvalidArgument,
        "WECHAT_INVALID_INPUT",
    ),
    (
        47001,
        "data format error",
        Code::InvalidArgument,
        "WECHAT_INVALID_INPUT",
    ),
    (
        40097,
        "invalid args",
        Code::InvalidArgument,
        "WECHAT_INVALID_INPUT",
    ),
    (
        72031,
        "invalid params",
        Code::InvalidArgument,
        "WECHAT_INVALID_INPUT",
    ),
    (
        101000,
        "invalid image url",
        Code::InvalidArgument,
        "WECHAT_INVALID_INPUT",
    ),
    (
        101001,
        "certificate not found",
        Code::NotFound,
        "WECHAT_NOT_FOUND",
    ),
    (
        101002,
        "image decode failed",
        Code::InvalidArgument,
        "WECHAT_INVALID_INPUT",
    ),
    (
        101002,
        "not enough market quota",
        Code::ResourceExhausted,
        "WECHAT_QUOTA_EXHAUSTED",
    ),
    (99999, "something new", Code::Unknown, "WECHAT_UNKNOWN"),
];

#[tokio::test]
async fn every_errcode_maps_to_its_status_with_error_info() {
    for &(errcode, errmsg, code, reason) in TABLE {
        let gateway = Gateway::start().await;
        // Enough for every retry the gateway may make.
        gateway
            .sim
            .inject(Endpoint::BankCard, Fault::errcode(errcode, errmsg), 10);

        let status = gateway.recognize(upload(png(1))).await.expect_err("fails");

        assert_eq!(status.code(), code, "errcode {errcode}: {status:?}");
        let (actual_reason, metadata) = error_info(&status);
        assert_eq!(actual_reason, reason, "errcode {errcode}");
        assert_eq!(metadata["errcode"], errcode.to_string());
        assert_eq!(metadata["provider"], "wechat");
        assert!(
            status.message().contains(errmsg),
            "errcode {errcode}: {}",
            status.message()
        );
    }
}

#[tokio::test]
async fn busy_errors_are_marked_retryable_and_others_not() {
    let gateway = Gateway::start().await;
    gateway
        .sim
        .inject(Endpoint::BankCard, Fault::errcode(-1, "system error"), 10);
    let status = gateway.recognize(upload(png(1))).await.expect_err("busy");
    assert_eq!(error_info(&status).1["retryable"], "true");

    let gateway = Gateway::start().await;
    gateway.sim.inject(
        Endpoint::BankCard,
        Fault::errcode(101001, "certificate not found"),
        1,
    );
    let status = gateway
        .recognize(upload(png(1)))
        .await
        .expect_err("not found");
    assert_eq!(error_info(&status).1["retryable"], "false");
}

#[tokio::test]
async fn wrong_app_secret_is_failed_precondition_from_the_token_endpoint() {
    let gateway = Gateway::start_with(SimConfig::default(), |config| {
        config.providers.set("wechat.app_secret", "not-the-secret");
    })
    .await;

    let status = gateway
        .recognize(upload(png(1)))
        .await
        .expect_err("refused");

    assert_eq!(status.code(), Code::FailedPrecondition);
    let (reason, metadata) = error_info(&status);
    assert_eq!(reason, "WECHAT_MISCONFIGURED");
    assert_eq!(metadata["errcode"], "40125");
    assert_eq!(gateway.sim.count(Endpoint::BankCard), 0);
}

#[tokio::test]
async fn unknown_app_id_is_failed_precondition() {
    let gateway = Gateway::start_with(SimConfig::default(), |config| {
        config.providers.set("wechat.app_id", "wx-nobody");
    })
    .await;

    let status = gateway.parse_title("text").await.expect_err("refused");

    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(error_info(&status).1["errcode"], "40013");
}

#[tokio::test]
async fn persistent_http_5xx_is_unavailable_after_bounded_retries() {
    let gateway = Gateway::start().await;
    gateway
        .sim
        .inject(Endpoint::BankCard, Fault::HttpStatus(502), 100);

    let status = gateway
        .recognize(upload(png(1)))
        .await
        .expect_err("unavailable");

    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(error_info(&status).0, "WECHAT_UNAVAILABLE");
    // One try plus the configured two retries, never more.
    assert_eq!(gateway.sim.count(Endpoint::BankCard), 3);
}

#[tokio::test]
async fn dropped_connection_is_retried_and_then_succeeds() {
    let gateway = Gateway::start().await;
    let image = png(1);
    gateway
        .sim
        .add_card_image(image.clone(), "6222020200112345678");
    gateway
        .sim
        .inject(Endpoint::BankCard, Fault::DropConnection, 1);

    let reply = gateway.recognize(upload(image)).await.expect("recovered");

    assert_eq!(reply.card_number, "6222020200112345678");
    assert_eq!(gateway.sim.count(Endpoint::BankCard), 2);
}

#[tokio::test]
async fn malformed_json_is_unknown_and_not_retried() {
    let gateway = Gateway::start().await;
    gateway
        .sim
        .inject(Endpoint::ScanTitle, Fault::MalformedJson, 1);

    let status = gateway.parse_title("text").await.expect_err("unreadable");

    assert_eq!(status.code(), Code::Unknown);
    assert_eq!(error_info(&status).0, "WECHAT_UNKNOWN");
    assert_eq!(
        gateway.sim.count(Endpoint::ScanTitle),
        1,
        "a reply that may have cost quota is not retried"
    );
}

#[tokio::test]
async fn no_secret_or_token_appears_in_error_messages() {
    let gateway = Gateway::start().await;
    gateway
        .sim
        .inject(Endpoint::BankCard, Fault::DropConnection, 100);
    let status = gateway
        .recognize(upload(png(1)))
        .await
        .expect_err("unavailable");
    let tokens = gateway.sim.issued_tokens();
    assert_eq!(tokens.len(), 1);
    let shown = format!("{status:?}");
    assert!(!shown.contains(&tokens[0]), "token leaked: {shown}");
    assert!(!shown.contains(APP_SECRET), "secret leaked: {shown}");
    assert!(!shown.contains("access_token="), "URL leaked: {shown}");
}
