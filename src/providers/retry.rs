//! Retries with backoff inside the call's deadline, as every vendor adapter does them.

use std::{future::Future, time::Duration};

use backon::{BackoffBuilder, ExponentialBuilder};

use crate::provider::CallContext;

/// How an adapter backs off: `retries` more tries at most, the first after about `first` (it
/// doubles each time, with jitter, up to eight times `first`).
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// The provider whose calls are retried, named in the log lines of its retries.
    provider: &'static str,
    backoff: ExponentialBuilder,
}

impl RetryPolicy {
    pub fn new(provider: &'static str, retries: usize, first: Duration) -> Self {
        Self {
            provider,
            backoff: ExponentialBuilder::default()
                .with_min_delay(first)
                .with_max_delay(first * 8)
                .with_max_times(retries)
                .with_jitter(),
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Give up: the error is the answer.
    No,
    /// Try again at once (a fresh credential or signature; the adapter bounds how often).
    Now,
    /// Try again after the next backoff, if the policy has one left and the deadline allows it.
    AfterBackoff,
}

/// Runs `attempt` until it succeeds or `judge` says to stop, sleeping the policy's backoffs in
/// between while the deadline allows; counts retries on the current span's `provider.retries`.
pub async fn with_retries<T, E: std::fmt::Display, Fut: Future<Output = Result<T, E>>>(
    policy: &RetryPolicy,
    call: &CallContext,
    mut attempt: impl FnMut() -> Fut,
    mut judge: impl FnMut(&E) -> Retry,
) -> Result<T, E> {
    let mut backoff = policy.backoff.build();
    let mut retries = 0_u32;
    loop {
        let err = match attempt().await {
            Ok(value) => return Ok(value),
            Err(err) => err,
        };
        match judge(&err) {
            Retry::No => return Err(err),
            Retry::Now => {
                tracing::info!(provider = policy.provider, error = %err, "retrying at once");
            }
            Retry::AfterBackoff => match backoff.next() {
                Some(delay) if call.remaining().is_none_or(|left| left > delay) => {
                    tracing::info!(provider = policy.provider, error = %err, ?delay, "vendor call failed; retrying");
                    tokio::time::sleep(delay).await;
                }
                _ => return Err(err),
            },
        }
        retries += 1;
        tracing::Span::current().record("provider.retries", retries);
    }
}
