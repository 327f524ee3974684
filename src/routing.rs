//! Which provider serves a call: an ordered list per capability, failing over to the next provider
//! on chosen kinds of error while the deadline lasts.

use std::{future::Future, sync::Arc};

use serde::Deserialize;

use crate::{
    provider::{CallContext, ErrorKind, ProviderError},
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
    /// The `providers` of a resolved route (never empty), by name, in order; `method` names the
    /// RPC in metrics and logs.
    pub fn new(
        method: &'static str,
        providers: Vec<(&'static str, Arc<P>)>,
        failover_on: Arc<[ErrorKind]>,
        metrics: Metrics,
    ) -> Self {
        Self {
            method,
            providers,
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

    fn names(names: &[&str]) -> Option<Vec<String>> {
        Some(names.iter().map(|name| (*name).to_owned()).collect())
    }

    #[test]
    fn default_routes_take_the_first_provider_set_up() {
        let config = RoutingConfig::default();
        let routes = config.resolve(|r| r.name == "local").expect("routes");
        assert_eq!(routes.bank_card, ["local"]);
        assert_eq!(routes.invoice_title, ["wechat"]);
        let routes = config.resolve(|r| r.name != "wechat").expect("routes");
        assert_eq!(routes.bank_card, ["tencent"]);
        assert_eq!(
            config.resolve(|_| true).expect("routes").bank_card,
            ["wechat"]
        );
        assert_eq!(
            config.resolve(|_| false).expect("routes").bank_card,
            ["wechat"]
        );
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
