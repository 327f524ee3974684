//! Tencent Cloud in the bank card suite.

use ocrgate::config::Config;
use vendor_sim::{Endpoint, Fault, Simulator};

use crate::{
    Fixture, Vendor,
    common::{TENCENT_SECRET_KEY, with_tencent},
};

pub struct Tencent;

impl Fixture for Tencent {
    const NAME: &'static str = "tencent";

    fn configure(config: &mut Config, sim: &Simulator) -> bool {
        with_tencent(config, sim);
        true
    }

    fn vendor() -> Option<Vendor> {
        Some(Vendor {
            endpoint: Endpoint::TencentBankCard,
            secret: TENCENT_SECRET_KEY,
            secret_key: "tencent.secret_key",
            undecodable: Fault::tencent("FailedOperation.ImageDecodeFailed", "image decode failed"),
            retries: 2,
        })
    }
}

behaviours!(vendor Tencent);
