//! Which provider serves a call: an ordered list per capability, going on to the next provider on
//! chosen kinds of error, when a provider is busy, or when an answer's confidence is under the
//! threshold, while the deadline lasts.

use std::{future::Future, sync::Arc, time::Duration};

use async_trait::async_trait;
use serde::Deserialize;

use crate::{
    provider::{
        BankCard, BankCardRecognizer, BankCardRequest, CallContext, ErrorKind, Escalation, Graded,
        InvoiceTitle, InvoiceTitleParser, InvoiceTitleRequest, ProviderError,
    },
    providers::{Capability, REGISTRY, Registration, known_names, registration},
    telemetry::Metrics,
};

/// The `[routing]` section of the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoutingConfig {
    /// Providers for RecognizeBankCard by name, first choice first. Default: the first registered
    /// bank card provider that is set up (WeChat, then Tencent, then local).
    pub bank_card: Option<Vec<String>>,
    /// Providers for ParseInvoiceTitle by name. Default: the first invoice title provider set up.
    pub invoice_title: Option<Vec<String>>,
    /// The kinds of error after which a call goes on to the next provider. A provider too busy
    /// to start before the deadline (`busy`) always passes the call on when there is a next one.
    pub failover_on: Vec<ErrorKind>,
    /// A bank card answer whose confidence is below this (0 to 1) goes on to the next provider;
    /// `None` keeps every answer. An answer without a confidence counts as trusted.
    pub escalate_below: Option<f32>,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        Self {
            bank_card: None,
            invoice_title: None,
            failover_on: vec![ErrorKind::Unavailable, ErrorKind::QuotaExhausted],
            escalate_below: None,
        }
    }
}

/// The routes the configuration asks for, defaults applied, every name a registered provider's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routes {
    pub bank_card: Vec<&'static str>,
    pub invoice_title: Vec<&'static str>,
}

impl Routes {
    /// The registered providers some route uses, in registry order.
    pub fn providers(&self) -> impl Iterator<Item = &'static Registration> + '_ {
        REGISTRY.iter().filter(|registration| {
            self.bank_card.contains(&registration.name)
                || self.invoice_title.contains(&registration.name)
        })
    }
}

impl RoutingConfig {
    /// The routes, checked against the registry; `set_up` says whether a provider's configuration
    /// lets it answer, which default routes need.
    pub fn resolve(&self, set_up: impl Fn(&Registration) -> bool) -> Result<Routes, String> {
        if let Some(threshold) = self.escalate_below
            && !(0.0..=1.0).contains(&threshold)
        {
            return Err(format!(
                "routing.escalate_below is {threshold}; it must be from 0 to 1"
            ));
        }
        Ok(Routes {
            bank_card: route(self.bank_card.as_deref(), Capability::BankCard, &set_up)?,
            invoice_title: route(
                self.invoice_title.as_deref(),
                Capability::InvoiceTitle,
                &set_up,
            )?,
        })
    }
}

/// One capability's route: the names configured, checked, or the default.
fn route(
    names: Option<&[String]>,
    capability: Capability,
    set_up: &impl Fn(&Registration) -> bool,
) -> Result<Vec<&'static str>, String> {
    let key = capability.route_key();
    let Some(names) = names else {
        let capable = || REGISTRY.iter().filter(|r| r.can(capability));
        let default = capable()
            .find(|r| set_up(r))
            .or_else(|| capable().next())
            .ok_or_else(|| format!("{key}: no registered provider can serve it"))?;
        return Ok(vec![default.name]);
    };
    if names.is_empty() {
        return Err(format!("{key} names no provider"));
    }
    let mut route = Vec::with_capacity(names.len());
    for name in names {
        let registration = registration(name).ok_or_else(|| {
            format!(
                "{key}: no provider is called `{name}`; the providers are: {}",
                known_names()
            )
        })?;
        if !registration.can(capability) {
            let capable: Vec<_> = REGISTRY
                .iter()
                .filter(|r| r.can(capability))
                .map(|r| r.name)
                .collect();
            return Err(format!(
                "{key}: the `{name}` provider cannot serve it; those that can: {}",
                capable.join(", ")
            ));
        }
        if route.contains(&registration.name) {
            return Err(format!("{key} names `{name}` twice"));
        }
        route.push(registration.name);
    }
    Ok(route)
}

/// A capability as the edge calls it: its route with the layers over it, and the route's
/// providers by name, which a request may ask for.
pub struct Routed<P: ?Sized> {
    pub service: Arc<P>,
    pub providers: Vec<&'static str>,
}

impl<P: ?Sized> Routed<P> {
    /// Why a request naming `requested` cannot be served, when it cannot.
    pub fn refuses(&self, requested: &str) -> Option<String> {
        (!self.providers.contains(&requested)).then(|| unknown_provider(requested, &self.providers))
    }
}

fn unknown_provider(requested: &str, configured: &[&'static str]) -> String {
    format!(
        "no provider `{requested}` serves this call; configured: {}",
        configured.join(", ")
    )
}

/// When a route passes a call on.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The error kinds that pass a call on; `Busy` always does.
    pub failover_on: Arc<[ErrorKind]>,
    /// Answers under this confidence pass a call on.
    pub escalate_below: Option<f32>,
}

impl Policy {
    /// Why an error of `kind` passes the call on, if it does.
    fn passes_on(&self, kind: ErrorKind) -> Option<&'static str> {
        (kind == ErrorKind::Busy || self.failover_on.contains(&kind)).then(|| kind.config_name())
    }

    fn doubts(&self, confidence: Option<f32>) -> bool {
        matches!((confidence, self.escalate_below), (Some(c), Some(t)) if c < t)
    }
}

/// The providers of one capability, in order.
pub struct Route<P: ?Sized> {
    method: &'static str,
    providers: Vec<(&'static str, Arc<P>)>,
    policy: Policy,
    metrics: Metrics,
}

impl<P: ?Sized> Route<P> {
    /// The `providers` of a resolved route (never empty), by name, in order; `method` names the
    /// RPC in metrics and logs.
    pub fn new(
        method: &'static str,
        providers: Vec<(&'static str, Arc<P>)>,
        policy: Policy,
        metrics: Metrics,
    ) -> Self {
        Self {
            method,
            providers,
            policy,
            metrics,
        }
    }

    /// The route's providers by name, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.providers.iter().map(|(name, _)| *name).collect()
    }

    /// Calls `requested` alone, or else each provider in turn while the deadline lasts, until one
    /// gives an answer the policy trusts, or fails with an error that does not pass the call on.
    /// The call's trail notes who answered and each provider the call was passed on from.
    ///
    /// A doubtful answer is kept while the next provider is asked, with a deadline a little
    /// earlier than the call's (so that the kept answer can still be sent): the later provider's
    /// answer wins when it gives one; when it fails, the kept answer comes back marked as of low
    /// confidence. No error is returned while an answer exists.
    async fn call<T, F, Fut>(
        &self,
        requested: Option<&str>,
        call: &CallContext,
        mut serve: F,
    ) -> Result<T, ProviderError>
    where
        T: Graded,
        F: FnMut(Arc<P>, CallContext) -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let candidates: Vec<&(&'static str, Arc<P>)> = match requested {
            Some(requested) => {
                let named = self.providers.iter().find(|(name, _)| *name == requested);
                vec![named.ok_or_else(|| {
                    let why = unknown_provider(requested, &self.names());
                    ProviderError::new(ROUTE, ErrorKind::InvalidInput, why)
                })?]
            }
            None => self.providers.iter().collect(),
        };
        let mut candidates = candidates.into_iter().peekable();
        // The doubtful answer kept while later providers are asked, and who gave it.
        let mut kept: Option<(T, &'static str)> = None;
        let mut context = call.clone();
        while let Some((name, provider)) = candidates.next() {
            let result = serve(Arc::clone(provider), context.clone()).await;
            let time_left = call.remaining().is_none_or(|left| !left.is_zero());
            let next = candidates
                .peek()
                .map(|(next, _)| *next)
                .filter(|_| time_left);
            let (reason, err) = match result {
                Ok(mut value) => {
                    let doubtful = self.policy.doubts(value.confidence());
                    if !doubtful || next.is_none() {
                        if doubtful {
                            value.mark_low_confidence();
                        }
                        call.trail.answered(name);
                        return Ok(value);
                    }
                    kept = Some((value, name));
                    context = CallContext {
                        deadline: call.deadline.map(|deadline| deadline - reserve(call)),
                        ..call.clone()
                    };
                    ("low_confidence", None)
                }
                Err(err) => match (next, self.policy.passes_on(err.kind)) {
                    (Some(_), Some(reason)) => (reason, Some(err)),
                    _ => {
                        return match kept {
                            Some((mut value, kept)) => {
                                tracing::warn!(
                                    method = self.method,
                                    provider = name,
                                    kind = err.kind.as_str(),
                                    error = %err,
                                    kept,
                                    "no provider replaced a doubtful answer, which is kept"
                                );
                                value.mark_low_confidence();
                                call.trail.answered(kept);
                                Ok(value)
                            }
                            None => Err(err),
                        };
                    }
                },
            };
            let to = next.unwrap_or_default();
            tracing::warn!(
                method = self.method,
                from = name,
                to,
                reason,
                error = err.as_ref().map(tracing::field::display),
                "passing the call on to the next provider"
            );
            if let Some(err) = &err {
                self.metrics
                    .failover(self.method, name, to, err.kind.as_str());
            }
            self.metrics.escalation(self.method, name, to, reason);
            call.trail.passed_on(Escalation {
                from: name,
                to,
                reason,
            });
        }
        // Unreachable with a non-empty route; an empty one is refused when routes are resolved.
        Err(ProviderError::new(
            ROUTE,
            ErrorKind::Misconfigured,
            format!("{} has no provider", self.method),
        ))
    }
}

/// The name a route gives itself as a provider, and in the errors of a call it cannot route.
const ROUTE: &str = "route";

/// A route is a bank card service: the one the layers above it wrap.
#[async_trait]
impl BankCardRecognizer for Route<dyn BankCardRecognizer> {
    fn name(&self) -> &'static str {
        ROUTE
    }

    async fn recognize_bank_card(
        &self,
        request: BankCardRequest,
        call: &CallContext,
    ) -> Result<BankCard, ProviderError> {
        let requested = request.provider.clone();
        self.call(requested.as_deref(), call, |provider, call| {
            let request = request.clone();
            async move { provider.recognize_bank_card(request, &call).await }
        })
        .await
    }
}

/// A route is an invoice title service.
#[async_trait]
impl InvoiceTitleParser for Route<dyn InvoiceTitleParser> {
    fn name(&self) -> &'static str {
        ROUTE
    }

    async fn parse_invoice_title(
        &self,
        request: InvoiceTitleRequest,
        call: &CallContext,
    ) -> Result<InvoiceTitle, ProviderError> {
        let requested = request.provider.clone();
        self.call(requested.as_deref(), call, |provider, call| {
            let request = request.clone();
            async move { provider.parse_invoice_title(request, &call).await }
        })
        .await
    }
}

/// How much earlier than the call's deadline a provider asked about a doubtful answer must be
/// done, so that the answer kept can still reach the caller: a twentieth of the time left, from
/// 5 to 100 ms.
fn reserve(call: &CallContext) -> Duration {
    call.remaining().map_or(Duration::ZERO, |left| {
        (left / 20)
            .clamp(Duration::from_millis(5), Duration::from_millis(100))
            .min(left)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(names: &[&str]) -> Option<Vec<String>> {
        Some(names.iter().map(|name| (*name).to_owned()).collect())
    }

    #[test]
    fn default_routes_take_the_first_provider_set_up() {
        let config = RoutingConfig::default();
        for capability in [Capability::BankCard, Capability::InvoiceTitle] {
            let capable: Vec<_> = REGISTRY
                .iter()
                .filter(|r| r.can(capability))
                .map(|r| r.name)
                .collect();
            let chosen = |set_up: &dyn Fn(&Registration) -> bool| {
                let routes = config.resolve(set_up).expect("routes");
                match capability {
                    Capability::BankCard => routes.bank_card,
                    Capability::InvoiceTitle => routes.invoice_title,
                }
            };
            // Each capable provider, when it alone is set up; the first registered when none is.
            for name in &capable {
                assert_eq!(chosen(&|r| r.name == *name), [*name], "{capability:?}");
            }
            assert_eq!(chosen(&|_| false), [capable[0]], "{capability:?}");
            assert_eq!(chosen(&|_| true), [capable[0]], "{capability:?}");
            // Of several set up, the one registered first.
            if let [_, second, ..] = capable[..] {
                assert_eq!(
                    chosen(&|r| r.name != capable[0]),
                    [second],
                    "{capability:?}"
                );
            }
        }
    }

    #[test]
    fn routes_that_cannot_work_are_refused_by_name() {
        let refused = |config: RoutingConfig| config.resolve(|_| true).expect_err("refused");
        let err = refused(RoutingConfig {
            invoice_title: names(&["wechat", "local"]),
            ..RoutingConfig::default()
        });
        assert!(
            err.contains("routing.invoice_title: the `local` provider cannot serve it"),
            "{err}"
        );
        let err = refused(RoutingConfig {
            bank_card: names(&[]),
            ..RoutingConfig::default()
        });
        assert!(err.contains("routing.bank_card names no provider"), "{err}");
        let err = refused(RoutingConfig {
            bank_card: names(&["local", "local"]),
            ..RoutingConfig::default()
        });
        assert!(err.contains("`local` twice"), "{err}");
    }

    /// An answer of a test provider: its confidence, and whether it was marked doubtful.
    #[derive(Debug, Clone, PartialEq)]
    struct Reading {
        confidence: Option<f32>,
        low: bool,
    }

    impl Graded for Reading {
        fn confidence(&self) -> Option<f32> {
            self.confidence
        }

        fn mark_low_confidence(&mut self) {
            self.low = true;
        }
    }

    /// What each test provider does, by name: answer with a confidence, or fail with a kind.
    fn behaviour(name: &str) -> Result<Reading, ErrorKind> {
        let answer = |confidence| {
            Ok(Reading {
                confidence,
                low: false,
            })
        };
        match name {
            "unsure" => answer(Some(0.4)),
            "sure" => answer(Some(0.95)),
            "silent" => answer(None),
            "busy" => Err(ErrorKind::Busy),
            "missing" => Err(ErrorKind::NotFound),
            "broken" => Err(ErrorKind::Unavailable),
            _ => Err(ErrorKind::InvalidInput),
        }
    }

    /// Routes a call along `names` with `escalate_below`: the answer (or error kind), who gave
    /// it, and why the call was passed on.
    async fn routed(
        names: &[&'static str],
        escalate_below: Option<f32>,
    ) -> Result<(Reading, &'static str, Vec<&'static str>), ErrorKind> {
        let route: Route<str> = Route::new(
            "Test",
            names.iter().map(|name| (*name, Arc::from(*name))).collect(),
            Policy {
                failover_on: Arc::from([ErrorKind::Unavailable]),
                escalate_below,
            },
            Metrics::disabled(),
        );
        let call = CallContext::default();
        let reading = route
            .call(None, &call, |name: Arc<str>, _| async move {
                behaviour(&name).map_err(|kind| ProviderError::new("test", kind, "failed"))
            })
            .await
            .map_err(|err| err.kind)?;
        let trail = call.trail.take();
        let reasons = trail.escalations.iter().map(|e| e.reason).collect();
        Ok((reading, trail.provider.expect("noted"), reasons))
    }

    #[tokio::test]
    async fn an_answer_under_the_threshold_goes_on_and_the_next_providers_answer_wins() {
        let (reading, provider, reasons) = routed(&["unsure", "silent"], Some(0.9))
            .await
            .expect("answered");
        assert_eq!((provider, reasons), ("silent", vec!["low_confidence"]));
        assert!(!reading.low);
        // Without a threshold, or above it, the first answer is kept as it is.
        let (_, provider, reasons) = routed(&["unsure", "silent"], None).await.expect("kept");
        assert_eq!((provider, reasons.len()), ("unsure", 0));
        let (_, provider, _) = routed(&["sure", "silent"], Some(0.9)).await.expect("kept");
        assert_eq!(provider, "sure");
    }

    #[tokio::test]
    async fn a_doubtful_answer_is_kept_marked_when_no_later_provider_answers() {
        for after in ["broken", "invalid"] {
            let (reading, provider, reasons) = routed(&["unsure", after], Some(0.9))
                .await
                .expect("never an error while an answer exists");
            assert_eq!((provider, reasons), ("unsure", vec!["low_confidence"]));
            assert!(reading.low, "{after}");
        }
        // The last provider's doubtful answer is marked too.
        let (reading, provider, _) = routed(&["unsure"], Some(0.9)).await.expect("kept");
        assert_eq!(provider, "unsure");
        assert!(reading.low);
    }

    #[tokio::test]
    async fn a_busy_provider_passes_the_call_on_whatever_failover_on_says() {
        let (_, provider, reasons) = routed(&["busy", "silent"], None).await.expect("answered");
        assert_eq!((provider, reasons), ("silent", vec!["busy"]));
        // Not found is not in this policy's failover_on: it is answered as it is.
        assert_eq!(
            routed(&["missing", "silent"], None)
                .await
                .expect_err("not found"),
            ErrorKind::NotFound
        );
        assert_eq!(
            routed(&["busy"], None).await.expect_err("busy"),
            ErrorKind::Busy
        );
    }

    #[test]
    fn an_escalation_threshold_outside_0_to_1_is_refused() {
        for threshold in [-0.1, 1.5, f32::NAN] {
            let err = RoutingConfig {
                escalate_below: Some(threshold),
                ..RoutingConfig::default()
            }
            .resolve(|_| true)
            .expect_err("refused");
            assert!(err.contains("routing.escalate_below"), "{err}");
        }
        for threshold in [0.0, 0.9, 1.0] {
            let config = RoutingConfig {
                escalate_below: Some(threshold),
                ..RoutingConfig::default()
            };
            assert!(config.resolve(|_| true).is_ok(), "{threshold}");
        }
    }

    #[test]
    fn an_unknown_provider_stops_routing_and_the_message_lists_the_known_ones() {
        let err = RoutingConfig {
            bank_card: names(&["wechat", "acme"]),
            ..RoutingConfig::default()
        }
        .resolve(|_| true)
        .expect_err("unknown");
        assert!(err.contains("no provider is called `acme`"), "{err}");
        assert!(err.contains("wechat, tencent, local"), "{err}");
    }
}
