//! The instruments ocrgate records, named after OpenTelemetry's semantic conventions where they
//! have one (`rpc.server.call.duration`) and under `ocrgate.` where they do not.

use std::sync::Arc;

use opentelemetry::{
    KeyValue,
    metrics::{Counter, Histogram, Meter, MeterProvider as _, UpDownCounter},
};
use opentelemetry_sdk::metrics::SdkMeterProvider;

/// Cheap to clone: every instrument is shared.
#[derive(Clone)]
pub struct Metrics {
    rpc_duration: Histogram<f64>,
    rpc_in_flight: UpDownCounter<i64>,
    upstream_duration: Histogram<f64>,
    provider_duration: Histogram<f64>,
    token_lookups: Counter<u64>,
    token_fetches: Counter<u64>,
    quota_exhausted: Counter<u64>,
    failovers: Counter<u64>,
    escalations: Counter<u64>,
    result_cache: Counter<u64>,
    connections_open: UpDownCounter<i64>,
    connections_closed: Counter<u64>,
    requests_refused: Counter<u64>,
    budget_store_failures: Counter<u64>,
    /// For instruments a provider keeps for itself.
    meter: Meter,
}

/// Latency buckets in seconds, from a fast cache hit to a slow vendor.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

impl Metrics {
    /// Instruments that record nowhere: for checking a configuration without serving it.
    pub fn disabled() -> Self {
        Self::new(&SdkMeterProvider::default())
    }

    pub fn new(provider: &SdkMeterProvider) -> Self {
        let meter = provider.meter("ocrgate");
        Self {
            rpc_duration: meter
                .f64_histogram("rpc.server.call.duration")
                .with_unit("s")
                .with_description("Duration of gRPC calls served, by method and status code")
                .with_boundaries(LATENCY_BUCKETS.to_vec())
                .build(),
            rpc_in_flight: meter
                .i64_up_down_counter("ocrgate.rpc.in_flight")
                .with_description("gRPC calls being served now")
                .build(),
            upstream_duration: meter
                .f64_histogram("ocrgate.upstream.duration")
                .with_unit("s")
                .with_description("Duration of calls to vendors, by provider, endpoint and errcode")
                .with_boundaries(LATENCY_BUCKETS.to_vec())
                .build(),
            provider_duration: meter
                .f64_histogram("ocrgate.provider.call.duration")
                .with_unit("s")
                .with_description(
                    "Duration of calls to each provider, retries and image fitting included, by \
                     provider, method and outcome",
                )
                .with_boundaries(LATENCY_BUCKETS.to_vec())
                .build(),
            token_lookups: meter
                .u64_counter("ocrgate.token.lookups")
                .with_description("Access token lookups, by app and cache result")
                .build(),
            token_fetches: meter
                .u64_counter("ocrgate.token.fetches")
                .with_description("Access token fetches from the vendor, by app and outcome")
                .build(),
            quota_exhausted: meter
                .u64_counter("ocrgate.quota.exhausted")
                .with_description(
                    "Calls answered RESOURCE_EXHAUSTED because a vendor quota ran out",
                )
                .build(),
            failovers: meter
                .u64_counter("ocrgate.provider.failovers")
                .with_description(
                    "Calls passed on to the next provider, by method, provider and error kind",
                )
                .build(),
            escalations: meter
                .u64_counter("ocrgate.escalations")
                .with_description(
                    "Calls passed on to the next provider, by method, provider and reason: \
                     low_confidence, busy, or the error kind",
                )
                .build(),
            result_cache: meter
                .u64_counter("ocrgate.result_cache")
                .with_description(
                    "Bank card calls by how the result cache served them: hit, miss or shared",
                )
                .build(),
            connections_open: meter
                .i64_up_down_counter("ocrgate.connections.open")
                .with_description("Client connections open now")
                .build(),
            connections_closed: meter
                .u64_counter("ocrgate.connections.closed")
                .with_description(
                    "Client connections the server closed, by the limit that closed them",
                )
                .build(),
            budget_store_failures: meter
                .u64_counter("ocrgate.budget_store.failures")
                .with_description(
                    "Daily budget updates the store failed, by whether the call was then served",
                )
                .build(),
            requests_refused: meter
                .u64_counter("ocrgate.requests.refused")
                .with_description(
                    "Calls refused before their request was read, by the rule they broke",
                )
                .build(),
            meter,
        }
    }

    /// The meter ocrgate's instruments come from, for a provider's own.
    pub fn meter(&self) -> &Meter {
        &self.meter
    }

    /// A gRPC call served, for `caller` (a configured name, `anonymous` or `unauthenticated`).
    pub fn rpc_finished(
        &self,
        service: &'static str,
        method: &'static str,
        caller: Arc<str>,
        grpc_status: i32,
        seconds: f64,
    ) {
        self.rpc_duration.record(
            seconds,
            &[
                KeyValue::new("rpc.system", "grpc"),
                KeyValue::new("rpc.service", service),
                KeyValue::new("rpc.method", method),
                KeyValue::new("ocrgate.caller", caller),
                KeyValue::new("rpc.grpc.status_code", i64::from(grpc_status)),
            ],
        );
    }

    /// A gRPC call started (`+1`) or finished (`-1`).
    pub fn rpc_in_flight(&self, method: &'static str, delta: i64) {
        self.rpc_in_flight
            .add(delta, &[KeyValue::new("rpc.method", method)]);
    }

    /// One HTTP exchange with a vendor. `errcode` is the vendor's code, or `none` when no
    /// readable reply arrived.
    pub fn upstream_call(
        &self,
        provider: &'static str,
        endpoint: &'static str,
        errcode: &str,
        seconds: f64,
    ) {
        self.upstream_duration.record(
            seconds,
            &[
                KeyValue::new("provider", provider),
                KeyValue::new("endpoint", endpoint),
                KeyValue::new("errcode", errcode.to_owned()),
            ],
        );
    }

    /// One call to a provider, as a route makes it: `outcome` is `ok` or the error's kind
    /// (`not_found`, `unavailable`, ...).
    pub fn provider_call(
        &self,
        provider: &'static str,
        method: &'static str,
        outcome: &'static str,
        seconds: f64,
    ) {
        self.provider_duration.record(
            seconds,
            &[
                KeyValue::new("provider", provider),
                KeyValue::new("rpc.method", method),
                KeyValue::new("outcome", outcome),
            ],
        );
    }

    /// A token lookup for a configured `account` (a name from the configuration, never an id).
    pub fn token_lookup(&self, account: &str, hit: bool) {
        self.token_lookups.add(
            1,
            &[
                KeyValue::new("account", account.to_owned()),
                KeyValue::new("cache", if hit { "hit" } else { "miss" }),
            ],
        );
    }

    pub fn token_fetch(&self, account: &str, ok: bool) {
        self.token_fetches.add(
            1,
            &[
                KeyValue::new("account", account.to_owned()),
                KeyValue::new("outcome", if ok { "ok" } else { "error" }),
            ],
        );
    }

    pub fn quota_exhausted(&self, provider: &'static str, method: &str) {
        self.quota_exhausted.add(
            1,
            &[
                KeyValue::new("provider", provider),
                KeyValue::new("rpc.method", method.to_owned()),
            ],
        );
    }

    /// A call that `from` failed with an error of `kind` (its metric name), passed on to `to`.
    pub fn failover(&self, method: &str, from: &'static str, to: &'static str, kind: &'static str) {
        self.failovers.add(
            1,
            &[
                KeyValue::new("rpc.method", method.to_owned()),
                KeyValue::new("from", from),
                KeyValue::new("to", to),
                KeyValue::new("kind", kind),
            ],
        );
    }

    /// A call passed on from `from` to `to`, for `reason`.
    pub fn escalation(&self, method: &str, from: &'static str, to: &'static str, reason: &str) {
        self.escalations.add(
            1,
            &[
                KeyValue::new("rpc.method", method.to_owned()),
                KeyValue::new("from", from),
                KeyValue::new("to", to),
                KeyValue::new("reason", reason.to_owned()),
            ],
        );
    }

    /// A bank card call the result cache answered (`hit`), served by a provider (`miss`), or
    /// answered with an identical call's result in flight (`shared`).
    pub fn result_cache(&self, outcome: &'static str) {
        self.result_cache
            .add(1, &[KeyValue::new("outcome", outcome)]);
    }

    /// A client connection opened (`+1`) or closed (`-1`).
    pub fn connection_opened(&self, delta: i64) {
        self.connections_open.add(delta, &[]);
    }

    /// A client connection closed by the server because of `limit` (a `[limits]` key).
    pub fn connection_closed(&self, limit: &'static str) {
        self.connections_closed
            .add(1, &[KeyValue::new("limit", limit)]);
    }

    /// A call refused before its request was read, for breaking `rule`; `caller` is a configured
    /// caller's name, `anonymous`, or `unidentified` (health, reflection).
    pub fn request_refused(&self, rule: &'static str, caller: Arc<str>) {
        self.requests_refused.add(
            1,
            &[
                KeyValue::new("rule", rule),
                KeyValue::new("ocrgate.caller", caller),
            ],
        );
    }

    /// The budget store failed to count a call, which was then served (`allowed`) or refused.
    pub fn budget_store_failed(&self, allowed: bool) {
        self.budget_store_failures.add(
            1,
            &[KeyValue::new(
                "outcome",
                if allowed { "allowed" } else { "denied" },
            )],
        );
    }
}
