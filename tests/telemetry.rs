//! Traces follow a call from the client's `traceparent` to WeChat; metrics count what happened.

mod common;

use std::{
    collections::HashMap,
    sync::{Arc, OnceLock},
};

use common::{APP_ID, APP_SECRET, Gateway, config_for, png, upload};
use ocrgate::telemetry::{LogFormat, Telemetry};
use opentelemetry::{
    Value,
    trace::{SpanId, SpanKind, Status, TraceId},
};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData};
use vendor_sim::{Endpoint, Fault, SimConfig, Simulator};

const NUMBER: &str = "6222020200112345678";

/// One pipeline for this test binary: `tracing` has one global subscriber.
fn telemetry() -> &'static (Arc<Telemetry>, InMemorySpanExporter) {
    static TELEMETRY: OnceLock<(Arc<Telemetry>, InMemorySpanExporter)> = OnceLock::new();
    TELEMETRY.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let mut telemetry = Telemetry::with_span_exporter(exporter.clone()).expect("telemetry");
        telemetry
            .install(LogFormat::Text, "off")
            .expect("installed");
        (Arc::new(telemetry), exporter)
    })
}

async fn traced_gateway() -> Gateway {
    let sim = Simulator::start(SimConfig::default())
        .await
        .expect("simulator");
    sim.add_app(APP_ID, APP_SECRET);
    sim.add_card_image(png(1), NUMBER);
    let config = config_for(&sim);
    Gateway::serve_with_telemetry(sim, config, telemetry().0.clone()).await
}

/// A client-side parent: a fresh trace id for each test, so tests running at once stay apart.
fn client_parent(test: u8) -> (TraceId, SpanId, String) {
    let trace_id =
        TraceId::from_hex(&format!("4bf92f3577b34da6a3ce929d0e0e47{test:02x}")).expect("hex");
    let span_id = SpanId::from_hex("00f067aa0ba902b7").expect("hex");
    (trace_id, span_id, format!("00-{trace_id}-{span_id}-01"))
}

fn with_traceparent<T>(message: T, traceparent: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("traceparent", traceparent.parse().expect("ascii"));
    request
}

fn spans_of(trace_id: TraceId) -> Vec<SpanData> {
    telemetry()
        .1
        .get_finished_spans()
        .expect("spans")
        .into_iter()
        .filter(|span| span.span_context.trace_id() == trace_id)
        .collect()
}

fn named<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    spans
        .iter()
        .find(|span| span.name == name)
        .unwrap_or_else(|| {
            let names: Vec<_> = spans.iter().map(|s| s.name.as_ref()).collect();
            panic!("no span {name:?} among {names:?}")
        })
}

fn attributes(span: &SpanData) -> HashMap<String, Value> {
    span.attributes
        .iter()
        .map(|kv| (kv.key.to_string(), kv.value.clone()))
        .collect()
}

fn attribute(span: &SpanData, key: &str) -> String {
    attributes(span)
        .get(key)
        .unwrap_or_else(|| panic!("span {:?} has no {key}: {:?}", span.name, span.attributes))
        .to_string()
}

fn http_span<'a>(spans: &'a [SpanData], path: &str) -> &'a SpanData {
    spans
        .iter()
        .find(|span| span.span_kind == SpanKind::Client && attribute_is(span, "url.path", path))
        .unwrap_or_else(|| panic!("no client span for {path}"))
}

fn attribute_is(span: &SpanData, key: &str, value: &str) -> bool {
    attributes(span)
        .get(key)
        .is_some_and(|v| v.to_string() == value)
}

#[tokio::test]
async fn one_call_is_one_trace_from_the_client_through_the_provider_and_token_fetch_to_wechat() {
    let gateway = traced_gateway().await;
    let (trace_id, client_span, traceparent) = client_parent(1);

    gateway
        .client
        .clone()
        .recognize_bank_card(with_traceparent(upload(png(1)), &traceparent))
        .await
        .expect("recognised");

    let spans = spans_of(trace_id);
    let server = named(&spans, "ocrgate.v1.OcrService/RecognizeBankCard");
    assert_eq!(server.span_kind, SpanKind::Server);
    assert_eq!(
        server.parent_span_id, client_span,
        "child of the client's span"
    );
    assert_eq!(attribute(server, "rpc.system"), "grpc");
    assert_eq!(attribute(server, "rpc.service"), "ocrgate.v1.OcrService");
    assert_eq!(attribute(server, "rpc.method"), "RecognizeBankCard");
    assert_eq!(attribute(server, "rpc.grpc.status_code"), "0");
    // How the result cache served it (off in these tests) is on the server span.
    assert_eq!(attribute(server, "ocrgate.result_cache"), "bypassed");

    let provider = named(&spans, "wechat RecognizeBankCard");
    assert_eq!(provider.parent_span_id, server.span_context.span_id());
    assert_eq!(attribute(provider, "provider.name"), "wechat");
    assert_eq!(
        attribute(provider, "provider.operation"),
        "RecognizeBankCard"
    );
    assert_eq!(attribute(provider, "provider.retries"), "0");

    let lookup = named(&spans, "token lookup");
    assert_eq!(lookup.parent_span_id, provider.span_context.span_id());
    assert_eq!(attribute(lookup, "token.cache_hit"), "false");
    let fetch = named(&spans, "token fetch");
    assert_eq!(fetch.parent_span_id, lookup.span_context.span_id());

    let token_http = http_span(&spans, "/cgi-bin/stable_token");
    assert_eq!(token_http.parent_span_id, fetch.span_context.span_id());
    assert_eq!(attribute(token_http, "http.request.method"), "POST");
    assert_eq!(attribute(token_http, "server.address"), "127.0.0.1");
    assert_eq!(attribute(token_http, "http.response.status_code"), "200");

    let card_http = http_span(&spans, "/cv/ocr/bankcard");
    assert_eq!(card_http.parent_span_id, provider.span_context.span_id());
    assert_eq!(attribute(card_http, "vendor.code"), "0");

    // WeChat (the simulator) saw the same trace, with our HTTP span as the parent.
    let call = gateway
        .sim
        .requests()
        .into_iter()
        .find(|r| r.endpoint == Endpoint::BankCard)
        .expect("bank card call");
    assert_eq!(
        call.traceparent.as_deref(),
        Some(format!("00-{trace_id}-{}-01", card_http.span_context.span_id()).as_str())
    );
}

#[tokio::test]
async fn a_second_call_records_a_cache_hit_and_no_fetch() {
    let gateway = traced_gateway().await;
    gateway.recognize(upload(png(1))).await.expect("warm");
    let (trace_id, _, traceparent) = client_parent(2);

    gateway
        .client
        .clone()
        .recognize_bank_card(with_traceparent(upload(png(1)), &traceparent))
        .await
        .expect("recognised");

    let spans = spans_of(trace_id);
    assert_eq!(
        attribute(named(&spans, "token lookup"), "token.cache_hit"),
        "true"
    );
    assert!(spans.iter().all(|span| span.name != "token fetch"));
}

#[tokio::test]
async fn a_failing_call_records_the_error_and_its_status_on_every_span() {
    let gateway = traced_gateway().await;
    gateway.sim.inject(
        Endpoint::BankCard,
        Fault::errcode(101001, "certificate not found"),
        1,
    );
    let (trace_id, _, traceparent) = client_parent(3);

    let status = gateway
        .client
        .clone()
        .recognize_bank_card(with_traceparent(upload(png(1)), &traceparent))
        .await
        .expect_err("no card");

    assert_eq!(status.code(), tonic::Code::NotFound);
    let spans = spans_of(trace_id);
    let server = named(&spans, "ocrgate.v1.OcrService/RecognizeBankCard");
    assert_eq!(attribute(server, "rpc.grpc.status_code"), "5");
    assert_eq!(attribute(server, "ocrgate.result_cache"), "bypassed");
    assert!(
        matches!(server.status, Status::Error { .. }),
        "{:?}",
        server.status
    );
    let provider = named(&spans, "wechat RecognizeBankCard");
    assert!(
        matches!(provider.status, Status::Error { .. }),
        "{:?}",
        provider.status
    );
    assert!(
        provider.events.iter().any(|event| event
            .attributes
            .iter()
            .any(|kv| kv.value.to_string().contains("101001"))),
        "the provider span says what failed: {:?}",
        provider.events
    );
    let card_http = http_span(&spans, "/cv/ocr/bankcard");
    assert_eq!(attribute(card_http, "vendor.code"), "101001");
    assert!(matches!(card_http.status, Status::Error { .. }));
}

#[tokio::test]
async fn retries_are_counted_on_the_provider_span() {
    let gateway = traced_gateway().await;
    gateway
        .sim
        .inject(Endpoint::BankCard, Fault::errcode(-1, "system error"), 2);
    let (trace_id, _, traceparent) = client_parent(4);

    gateway
        .client
        .clone()
        .recognize_bank_card(with_traceparent(upload(png(1)), &traceparent))
        .await
        .expect("recovered");

    let spans = spans_of(trace_id);
    assert_eq!(
        attribute(
            named(&spans, "wechat RecognizeBankCard"),
            "provider.retries"
        ),
        "2"
    );
    assert_eq!(
        spans
            .iter()
            .filter(|s| attribute_is(s, "url.path", "/cv/ocr/bankcard"))
            .count(),
        3
    );
}

#[tokio::test]
async fn no_span_attribute_or_event_holds_the_secret_a_token_or_the_card_number() {
    let gateway = traced_gateway().await;
    let (trace_id, _, traceparent) = client_parent(5);
    let call = |message| with_traceparent(message, &traceparent);
    let mut client = gateway.client.clone();

    client
        .recognize_bank_card(call(upload(png(1))))
        .await
        .expect("recognised");
    gateway.sim.revoke_tokens(APP_ID);
    client
        .recognize_bank_card(call(upload(png(1))))
        .await
        .expect("recovered");
    gateway
        .sim
        .inject(Endpoint::BankCard, Fault::DropConnection, 1);
    client
        .recognize_bank_card(call(upload(png(1))))
        .await
        .expect("recovered");
    gateway.sim.inject(
        Endpoint::BankCard,
        Fault::errcode(40001, "invalid credential"),
        2,
    );
    client
        .recognize_bank_card(call(upload(png(1))))
        .await
        .expect_err("unauthenticated");
    client
        .recognize_bank_card(call(upload(png(2))))
        .await
        .expect_err("no card");

    let spans = spans_of(trace_id);
    assert!(spans.len() > 20, "too few spans to judge: {}", spans.len());
    let tokens = gateway.sim.issued_tokens();
    assert_eq!(tokens.len(), 2);
    for span in &spans {
        let mut texts = vec![span.name.to_string(), format!("{:?}", span.status)];
        texts.extend(
            span.attributes
                .iter()
                .map(|kv| format!("{}={}", kv.key, kv.value)),
        );
        for event in span.events.iter() {
            texts.push(event.name.to_string());
            texts.extend(
                event
                    .attributes
                    .iter()
                    .map(|kv| format!("{}={}", kv.key, kv.value)),
            );
        }
        for text in texts {
            assert!(
                !text.contains(APP_SECRET),
                "secret in span {:?}: {text}",
                span.name
            );
            assert!(
                !text.contains(NUMBER),
                "card number in span {:?}: {text}",
                span.name
            );
            assert!(
                !text.contains("access_token="),
                "token URL in span {:?}: {text}",
                span.name
            );
            for token in &tokens {
                assert!(
                    !text.contains(token.as_str()),
                    "token in span {:?}: {text}",
                    span.name
                );
            }
        }
    }
}

#[tokio::test]
async fn every_provider_gets_its_span_from_the_same_layer() {
    let Some(models) = common::local_models() else {
        return;
    };
    let sim = Simulator::start(SimConfig::default())
        .await
        .expect("simulator");
    let mut config = config_for(&sim);
    config.routing.bank_card = Some(vec!["local".to_owned()]);
    config.providers.set("local.models_dir", models);
    let gateway = Gateway::serve_with_telemetry(sim, config, telemetry().0.clone()).await;
    let (trace_id, _, traceparent) = client_parent(6);

    // A picture too small to hold a card: the local provider refuses it, inside its span.
    let status = gateway
        .client
        .clone()
        .recognize_bank_card(with_traceparent(upload(png(1)), &traceparent))
        .await
        .expect_err("no card in a tiny picture");

    let spans = spans_of(trace_id);
    let server = named(&spans, "ocrgate.v1.OcrService/RecognizeBankCard");
    let provider = named(&spans, "local RecognizeBankCard");
    assert_eq!(provider.parent_span_id, server.span_context.span_id());
    assert_eq!(attribute(provider, "provider.name"), "local");
    assert_eq!(
        attribute(provider, "provider.operation"),
        "RecognizeBankCard"
    );
    assert!(
        matches!(provider.status, Status::Error { .. }),
        "{status:?}: {:?}",
        provider.status
    );
}
