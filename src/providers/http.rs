//! The HTTP side every vendor adapter shares: a client built the same way for each, and exchanges
//! that run in a client span carrying the trace context, end within the call's deadline and the
//! adapter's timeout, read at most a capped reply, and are counted by provider, endpoint and code.
//!
//! URLs and bodies may hold credentials, so nothing here records more than a URL's path, and
//! transport errors are described without their URL.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::StatusCode;
use tokio::time::Instant;
use tracing::{Instrument as _, Span, field::Empty};
use url::Url;

use crate::{
    provider::{CallContext, vendor_text},
    telemetry::{Metrics, propagation},
};

/// How an adapter's client connects and how much it reads.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub connect_timeout: Duration,
    /// Upper bound for one exchange; the call's deadline may cut it shorter.
    pub request_timeout: Duration,
    pub proxy: Option<Url>,
    /// Longest reply read; a longer one is an error, never buffered whole.
    pub max_reply_bytes: u64,
}

/// Why an exchange produced no reply to read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HttpFailure {
    #[error("{0}")]
    Transport(String),
    #[error("no answer before the deadline")]
    DeadlineExceeded,
    #[error("the reply is longer than {0} bytes")]
    TooLarge(u64),
}

impl HttpFailure {
    fn transport(err: reqwest::Error) -> Self {
        Self::Transport(vendor_text(&err.without_url().to_string()))
    }
}

/// One adapter's HTTP client.
pub struct VendorHttp {
    client: reqwest::Client,
    provider: &'static str,
    request_timeout: Duration,
    max_reply_bytes: u64,
    metrics: Metrics,
}

/// What an exchange brought back, still to be judged by the adapter, which then calls
/// [`Exchange::finish`] with the vendor's verdict.
pub struct Exchange {
    pub status: StatusCode,
    pub body: Bytes,
    span: Span,
    started: Instant,
    endpoint: &'static str,
    provider: &'static str,
    metrics: Metrics,
}

/// The vendor's verdict on an exchange, for its span and its metric.
pub enum Outcome<'a> {
    /// A success; `code` is the vendor's success code, if it has one.
    Success { code: &'a str },
    /// The vendor's error code; `known` when the adapter's table has it (unknown codes are counted
    /// as `other`, so a vendor cannot grow the metric's label set).
    Error { code: &'a str, known: bool },
    /// A reply the adapter could not read.
    Unreadable,
}

/// Longest vendor code recorded on a span.
const MAX_CODE_CHARS: usize = 64;

impl Exchange {
    pub fn finish(self, outcome: Outcome<'_>) {
        let label = match outcome {
            Outcome::Success { code } => {
                self.span.record("vendor.code", code);
                code.to_owned()
            }
            Outcome::Error { code, known } => {
                let code: String = vendor_text(code).chars().take(MAX_CODE_CHARS).collect();
                self.span.record("vendor.code", code.as_str());
                self.span.record("otel.status_code", "ERROR");
                if known { code } else { "other".to_owned() }
            }
            Outcome::Unreadable => {
                self.span.record("otel.status_code", "ERROR");
                "none".to_owned()
            }
        };
        self.metrics.upstream_call(
            self.provider,
            self.endpoint,
            &label,
            self.started.elapsed().as_secs_f64(),
        );
    }
}

impl VendorHttp {
    pub fn new(
        provider: &'static str,
        settings: &HttpSettings,
        metrics: Metrics,
    ) -> Result<Self, reqwest::Error> {
        let mut client = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            // Vendors answer where they are asked; following a redirect would hand credentials in
            // a URL or a signed body to another host.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("ocrgate/", env!("CARGO_PKG_VERSION")));
        if let Some(proxy) = &settings.proxy {
            client = client.proxy(reqwest::Proxy::all(proxy.as_str())?);
        }
        Ok(Self {
            client: client.build()?,
            provider,
            request_timeout: settings.request_timeout,
            max_reply_bytes: settings.max_reply_bytes,
            metrics,
        })
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Sends `request` within the call's deadline and reads the reply, up to the cap, inside a
    /// client span named after the request's method and path.
    pub async fn exchange(
        &self,
        endpoint: &'static str,
        request: reqwest::RequestBuilder,
        call: &CallContext,
    ) -> Result<Exchange, HttpFailure> {
        let timeout = match call.remaining() {
            Some(left) if left.is_zero() => return Err(HttpFailure::DeadlineExceeded),
            Some(left) => left.min(self.request_timeout),
            None => self.request_timeout,
        };
        let mut request = request
            .timeout(timeout)
            .build()
            .map_err(HttpFailure::transport)?;
        let (method, url) = (request.method().clone(), request.url());
        let span = tracing::info_span!(
            "http client",
            otel.name = %format_args!("{method} {}", url.path()),
            otel.kind = "client",
            otel.status_code = Empty,
            http.request.method = %method,
            server.address = url.host_str().unwrap_or_default(),
            server.port = url.port_or_known_default().unwrap_or_default(),
            url.path = url.path(),
            http.response.status_code = Empty,
            vendor.code = Empty,
        );
        request.headers_mut().extend(propagation::inject(&span));
        let started = Instant::now();
        let exchange = async {
            let mut response = self.client.execute(request).await?;
            let status = response.status();
            let body = read_capped(&mut response, self.max_reply_bytes).await?;
            Ok::<_, reqwest::Error>((status, body))
        }
        .instrument(span.clone())
        .await;
        let failure = match exchange {
            Ok((status, body)) => {
                span.record("http.response.status_code", status.as_u16());
                match body {
                    Some(body) => {
                        return Ok(Exchange {
                            status,
                            body,
                            span,
                            started,
                            endpoint,
                            provider: self.provider,
                            metrics: self.metrics.clone(),
                        });
                    }
                    None => HttpFailure::TooLarge(self.max_reply_bytes),
                }
            }
            Err(err)
                if err.is_timeout() && call.deadline.is_some_and(|d| d <= started + timeout) =>
            {
                HttpFailure::DeadlineExceeded
            }
            Err(err) => HttpFailure::transport(err),
        };
        span.record("otel.status_code", "ERROR");
        self.metrics.upstream_call(
            self.provider,
            endpoint,
            "none",
            started.elapsed().as_secs_f64(),
        );
        Err(failure)
    }
}

/// The reply body, read as it arrives; `None` as soon as it passes `cap` bytes.
async fn read_capped(
    response: &mut reqwest::Response,
    cap: u64,
) -> Result<Option<Bytes>, reqwest::Error> {
    if response.content_length().is_some_and(|length| length > cap) {
        return Ok(None);
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await? {
        if (body.len() + chunk.len()) as u64 > cap {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body.freeze()))
}

/// A reply that is not the JSON expected, described by where it broke: serde's own message
/// quotes the offending value, which may be a card number.
pub fn unexpected_json(err: &serde_json::Error) -> String {
    format!(
        "the reply is not the JSON expected ({:?} error at line {}, column {})",
        err.classify(),
        err.line(),
        err.column()
    )
}
