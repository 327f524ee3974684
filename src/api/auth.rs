//! Who is calling: the caller named by the call's API key (or the anonymous caller, where
//! allowed), admitted for its RPC, rate and daily budget before the request body is read.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use http::{Request, Response, header};
use tower::{Layer, Service};

use super::{status, telemetry::CallNotes};
use crate::{
    auth::{Callers, Rpc},
    transport::ConnectionInfo,
};

/// The caller a call was made by, as metrics and logs name it: a configured caller or
/// `anonymous`. Set on every `OcrService` request once its caller is admitted.
#[derive(Debug, Clone)]
pub struct CallerLabel(pub Arc<str>);

const UNAUTHENTICATED: &str = "unauthenticated";

#[derive(Clone)]
pub struct AuthLayer {
    callers: Arc<Callers>,
}

impl AuthLayer {
    pub fn new(callers: Arc<Callers>) -> Self {
        Self { callers }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            callers: Arc::clone(&self.callers),
        }
    }
}

#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    callers: Arc<Callers>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for AuthService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // Health and reflection stay open: probes and grpcurl carry no key.
        let Some(rpc) = Rpc::from_path(request.uri().path()) else {
            return Box::pin(self.inner.call(request));
        };
        // The clone is not ready; the instance `poll_ready` readied is the one to call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let callers = Arc::clone(&self.callers);
        Box::pin(async move {
            let notes = request.extensions().get::<CallNotes>().cloned();
            let note_caller = |label: &Arc<str>| {
                if let Some(notes) = &notes {
                    notes.set_caller(label);
                }
            };
            // The call's audit line, written as it ends, says why.
            let note_refused = |refusal: &dyn std::fmt::Display| {
                if let Some(notes) = &notes {
                    notes.audit(|entry| entry.refused(refusal.to_string()));
                }
            };
            let key = bearer_token(request.headers());
            let identities = request
                .extensions()
                .get::<ConnectionInfo>()
                .map(|info| Arc::clone(&info.identities))
                .unwrap_or_else(|| Arc::new([]));
            let caller = match callers.identify(key.as_deref(), &identities) {
                Ok(caller) => caller,
                Err(refusal) => {
                    note_caller(&UNAUTHENTICATED_LABEL);
                    note_refused(&refusal);
                    return Ok(status::caller_refused(&refusal, UNAUTHENTICATED).into_http());
                }
            };
            let label: Arc<str> = caller.name.as_str().into();
            note_caller(&label);
            if let Err(refusal) = callers.admit(&caller, rpc).await {
                note_refused(&refusal);
                return Ok(status::caller_refused(&refusal, &label).into_http());
            }
            request.extensions_mut().insert(caller);
            request.extensions_mut().insert(CallerLabel(label));
            inner.call(request).await
        })
    }
}

/// The metric label of calls refused before their caller was known.
static UNAUTHENTICATED_LABEL: std::sync::LazyLock<Arc<str>> =
    std::sync::LazyLock::new(|| UNAUTHENTICATED.into());

/// The key of an `authorization: Bearer <key>` header.
fn bearer_token(headers: &http::HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
        .filter(|token| !token.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_read_case_insensitively_and_nothing_else_is() {
        let headers = |value: &str| {
            let mut headers = http::HeaderMap::new();
            headers.insert(header::AUTHORIZATION, value.parse().expect("header"));
            headers
        };
        assert_eq!(bearer_token(&headers("Bearer abc")).as_deref(), Some("abc"));
        assert_eq!(
            bearer_token(&headers("bearer  abc ")).as_deref(),
            Some("abc")
        );
        assert_eq!(bearer_token(&headers("Basic abc")), None);
        assert_eq!(bearer_token(&headers("Bearer ")), None);
        assert_eq!(bearer_token(&http::HeaderMap::new()), None);
    }
}
