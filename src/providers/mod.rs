//! Providers behind the `provider` traits, one folder each, and the registry that lists them.
//!
//! Each folder exposes one [`Registration`]: the provider's name, the capabilities it builds, its
//! short environment names, and how it reads, checks and builds itself from its own section of the
//! configuration, which only it knows the settings of.
//! The server, `check-config` and routing know providers only through [`REGISTRY`].

mod credentials;
mod http;
pub mod images;
mod layers;
pub mod local;
mod retry;
pub mod tencent;
mod vendor;
pub mod wechat;

use std::{future::Future, pin::Pin, sync::Arc};

pub use self::retry::RetryPolicy;
use crate::{
    provider::{BankCardRecognizer, InvoiceTitleParser},
    settings::{ConfigError, Section, Sections},
    telemetry::Metrics,
};

/// Every provider ocrgate has. A default route takes the first one set up for its capability.
pub static REGISTRY: &[Registration] = &[
    wechat::REGISTRATION,
    tencent::REGISTRATION,
    local::REGISTRATION,
];

/// What a provider can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// `RecognizeBankCard`, through [`BankCardRecognizer`].
    BankCard,
    /// `ParseInvoiceTitle`, through [`InvoiceTitleParser`].
    InvoiceTitle,
}

impl Capability {
    /// The configuration key of its route.
    pub fn route_key(self) -> &'static str {
        match self {
            Self::BankCard => "routing.bank_card",
            Self::InvoiceTitle => "routing.invoice_title",
        }
    }
}

/// Why a provider could not be built or checked; its message names what to fix.
pub type BuildError = Box<dyn std::error::Error + Send + Sync>;

/// A provider's services, built: one per capability it registered.
#[derive(Default, Clone)]
pub struct Built {
    pub bank_card: Option<Arc<dyn BankCardRecognizer>>,
    pub invoice_title: Option<Arc<dyn InvoiceTitleParser>>,
    /// What images its bank card service takes as they are; an upload it would not take is
    /// fitted (re-encoded as a JPEG) before the service sees it. `None` takes every upload.
    pub fits: Option<Fitting>,
    /// How its services' retryable failures are tried again; `None` gives each call one try.
    pub retries: Option<RetryPolicy>,
}

/// The images a provider takes, and the largest it decodes to fit one.
#[derive(Debug, Clone, Copy)]
pub struct Fitting {
    pub accepts: images::Accepts,
    pub max_pixels: u64,
}

/// Building may load models or read files: the server awaits it before it serves.
pub type Building = Pin<Box<dyn Future<Output = Result<Built, BuildError>> + Send>>;

/// One provider, as the server, `check-config` and routing see it.
pub struct Registration {
    /// Its name in routes, requests, responses, error reasons and metric labels.
    pub name: &'static str,
    /// Its section of the configuration file, e.g. `[tencent]`, and of the environment
    /// (`OCRGATE_TENCENT__*`).
    pub section: &'static str,
    pub capabilities: &'static [Capability],
    /// Short environment names, as (variable less `OCRGATE_`, configuration key), lower case.
    pub env: &'static [(&'static str, &'static str)],
    /// Reads its section, as loading the configuration does for every provider, routed or not:
    /// a mistyped key fails there.
    pub read: fn(Section<'_>) -> Result<(), ConfigError>,
    /// Whether its section gives it what it needs to answer (credentials, model files).
    /// Default routes skip a provider that is not set up.
    pub set_up: fn(Section<'_>) -> bool,
    /// What to do to set it up, for the warning when a route names it unset.
    pub set_up_hint: &'static str,
    /// Checks its section as building would, without loading anything heavy; a one-line summary.
    pub check: fn(Section<'_>) -> Result<String, BuildError>,
    pub build: fn(Section<'_>, &Metrics) -> Building,
}

impl Registration {
    pub fn can(&self, capability: Capability) -> bool {
        self.capabilities.contains(&capability)
    }

    /// Whether its section in `sections` sets it up.
    pub fn is_set_up(&self, sections: &Sections) -> bool {
        (self.set_up)(sections.section(self.section))
    }

    /// Checks its section in `sections`; a one-line summary.
    pub fn checked(&self, sections: &Sections) -> Result<String, BuildError> {
        (self.check)(sections.section(self.section))
    }

    /// Builds the provider from its section in `sections`, its services wrapped in the layers
    /// every provider gets (see `layers`).
    pub async fn build_layered(
        &self,
        sections: &Sections,
        metrics: &Metrics,
    ) -> Result<Built, BuildError> {
        Ok((self.build)(sections.section(self.section), metrics)
            .await?
            .layered(metrics))
    }
}

/// The registration called `name`.
pub fn registration(name: &str) -> Option<&'static Registration> {
    REGISTRY
        .iter()
        .find(|registration| registration.name == name)
}

/// The names of every registered provider, for messages.
pub fn known_names() -> String {
    listed(|registration| registration.name)
}

/// The configuration sections of every registered provider, for messages.
pub fn known_sections() -> String {
    listed(|registration| registration.section)
}

fn listed(field: fn(&Registration) -> &'static str) -> String {
    REGISTRY.iter().map(field).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_sections_are_unique_and_every_provider_serves_something() {
        for (i, registration) in REGISTRY.iter().enumerate() {
            assert!(
                !registration.capabilities.is_empty(),
                "{}",
                registration.name
            );
            assert!(
                REGISTRY[..i]
                    .iter()
                    .all(|earlier| earlier.name != registration.name
                        && earlier.section != registration.section),
                "{} is registered twice",
                registration.name
            );
        }
    }

    #[test]
    fn short_environment_names_belong_to_their_provider() {
        for registration in REGISTRY {
            for (variable, key) in registration.env {
                assert!(variable.starts_with(registration.section), "{variable}");
                assert!(
                    key.starts_with(&format!("{}.", registration.section)),
                    "{key}"
                );
            }
        }
    }
}
