//! The client's gRPC deadline, made a value the handlers and providers can see.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use http::{HeaderValue, Request, Response};
use tokio::time::Instant;
use tower::{Layer, Service};

use super::status;

/// When the client stops waiting, from its `grpc-timeout` header. Stored in request extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline(pub Instant);

/// Reads `grpc-timeout`, records the [`Deadline`] and answers DEADLINE_EXCEEDED when it passes,
/// however far along the call is. A call without a deadline, or with one later than
/// `max_call_duration`, gets `max_call_duration`: no call holds the gateway longer.
#[derive(Debug, Clone, Copy)]
pub struct DeadlineLayer {
    max_call_duration: Duration,
}

impl DeadlineLayer {
    pub fn new(max_call_duration: Duration) -> Self {
        Self { max_call_duration }
    }
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = DeadlineService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DeadlineService {
            inner,
            max_call_duration: self.max_call_duration,
        }
    }
}

#[derive(Debug, Clone)]
pub struct DeadlineService<S> {
    inner: S,
    max_call_duration: Duration,
}

/// The transport enforces `grpc-timeout` too, answering a bare CANCELLED. Ending a millisecond
/// earlier (its timer starts a moment before ours) lets the caller get DEADLINE_EXCEEDED.
const AHEAD_OF_TRANSPORT: Duration = Duration::from_millis(1);

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for DeadlineService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let timeout = request
            .headers()
            .get("grpc-timeout")
            .and_then(parse_grpc_timeout)
            .map(|timeout| timeout.saturating_sub(AHEAD_OF_TRANSPORT))
            .map_or(self.max_call_duration, |timeout| {
                timeout.min(self.max_call_duration)
            });
        let deadline = Instant::now() + timeout;
        request.extensions_mut().insert(Deadline(deadline));
        let response = self.inner.call(request);
        Box::pin(async move {
            match tokio::time::timeout_at(deadline, response).await {
                Ok(response) => response,
                Err(_elapsed) => Ok(status::deadline_exceeded().into_http()),
            }
        })
    }
}

/// Parses a `grpc-timeout` value: at most 8 digits and a unit (H, M, S, m, u, n), as the gRPC
/// over HTTP/2 spec defines it. `None` when malformed.
fn parse_grpc_timeout(value: &HeaderValue) -> Option<Duration> {
    let value = value.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: &str) -> Option<Duration> {
        parse_grpc_timeout(&HeaderValue::from_str(value).expect("header value"))
    }

    #[test]
    fn grpc_timeout_units_are_parsed() {
        assert_eq!(parse("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse("99999999u"), Some(Duration::from_micros(99_999_999)));
        assert_eq!(parse("7n"), Some(Duration::from_nanos(7)));
    }

    #[test]
    fn malformed_grpc_timeout_is_ignored() {
        assert_eq!(parse(""), None);
        assert_eq!(parse("S"), None);
        assert_eq!(parse("10"), None);
        assert_eq!(parse("123456789S"), None);
        assert_eq!(parse("-1S"), None);
        assert_eq!(parse("1x"), None);
    }
}
