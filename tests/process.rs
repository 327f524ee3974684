//! The real binary as a process: configured by environment, stopped by SIGTERM, logging safely.

mod common;

use std::sync::{Arc, Mutex};

use common::{APP_ID, APP_SECRET, GatewayProcess, png, upload};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
    trace_service_server::{TraceService, TraceServiceServer},
};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use vendor_sim::{Endpoint, Fault, SimConfig, Simulator};

const NUMBER: &str = "6222020200112345678";

#[tokio::test]
async fn sigterm_turns_health_not_serving_lets_the_call_in_flight_finish_and_exits_zero() {
    let sim = Simulator::start(SimConfig::default())
        .await
        .expect("simulator");
    sim.add_app(APP_ID, APP_SECRET);
    sim.add_card_image(png(1), NUMBER);
    sim.inject(Endpoint::BankCard, Fault::Hold, 1);
    let gateway = GatewayProcess::start(&sim, &[]).await;

    let mut health = HealthClient::new(gateway.channel());
    let mut watch = health
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("watch")
        .into_inner();
    let first = watch.message().await.expect("status").expect("one");
    assert_eq!(first.status(), ServingStatus::Serving);

    let mut client = gateway.client().await;
    let in_flight = tokio::spawn(async move { client.recognize_bank_card(upload(png(1))).await });
    sim.wait_for_requests(Endpoint::BankCard, 1).await;

    let readyz = format!("http://{}/readyz", gateway.admin_address);
    assert_eq!(reqwest::get(&readyz).await.expect("readyz").status(), 200);

    gateway.terminate();
    let next = watch.message().await.expect("status").expect("one");
    assert_eq!(next.status(), ServingStatus::NotServing);
    drop(watch);
    assert_eq!(
        reqwest::get(&readyz).await.expect("readyz").status(),
        503,
        "draining"
    );

    sim.release_held(1);
    let reply = in_flight
        .await
        .expect("task")
        .expect("the call in flight completes");
    assert_eq!(reply.into_inner().card_number, NUMBER);
    let (status, _logs) = gateway.wait().await;
    assert!(status.success(), "exit status {status:?}");
}

#[tokio::test]
async fn debug_logs_never_contain_the_secret_a_token_or_a_full_card_number() {
    let sim = Simulator::start(SimConfig::default())
        .await
        .expect("simulator");
    sim.add_app(APP_ID, APP_SECRET);
    sim.add_card_image(png(1), NUMBER);
    let gateway = GatewayProcess::start(&sim, &[("RUST_LOG", "debug")]).await;
    let mut client = gateway.client().await;

    // Success, a token rejected and refreshed, busy retries, a broken connection, vendor errors.
    client
        .recognize_bank_card(upload(png(1)))
        .await
        .expect("recognised");
    sim.revoke_tokens(APP_ID);
    client
        .recognize_bank_card(upload(png(1)))
        .await
        .expect("recovered");
    sim.inject(Endpoint::BankCard, Fault::errcode(-1, "system error"), 1);
    sim.inject(Endpoint::BankCard, Fault::DropConnection, 1);
    client
        .recognize_bank_card(upload(png(1)))
        .await
        .expect("recovered");
    sim.inject(
        Endpoint::ScanTitle,
        Fault::errcode(40001, "invalid credential"),
        2,
    );
    client
        .parse_invoice_title(ocrgate::api::pb::ParseInvoiceTitleRequest {
            scan_text: "https://mp.weixin.qq.com/intp/invoice/usertitlewxa?invoice_key=k".into(),
            ..Default::default()
        })
        .await
        .expect_err("unauthenticated");
    client
        .recognize_bank_card(upload(png(9)))
        .await
        .expect_err("no card");

    let logs = gateway.stop().await;

    let tokens = sim.issued_tokens();
    assert_eq!(tokens.len(), 2, "a first token and the refreshed one");
    let all = logs.join("\n");
    assert!(
        logs.len() > 10,
        "debug logging produced too little to judge: {all}"
    );
    assert!(
        all.contains("622202*********5678"),
        "the masked number is logged at debug: {all}"
    );
    for line in &logs {
        assert!(!line.contains(APP_SECRET), "secret in: {line}");
        for token in &tokens {
            assert!(!line.contains(token.as_str()), "token in: {line}");
        }
        assert!(!line.contains(NUMBER), "card number in: {line}");
        assert!(!line.contains("access_token="), "token URL in: {line}");
    }
}

#[tokio::test]
async fn config_file_named_by_ocrgate_config_defines_accounts_a_request_can_pick() {
    let sim = Simulator::start(SimConfig::default())
        .await
        .expect("simulator");
    sim.add_app(APP_ID, APP_SECRET);
    sim.add_app("wx-shop", "shop-secret");
    sim.add_card_image(png(1), NUMBER);
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("ocrgate.toml");
    std::fs::write(
        &file,
        "[wechat.accounts.shop]\napp_id = \"wx-shop\"\napp_secret = \"shop-secret\"\n",
    )
    .expect("config written");
    let gateway = GatewayProcess::start(
        &sim,
        &[("OCRGATE_CONFIG", file.to_str().expect("utf-8 path"))],
    )
    .await;

    let mut request = upload(png(1));
    request.account = "shop".into();
    let reply = gateway
        .client()
        .await
        .recognize_bank_card(request)
        .await
        .expect("recognised with the shop account");

    assert_eq!(reply.into_inner().card_number, NUMBER);
    let fetch = &sim.requests()[0];
    assert_eq!(fetch.json.as_ref().expect("body")["appid"], "wx-shop");
    gateway.stop().await;
}

#[tokio::test]
async fn invalid_configuration_stops_the_process_with_a_clear_message() {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_ocrgate"))
        .arg("serve")
        .env_clear()
        .env("OCRGATE_WECHAT_APP_ID", APP_ID)
        .env("OCRGATE_LISTEN", "127.0.0.1:0")
        .env("OCRGATE_ADMIN_LISTEN", "127.0.0.1:0")
        .output()
        .await
        .expect("runs");

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("OCRGATE_WECHAT_APP_SECRET"), "{stderr}");
}

/// An OTLP/gRPC trace receiver on loopback that keeps what it is sent.
#[derive(Clone, Default)]
struct TraceReceiver(Arc<Mutex<Vec<ExportTraceServiceRequest>>>);

#[tonic::async_trait]
impl TraceService for TraceReceiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.lock().expect("lock").push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

#[tokio::test]
async fn spans_are_exported_over_otlp_to_the_endpoint_the_standard_variables_name() {
    let receiver = TraceReceiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(receiver.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let sim = Simulator::start(SimConfig::default())
        .await
        .expect("simulator");
    sim.add_app(APP_ID, APP_SECRET);
    sim.add_card_image(png(1), NUMBER);
    let gateway = GatewayProcess::start(
        &sim,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_SERVICE_NAME", "ocrgate-e2e"),
            ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test"),
        ],
    )
    .await;
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    recognize_in_trace(&gateway, &format!("00-{trace_id}-b7ad6b7169203331-01")).await;
    gateway.stop().await;
    // Spans are flushed on shutdown, before the process exits.
    let exports = receiver.0.lock().expect("lock").clone();
    let resource_spans: Vec<_> = exports.iter().flat_map(|e| &e.resource_spans).collect();
    assert!(!resource_spans.is_empty(), "nothing exported");
    let resource = resource_spans[0].resource.as_ref().expect("resource");
    let resource_attribute = |key: &str| {
        resource
            .attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref())
            .map(|value| format!("{value:?}"))
            .unwrap_or_default()
    };
    assert!(resource_attribute("service.name").contains("ocrgate-e2e"));
    assert!(resource_attribute("deployment.environment").contains("test"));
    let spans: Vec<_> = resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .collect();
    let server = spans
        .iter()
        .find(|span| span.name == "ocrgate.v1.OcrService/RecognizeBankCard")
        .expect("server span exported");
    let hex: String = server.trace_id.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, trace_id, "the client's trace");
    assert!(spans.iter().any(|span| span.name == "token fetch"));
}

#[tokio::test]
async fn app_secret_can_come_from_a_file_as_a_mounted_secret_provides_it() {
    let sim = Simulator::start(SimConfig::default())
        .await
        .expect("simulator");
    sim.add_app(APP_ID, APP_SECRET);
    sim.add_card_image(png(1), NUMBER);
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("app-secret");
    std::fs::write(&file, format!("{APP_SECRET}\n")).expect("secret written");
    let gateway = GatewayProcess::start(
        &sim,
        &[
            ("OCRGATE_WECHAT_APP_SECRET", ""),
            (
                "OCRGATE_WECHAT_APP_SECRET_FILE",
                file.to_str().expect("utf-8"),
            ),
        ],
    )
    .await;

    let reply = gateway
        .client()
        .await
        .recognize_bank_card(upload(png(1)))
        .await
        .expect("recognised with the secret from the file");

    assert_eq!(reply.into_inner().card_number, NUMBER);
    gateway.stop().await;
}

#[tokio::test]
async fn check_config_reports_a_valid_configuration_and_refuses_an_invalid_one() {
    let run = |env: &[(&str, &str)]| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_ocrgate"))
            .arg("check-config")
            .env_clear()
            .envs(env.iter().copied())
            .output()
    };

    let valid = run(&[
        ("OCRGATE_WECHAT_APP_ID", APP_ID),
        ("OCRGATE_WECHAT_APP_SECRET", APP_SECRET),
    ])
    .await
    .expect("runs");
    let invalid = run(&[("OCRGATE_WECHAT__TOKEN_ENDPOINT", "sometimes")])
        .await
        .expect("runs");

    assert!(valid.status.success());
    let summary = String::from_utf8_lossy(&valid.stdout);
    assert!(summary.contains("wechat (accounts: default)"), "{summary}");
    assert!(!summary.contains(APP_SECRET));
    assert_eq!(invalid.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&invalid.stderr).contains("sometimes"));

    let unbounded = run(&[("OCRGATE_LIMITS__BODY_TIMEOUT", "0s")])
        .await
        .expect("runs");
    assert_eq!(unbounded.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&unbounded.stderr)
            .contains("limits.body_timeout must be more than zero")
    );
    let unsure = run(&[("OCRGATE_LOCAL__MIN_CONFIDENCE", "1.25")])
        .await
        .expect("runs");
    assert_eq!(unsure.status.code(), Some(1));
    let said = String::from_utf8_lossy(&unsure.stderr);
    assert!(
        said.contains("local.min_confidence: invalid value, expected a confidence from 0 to 1"),
        "{said}"
    );
    assert!(!said.contains("1.25"), "{said}");
    let sized = run(&[("OCRGATE_LIMITS__REQUEST_MEMORY", "256 MiB")])
        .await
        .expect("runs");
    assert!(
        String::from_utf8_lossy(&sized.stdout)
            .contains("request memory 256.0 MiB (32.0 MiB per client)")
    );
}

#[tokio::test]
async fn a_clients_trace_reaches_the_vendor_with_no_exporter_configured() {
    let sim = Simulator::start(SimConfig::default())
        .await
        .expect("simulator");
    sim.add_app(APP_ID, APP_SECRET);
    sim.add_card_image(png(1), NUMBER);
    // No OTEL_* variable at all: the process exports nothing.
    let gateway = GatewayProcess::start(&sim, &[]).await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    recognize_in_trace(&gateway, &format!("00-{trace_id}-00f067aa0ba902b7-01")).await;

    let call = sim
        .requests()
        .into_iter()
        .find(|r| r.endpoint == vendor_sim::Endpoint::BankCard)
        .expect("bank card call");
    let traceparent = call.traceparent.expect("traceparent sent to the vendor");
    assert!(
        traceparent.starts_with(&format!("00-{trace_id}-")),
        "{traceparent}"
    );
    gateway.stop().await;
}

/// Reads the simulator's card through `gateway`, as a call whose client sent `traceparent`.
async fn recognize_in_trace(gateway: &GatewayProcess, traceparent: &str) {
    let mut request = tonic::Request::new(upload(png(1)));
    request
        .metadata_mut()
        .insert("traceparent", traceparent.parse().expect("ascii"));
    gateway
        .client()
        .await
        .recognize_bank_card(request)
        .await
        .expect("recognised");
}

#[tokio::test]
async fn a_failed_call_has_one_log_line_with_its_reason_at_the_level_of_whose_failure_it_is() {
    let sim = Simulator::start(SimConfig::default())
        .await
        .expect("simulator");
    sim.add_app(APP_ID, APP_SECRET);
    // No card in the photo: the caller's outcome. Then a vendor failing every try: the gateway's.
    sim.inject(
        Endpoint::BankCard,
        Fault::errcode(101001, "no card found"),
        1,
    );
    let gateway = GatewayProcess::start(&sim, &[("OCRGATE_WECHAT__BUSY_RETRIES", "0")]).await;
    let mut client = gateway.client().await;
    let no_card = client
        .recognize_bank_card(upload(png(1)))
        .await
        .expect_err("no card");
    assert_eq!(no_card.code(), tonic::Code::NotFound);
    sim.inject(Endpoint::BankCard, Fault::errcode(-1, "system error"), 1);
    let busy = client
        .recognize_bank_card(upload(png(2)))
        .await
        .expect_err("vendor failed");
    assert_eq!(busy.code(), tonic::Code::Unavailable, "{busy:?}");

    let logs: Vec<serde_json::Value> = gateway
        .stop()
        .await
        .iter()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    for (error, level) in [("no card found", "INFO"), ("system error", "WARN")] {
        let lines: Vec<_> = logs
            .iter()
            .filter(|entry| entry.to_string().contains(error))
            .collect();
        assert_eq!(lines.len(), 1, "one line for `{error}`: {lines:?}");
        let line = lines[0];
        assert_eq!(line["target"], "ocrgate::audit", "{line}");
        assert_eq!(line["message"], "call failed", "{line}");
        assert_eq!(line["level"], level, "{line}");
        assert!(
            line["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "{line}"
        );
    }
}

#[tokio::test]
async fn a_call_that_runs_out_of_time_has_one_audit_line_saying_so() {
    let sim = Simulator::start(SimConfig::default())
        .await
        .expect("simulator");
    sim.add_app(APP_ID, APP_SECRET);
    // The vendor never answers: whichever ends the call first, the provider's own deadline or
    // the gateway's deadline layer, the call ran out of time.
    sim.inject(Endpoint::BankCard, Fault::Hold, 1);
    let gateway = GatewayProcess::start(&sim, &[]).await;
    let mut request = tonic::Request::new(upload(png(1)));
    request.set_timeout(std::time::Duration::from_millis(500));
    let status = common::client_without_local_deadline(gateway.address)
        .recognize_bank_card(request)
        .await
        .expect_err("out of time");
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
    sim.release_held(1);

    let audit = common::audit_lines(&gateway.stop().await);
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0]["code"], "DeadlineExceeded", "{}", audit[0]);
    assert_eq!(audit[0]["level"], "WARN", "{}", audit[0]);
}

#[tokio::test]
async fn every_call_answered_before_sigterm_has_its_whole_audit_line_in_the_log() {
    // Lines are written by a thread of their own, many to a write: a burst of calls answered just
    // before SIGTERM must still all be written, each line whole, before the process exits.
    const CALLS: usize = 400;
    const SCAN: &str = "https://mp.weixin.qq.com/intp/invoice/usertitlewxa?invoice_key=k";
    let sim = Simulator::start(SimConfig::default())
        .await
        .expect("simulator");
    sim.add_app(APP_ID, APP_SECRET);
    sim.add_invoice_title(SCAN, serde_json::json!({"title_type": 0, "title": "ACME"}));
    let gateway = GatewayProcess::start(&sim, &[]).await;
    let client = gateway.client().await;
    let calls = (0..CALLS).map(|_| {
        let mut client = client.clone();
        tokio::spawn(async move {
            client
                .parse_invoice_title(ocrgate::api::pb::ParseInvoiceTitleRequest {
                    scan_text: SCAN.into(),
                    ..Default::default()
                })
                .await
        })
    });
    for call in futures_util::future::join_all(calls).await {
        call.expect("task").expect("title");
    }

    let logs = gateway.stop().await;
    let entries: Vec<serde_json::Value> = logs
        .iter()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|_| panic!("a log line that is not one whole JSON object: {line}"))
        })
        .collect();
    // The line logged as the server stops, just before the process exits, is written too.
    assert_eq!(
        entries.last().map(|entry| &entry["message"]),
        Some(&serde_json::json!("stopped")),
        "{:?}",
        logs.last()
    );
    let audit = common::audit_lines(&logs);
    assert_eq!(audit.len(), CALLS, "one audit line a call");
    assert!(
        audit
            .iter()
            .all(|line| line["rpc"] == "ParseInvoiceTitle" && line["code"] == "Ok"),
        "{:?}",
        audit.first()
    );
}
