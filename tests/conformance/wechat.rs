//! WeChat in the bank card and invoice title suites.

use ocrgate::config::Config;
use vendor_sim::{Endpoint, Fault, Simulator};

use crate::{Fixture, Vendor, common::APP_SECRET, titles::TitleFixture};

pub struct Wechat;

impl Fixture for Wechat {
    const NAME: &'static str = "wechat";

    /// The tests' configuration already has the simulator's app as the default account.
    fn configure(_: &mut Config, _: &Simulator) -> bool {
        true
    }

    fn vendor() -> Option<Vendor> {
        Some(Vendor {
            endpoint: Endpoint::BankCard,
            secret: APP_SECRET,
            secret_key: "wechat.app_secret",
            undecodable: Fault::errcode(101002, "image decode failed"),
            retries: 2,
        })
    }
}

behaviours!(vendor Wechat);

impl TitleFixture for Wechat {
    const NAME: &'static str = "wechat";
    const ENDPOINT: Endpoint = Endpoint::ScanTitle;
    const SECRET: &'static str = APP_SECRET;
    const SECRET_KEY: &'static str = "wechat.app_secret";
    const RETRIES: usize = 2;
}

title_behaviours!(Wechat);
