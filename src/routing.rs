//! Which provider serves a call: an ordered list per capability, failing over to the next provider
//! on chosen kinds of error while the deadline lasts.

use std::{future::Future, sync::Arc};

use serde::Deserialize;

use crate::{
    provider::{CallContext, ErrorKind, ProviderError},
    telemetry::Metrics,
};

/// The providers ocrgate has, by their names in the configuration and in responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderName {
    Wechat,
    Local,
}

impl ProviderName {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Wechat => "wechat",
            Self::Local => "local",
        }
    }
}

/// The `[routing]` section of the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoutingConfig {
    /// Providers for RecognizeBankCard, first choice first. Default: `["wechat"]` when a WeChat
    /// account is configured, else `["local"]`.
    pub bank_card: Option<Vec<ProviderName>>,
    /// Providers for ParseInvoiceTitle. Only `wechat` reads invoice titles.
    pub invoice_title: Option<Vec<ProviderName>>,
    /// The kinds of error after which a call goes on to the next provider.
    pub failover_on: Vec<ErrorKind>,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        Self {
            bank_card: None,
            invoice_title: None,
            failover_on: vec![ErrorKind::Unavailable, ErrorKind::QuotaExhausted],
        }
    }
}

/// The routes the configuration asks for, defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routes {
    pub bank_card: Vec<ProviderName>,
    pub invoice_title: Vec<ProviderName>,
}

impl Routes {
    /// Whether any route uses `provider`.
    pub fn uses(&self, provider: ProviderName) -> bool {
        self.bank_card.contains(&provider) || self.invoice_title.contains(&provider)
    }
}

impl RoutingConfig {
    /// The routes, given whether a WeChat account and the local provider's files are there.
    pub fn resolve(
        &self,
        wechat_configured: bool,
        local_installed: bool,
    ) -> Result<Routes, String> {
        let bank_card = match &self.bank_card {
            Some(providers) => providers.clone(),
            None if !wechat_configured && local_installed => vec![ProviderName::Local],
            None => vec![ProviderName::Wechat],
        };
        let invoice_title = self
            .invoice_title
            .clone()
            .unwrap_or_else(|| vec![ProviderName::Wechat]);
        for (name, route) in [
            ("routing.bank_card", &bank_card),
            ("routing.invoice_title", &invoice_title),
        ] {
            if route.is_empty() {
                return Err(format!("{name} names no provider"));
            }
            if let Some(twice) = route
                .iter()
                .enumerate()
                .find(|(i, p)| route[..*i].contains(p))
            {
                return Err(format!("{name} names `{}` twice", twice.1.as_str()));
            }
        }
        if invoice_title.contains(&ProviderName::Local) {
            return Err(
                "routing.invoice_title: the local provider does not read invoice titles".into(),
            );
        }
        Ok(Routes {
            bank_card,
            invoice_title,
        })
    }
}

/// What a route answered, and which provider answered it.
#[derive(Debug)]
pub struct Answer<T> {
    pub value: T,
    pub provider: &'static str,
}

/// Why a routed call failed.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// The request named a provider this route does not have.
    #[error("no provider `{requested}` serves this call; configured: {}", .configured.join(", "))]
    UnknownProvider {
        requested: String,
        configured: Vec<&'static str>,
    },
    /// The last provider tried failed.
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

/// The providers of one capability, in order.
pub struct Route<P: ?Sized> {
    method: &'static str,
    providers: Vec<(&'static str, Arc<P>)>,
    failover_on: Arc<[ErrorKind]>,
    metrics: Metrics,
}

impl<P: ?Sized> Route<P> {
    /// The providers `names` (resolved routes are never empty), each built by `provider`;
    /// `method` names the RPC in metrics and logs.
    pub fn new(
        method: &'static str,
        names: &[ProviderName],
        provider: impl Fn(ProviderName) -> Arc<P>,
        failover_on: Arc<[ErrorKind]>,
        metrics: Metrics,
    ) -> Self {
        Self {
            method,
            providers: names
                .iter()
                .map(|&name| (name.as_str(), provider(name)))
                .collect(),
            failover_on,
            metrics,
        }
    }

    fn names(&self) -> Vec<&'static str> {
        self.providers.iter().map(|(name, _)| *name).collect()
    }

    /// Calls `requested` alone, or else each provider in turn until one answers or fails with an
    /// error that is not a failover kind, or the deadline has passed.
    pub async fn call<T, F, Fut>(
        &self,
        requested: Option<&str>,
        call: &CallContext,
        mut serve: F,
    ) -> Result<Answer<T>, RouteError>
    where
        F: FnMut(Arc<P>) -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let candidates: Vec<&(&'static str, Arc<P>)> = match requested {
            Some(requested) => {
                let named = self.providers.iter().find(|(name, _)| *name == requested);
                vec![named.ok_or_else(|| RouteError::UnknownProvider {
                    requested: requested.to_owned(),
                    configured: self.names(),
                })?]
            }
            None => self.providers.iter().collect(),
        };
        let mut candidates = candidates.into_iter().peekable();
        while let Some((name, provider)) = candidates.next() {
            let err = match serve(Arc::clone(provider)).await {
                Ok(value) => {
                    return Ok(Answer {
                        value,
                        provider: name,
                    });
                }
                Err(err) => err,
            };
            let time_left = call.remaining().is_none_or(|left| !left.is_zero());
            match candidates.peek() {
                Some((next, _)) if time_left && self.failover_on.contains(&err.kind) => {
                    tracing::warn!(
                        method = self.method,
                        from = name,
                        to = next,
                        kind = err.kind.as_str(),
                        error = %err,
                        "failing over to the next provider"
                    );
                    self.metrics.failover(self.method, name, next, err.kind);
                }
                _ => return Err(err.into()),
            }
        }
        // Unreachable with a non-empty route; an empty one is refused when routes are resolved.
        Err(RouteError::UnknownProvider {
            requested: requested.unwrap_or_default().to_owned(),
            configured: self.names(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_wechat_bank_cards_default_to_local_when_installed() {
        let config = RoutingConfig::default();
        let routes = config.resolve(false, true).expect("routes");
        assert_eq!(routes.bank_card, [ProviderName::Local]);
        assert_eq!(routes.invoice_title, [ProviderName::Wechat]);
        assert_eq!(
            config.resolve(true, true).expect("routes").bank_card,
            [ProviderName::Wechat]
        );
        assert_eq!(
            config.resolve(false, false).expect("routes").bank_card,
            [ProviderName::Wechat]
        );
    }

    #[test]
    fn routes_that_cannot_work_are_refused_by_name() {
        let refused = |config: RoutingConfig| config.resolve(true, true).expect_err("refused");
        let err = refused(RoutingConfig {
            invoice_title: Some(vec![ProviderName::Wechat, ProviderName::Local]),
            ..RoutingConfig::default()
        });
        assert!(err.contains("routing.invoice_title"), "{err}");
        let err = refused(RoutingConfig {
            bank_card: Some(vec![]),
            ..RoutingConfig::default()
        });
        assert!(err.contains("routing.bank_card names no provider"), "{err}");
        let err = refused(RoutingConfig {
            bank_card: Some(vec![ProviderName::Local, ProviderName::Local]),
            ..RoutingConfig::default()
        });
        assert!(err.contains("`local` twice"), "{err}");
    }
}
