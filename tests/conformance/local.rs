//! The local reader in the bank card suite: it reads the photos themselves, offline.

use ocrgate::config::Config;
use vendor_sim::Simulator;

use crate::{
    Fixture,
    common::{local_models, with_local_models},
};

pub struct Local;

impl Fixture for Local {
    const NAME: &'static str = "local";

    /// Runs where the model files are (see `local_models`). Calls may take a minute, as in
    /// `tests/local.rs`: a photo without a card goes through every look, and the tests'
    /// unoptimised build on two shared cores takes about ten seconds for it alone.
    fn configure(config: &mut Config, _: &Simulator) -> bool {
        let Some(models) = local_models() else {
            return false;
        };
        with_local_models(config, &models);
        config.providers.set("local.concurrency", 2);
        config.limits.max_call_duration = std::time::Duration::from_secs(60);
        true
    }
}

behaviours!(offline Local);
