//! What a request may bring in: a gRPC content type, messages no larger than the method needs,
//! bytes within the process's memory budget, and a body that keeps arriving.
//!
//! The 5-byte gRPC prefix of a message declares its length, so a message is refused or its bytes
//! reserved as soon as that prefix arrives, before the rest is buffered: a message of at most
//! 64 KiB that is not an image upload (a title, a health check, reflection) from an allowance of
//! its own that uploads cannot take (and of which one share may take an eighth); an upload, or
//! any larger message, from its caller's share (`shares`) and the process's budget. The
//! reservation is held until the call's response is ready, since the decoded request lives that
//! long.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, OnceLock},
    task::{Context, Poll},
    time::Duration,
};

use bytes::{Buf as _, Bytes};
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body::Frame;
use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore},
    time::{Instant, Sleep},
};
use tonic::{Status, body::Body};
use tower::{Layer, Service};

use super::{
    auth::CallerLabel,
    shares::{Keyed, Share, SharePermit, Shares},
    status,
    telemetry::CallNotes,
};
use crate::{auth::Rpc, limits::LimitsConfig, telemetry::Metrics, transport::ConnectionInfo};

/// The largest message of any other service (health, reflection): their requests are names.
pub const MAX_OTHER_MESSAGE_BYTES: usize = 64 * 1024;

/// Length of the prefix of every gRPC message: a compression flag and a 4-byte length.
pub const PREFIX_BYTES: usize = 5;

/// Reservations of at most this many bytes (a message of at most 64 KiB and its prefix) of any
/// call but an image upload come from the small calls' allowance.
const SMALL_RESERVATION: usize = MAX_OTHER_MESSAGE_BYTES + PREFIX_BYTES;

/// The small calls' allowance: 128 health checks or reflection calls at once, or some 20,000
/// invoice titles of 400 bytes.
pub const SMALL_ALLOWANCE: usize = 128 * SMALL_RESERVATION;

/// Applies the intake rules to every call.
#[derive(Clone)]
pub struct IntakeLayer {
    budget: Arc<Semaphore>,
    small: Arc<Semaphore>,
    shares: Arc<Shares>,
    body_timeout: Duration,
    /// The largest `OcrService` request message.
    max_message: usize,
    metrics: Metrics,
}

impl IntakeLayer {
    pub fn new(limits: &LimitsConfig, metrics: Metrics) -> Self {
        Self {
            budget: Arc::new(Semaphore::new(limits.request_memory_bytes())),
            small: Arc::new(Semaphore::new(SMALL_ALLOWANCE)),
            shares: Arc::new(Shares::new(limits)),
            body_timeout: limits.body_timeout,
            max_message: limits.max_message_bytes(),
            metrics,
        }
    }
}

impl<S> Layer<S> for IntakeLayer {
    type Service = IntakeService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        IntakeService {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct IntakeService<S> {
    inner: S,
    layer: IntakeLayer,
}

impl<S, ResBody> Service<Request<Body>> for IntakeService<S>
where
    S: Service<Request<Body>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        if !is_grpc(request.headers().get(header::CONTENT_TYPE)) {
            // As the gRPC over HTTP/2 spec asks of a server: 415, not a gRPC status.
            self.layer
                .metrics
                .request_refused("content_type", caller_label(&request));
            let mut response = Response::new(ResBody::default());
            *response.status_mut() = StatusCode::UNSUPPORTED_MEDIA_TYPE;
            return Box::pin(std::future::ready(Ok(response)));
        }
        let rules = Rules::for_path(request.uri().path(), self.layer.max_message);
        let connection = request
            .extensions()
            .get::<ConnectionInfo>()
            .map_or(0, |info| info.id);
        let share = self
            .layer
            .shares
            .of(&request)
            .map(|(share, keyed)| (share, keyed, connection));
        let caller = caller_label(&request);
        let notes = request.extensions().get::<CallNotes>().cloned();
        let reservation = Arc::new(OnceLock::new());
        let request = request.map(|body| {
            Body::new(GuardedBody {
                inner: body,
                rules,
                framing: Framing::default(),
                budget: Arc::clone(&self.layer.budget),
                small: Arc::clone(&self.layer.small),
                share,
                caller,
                notes,
                reservation: Arc::clone(&reservation),
                reserved: 0,
                body_timeout: self.layer.body_timeout,
                stall: Box::pin(tokio::time::sleep(self.layer.body_timeout)),
                metrics: self.layer.metrics.clone(),
                done: false,
            })
        });
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await;
            // The decoded request is gone once the response is ready: so are its bytes.
            drop(reservation);
            response
        })
    }
}

/// Who a call is, for the metrics of refusals: a configured caller's name, `anonymous`, or
/// `unidentified` for calls no caller is settled for (health, reflection).
fn caller_label<B>(request: &Request<B>) -> Arc<str> {
    request
        .extensions()
        .get::<CallerLabel>()
        .map_or_else(|| "unidentified".into(), |label| Arc::clone(&label.0))
}

fn is_grpc(content_type: Option<&HeaderValue>) -> bool {
    content_type
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value == "application/grpc"
                || value.starts_with("application/grpc+")
                || value.starts_with("application/grpc;")
        })
}

/// What one method's requests may hold.
#[derive(Debug, Clone, Copy)]
struct Rules {
    max_message: usize,
    /// A unary `OcrService` call: exactly one message, whose bytes alone are reserved.
    unary: bool,
    /// An image upload: its bytes come from its share, however small it is.
    upload: bool,
}

impl Rules {
    /// The rules for a method, `max_message` for `OcrService` calls.
    fn for_path(path: &str, max_message: usize) -> Self {
        if let Some(method) = path.strip_prefix(Rpc::PATH_PREFIX) {
            Self {
                max_message,
                unary: true,
                upload: Rpc::from_method(method) == Some(Rpc::RecognizeBankCard),
            }
        } else {
            Self {
                max_message: MAX_OTHER_MESSAGE_BYTES,
                unary: false,
                upload: false,
            }
        }
    }

    /// Bytes to reserve for a call whose first message declares `length`.
    fn reservation(self, length: usize) -> usize {
        PREFIX_BYTES + if self.unary { length } else { self.max_message }
    }
}

/// Where the body stands in its sequence of length-prefixed messages.
#[derive(Debug, Default)]
struct Framing {
    prefix: [u8; PREFIX_BYTES],
    prefix_len: usize,
    payload_left: usize,
    messages: usize,
}

impl Framing {
    /// Walks `data`, calling `on_message` with each message length as its prefix completes.
    fn feed<E>(
        &mut self,
        mut data: &[u8],
        mut on_message: impl FnMut(usize, usize) -> Result<(), E>,
    ) -> Result<(), E> {
        while !data.is_empty() {
            if self.payload_left > 0 {
                let n = self.payload_left.min(data.len());
                self.payload_left -= n;
                data.advance(n);
                continue;
            }
            let n = (PREFIX_BYTES - self.prefix_len).min(data.len());
            self.prefix[self.prefix_len..self.prefix_len + n].copy_from_slice(&data[..n]);
            self.prefix_len += n;
            data.advance(n);
            if self.prefix_len == PREFIX_BYTES {
                let [_, a, b, c, d] = self.prefix;
                let length = u32::from_be_bytes([a, b, c, d]) as usize;
                on_message(self.messages, length)?;
                self.prefix_len = 0;
                self.payload_left = length;
                self.messages += 1;
            }
        }
        Ok(())
    }

    /// Whether the body ended in the middle of a message.
    fn cut_short(&self) -> bool {
        self.prefix_len > 0 || self.payload_left > 0
    }
}

/// Why a message is refused.
enum Refusal {
    /// Its length, and the limit it passed.
    TooLarge(usize, usize),
    /// Over the share of the caller, of an address, or of a forwarded address.
    OverShare(Keyed),
    OverBudget,
    OverSmallAllowance,
    SecondMessage,
}

/// Request bytes a call holds: from the small calls' allowance, or from its share and the
/// process's budget.
enum Reservation {
    Small {
        _share: Option<OwnedSemaphorePermit>,
        _process: OwnedSemaphorePermit,
    },
    Large {
        _share: Option<SharePermit>,
        _process: OwnedSemaphorePermit,
    },
}

impl Reservation {
    fn take(
        bytes: usize,
        upload: bool,
        share: Option<&(Arc<Share>, Keyed, u64)>,
        process: &Arc<Semaphore>,
        small: &Arc<Semaphore>,
    ) -> Result<Self, Refusal> {
        let take = |budget: &Arc<Semaphore>| {
            u32::try_from(bytes)
                .ok()
                .and_then(|n| Arc::clone(budget).try_acquire_many_owned(n).ok())
        };
        if !upload && bytes <= SMALL_RESERVATION {
            let share = match share {
                Some((share, keyed, _)) => {
                    Some(share.take_small(bytes).ok_or(Refusal::OverShare(*keyed))?)
                }
                None => None,
            };
            return Ok(Self::Small {
                _share: share,
                _process: take(small).ok_or(Refusal::OverSmallAllowance)?,
            });
        }
        let share = match share {
            Some((share, keyed, connection)) => Some(
                share
                    .take(*connection, bytes)
                    .ok_or(Refusal::OverShare(*keyed))?,
            ),
            None => None,
        };
        Ok(Self::Large {
            _share: share,
            _process: take(process).ok_or(Refusal::OverBudget)?,
        })
    }
}

/// A request body under the intake rules; its first error ends it.
struct GuardedBody {
    inner: Body,
    rules: Rules,
    framing: Framing,
    budget: Arc<Semaphore>,
    small: Arc<Semaphore>,
    /// The share this call's bytes come from, what chose it, and the call's connection; `None`
    /// off a real connection.
    share: Option<(Arc<Share>, Keyed, u64)>,
    /// Who calls, for the metrics of refusals.
    caller: Arc<str>,
    /// Told when the body breaks off: the client went away.
    notes: Option<CallNotes>,
    /// Shared with the call's response future, which drops it when the response is ready.
    reservation: Arc<OnceLock<Reservation>>,
    reserved: usize,
    body_timeout: Duration,
    stall: Pin<Box<Sleep>>,
    metrics: Metrics,
    done: bool,
}

impl GuardedBody {
    fn check_data(&mut self, data: &Bytes) -> Result<(), Status> {
        let Self {
            rules,
            framing,
            budget,
            small,
            share,
            reservation,
            reserved,
            ..
        } = self;
        framing
            .feed(data, |index, length| {
                if length > rules.max_message {
                    return Err(Refusal::TooLarge(length, rules.max_message));
                }
                if index == 0 {
                    let bytes = rules.reservation(length);
                    reservation
                        .set(Reservation::take(
                            bytes,
                            rules.upload,
                            share.as_ref(),
                            budget,
                            small,
                        )?)
                        .ok();
                    *reserved = bytes;
                } else if rules.unary {
                    return Err(Refusal::SecondMessage);
                } else if PREFIX_BYTES + length > *reserved {
                    return Err(Refusal::TooLarge(length, *reserved - PREFIX_BYTES));
                }
                Ok(())
            })
            .map_err(|refusal| {
                let (rule, status) = match refusal {
                    Refusal::TooLarge(length, limit) => (
                        "message_too_large",
                        status::message_too_large(length, limit),
                    ),
                    Refusal::OverShare(keyed) => (
                        match keyed {
                            Keyed::Caller => "request_memory_per_caller",
                            Keyed::ForwardedAddress => "request_memory_per_forwarded_client",
                            Keyed::Address => "request_memory_per_client",
                        },
                        status::request_memory_exhausted(),
                    ),
                    Refusal::OverSmallAllowance => {
                        ("small_request_memory", status::request_memory_exhausted())
                    }
                    Refusal::OverBudget => ("request_memory", status::request_memory_exhausted()),
                    Refusal::SecondMessage => (
                        "malformed",
                        status::malformed_request("a unary call carries exactly one message"),
                    ),
                };
                self.refused(rule, status)
            })
    }

    fn refused(&self, reason: &'static str, status: Status) -> Status {
        self.metrics
            .request_refused(reason, Arc::clone(&self.caller));
        status
    }

    fn check_end(&self) -> Result<(), Status> {
        if self.framing.cut_short() {
            return Err(self.refused(
                "malformed",
                status::malformed_request("the request body ended inside a message"),
            ));
        }
        if self.rules.unary && self.framing.messages == 0 {
            return Err(self.refused(
                "malformed",
                status::malformed_request("the request body holds no message"),
            ));
        }
        Ok(())
    }
}

impl http_body::Body for GuardedBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        let result = match polled {
            Poll::Pending => {
                if this.stall.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                let timeout = this.body_timeout;
                Some(Err(
                    this.refused("body_timeout", status::body_timeout(timeout))
                ))
            }
            Poll::Ready(None) => this.check_end().err().map(Err),
            // The body breaks only when the client reset its stream or its connection went: the
            // call is the client's to have cancelled, whatever status the transport makes of it.
            Poll::Ready(Some(Err(err))) => {
                if let Some(notes) = &this.notes {
                    notes.mark_client_gone();
                }
                Some(Err(err))
            }
            Poll::Ready(Some(Ok(frame))) => {
                let deadline = Instant::now() + this.body_timeout;
                this.stall.as_mut().reset(deadline);
                match frame.data_ref().map(|data| this.check_data(data)) {
                    Some(Err(status)) => Some(Err(status)),
                    _ => Some(Ok(frame)),
                }
            }
        };
        this.done = !matches!(result, Some(Ok(_)));
        Poll::Ready(result)
    }

    fn is_end_stream(&self) -> bool {
        // Never claimed early: an empty body must still be polled to be refused.
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lengths(chunks: &[&[u8]]) -> Vec<(usize, usize)> {
        let mut framing = Framing::default();
        let mut seen = Vec::new();
        for chunk in chunks {
            framing
                .feed(chunk, |index, length| {
                    seen.push((index, length));
                    Ok::<_, ()>(())
                })
                .expect("no refusal");
        }
        seen
    }

    #[test]
    fn message_lengths_are_read_across_chunk_boundaries() {
        assert_eq!(
            lengths(&[
                &[0, 0, 0],
                &[0, 3, b'a', b'b'],
                &[b'c', 0, 0, 0, 0, 1, b'z']
            ]),
            [(0, 3), (1, 1)]
        );
    }

    #[test]
    fn a_body_cut_inside_a_prefix_or_payload_is_short() {
        let mut framing = Framing::default();
        framing
            .feed(&[0, 0, 0], |_, _| Ok::<_, ()>(()))
            .expect("fed");
        assert!(framing.cut_short());
        let mut framing = Framing::default();
        framing
            .feed(&[0, 0, 0, 0, 4, 1, 2], |_, _| Ok::<_, ()>(()))
            .expect("fed");
        assert!(framing.cut_short());
        framing.feed(&[3, 4], |_, _| Ok::<_, ()>(())).expect("fed");
        assert!(!framing.cut_short());
    }

    #[test]
    fn only_grpc_content_types_pass() {
        let ok = |value: &str| is_grpc(Some(&HeaderValue::from_str(value).expect("header")));
        assert!(ok("application/grpc"));
        assert!(ok("application/grpc+proto"));
        assert!(!ok("application/json"));
        assert!(!ok("application/grpc-web"));
        assert!(!is_grpc(None));
    }
}
