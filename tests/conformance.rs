//! What every bank card provider must do, checked the same way for each: one function per
//! behaviour, taking the provider under test, and one test per provider and behaviour.
//!
//! WeChat is driven through the simulator, which is told which number each generated photo shows;
//! the local provider reads the very same photos itself.

mod common;

use common::{Gateway, cards, local_models, ordinary_cards, upload, with_local_models};
use ocrgate::routing::ProviderName;
use ocrgate_cardgen::Card;
use tonic::Code;
use wechat_sim::SimConfig;

/// A gateway whose only bank card provider is the one under test.
struct Subject {
    gateway: Gateway,
    provider: ProviderName,
}

impl Subject {
    async fn wechat() -> Self {
        let gateway = Gateway::start_with(SimConfig::default(), |config| {
            config.routing.bank_card = Some(vec![ProviderName::Wechat]);
        })
        .await;
        Self {
            gateway,
            provider: ProviderName::Wechat,
        }
    }

    async fn local() -> Option<Self> {
        let models = local_models()?;
        let gateway = Gateway::start_with(SimConfig::default(), |config| {
            config.routing.bank_card = Some(vec![ProviderName::Local]);
            with_local_models(config, &models);
        })
        .await;
        Some(Self {
            gateway,
            provider: ProviderName::Local,
        })
    }

    /// Makes `card` a photo the provider can read: the simulator learns its number.
    fn show(&self, card: &Card) {
        if self.provider == ProviderName::Wechat {
            self.gateway
                .sim
                .add_card_image(card.jpeg.clone(), &card.number);
        }
    }
}

/// Cards of their own, apart from those the other tests use.
const FIRST_SEED: u64 = 100;

async fn reads_the_number_and_names_itself(subject: Subject) {
    for card in ordinary_cards(FIRST_SEED, 3) {
        subject.show(&card);
        let reply = subject
            .gateway
            .recognize(upload(card.jpeg.clone()))
            .await
            .unwrap_or_else(|status| panic!("seed {}: {status:?}", card.seed));

        assert_eq!(reply.card_number, card.number, "seed {}", card.seed);
        assert_eq!(reply.provider, subject.provider.as_str());
        let n = card.number.len();
        assert_eq!(
            reply.masked_number,
            format!(
                "{}{}{}",
                &card.number[..6],
                "*".repeat(n - 10),
                &card.number[n - 4..]
            )
        );
        assert!(reply.luhn_valid);
    }
}

async fn answers_not_found_for_a_photo_without_a_card(subject: Subject) {
    let status = subject
        .gateway
        .recognize(upload(cards().non_card(5)))
        .await
        .expect_err("no card");

    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    let (reason, metadata) = common::error_info(&status);
    let name = subject.provider.as_str();
    assert_eq!(reason, format!("{}_NOT_FOUND", name.to_ascii_uppercase()));
    assert_eq!(metadata["provider"], name);
    assert_eq!(metadata["retryable"], "false");
}

async fn answers_concurrent_calls_each_with_its_own_number(subject: Subject) {
    let cards = ordinary_cards(FIRST_SEED, 4);
    for card in &cards {
        subject.show(card);
    }
    let calls = cards.iter().map(|card| {
        let mut client = subject.gateway.client.clone();
        let request = upload(card.jpeg.clone());
        async move { client.recognize_bank_card(request).await }
    });
    let replies = futures_util::future::join_all(calls).await;

    for (card, reply) in cards.iter().zip(replies) {
        let reply = reply.expect("answered").into_inner();
        assert_eq!(reply.card_number, card.number, "seed {}", card.seed);
    }
}

macro_rules! conformance {
    ($($behaviour:ident),+ $(,)?) => {
        mod wechat {
            $(
                #[tokio::test]
                async fn $behaviour() {
                    super::$behaviour(super::Subject::wechat().await).await;
                }
            )+
        }
        mod local {
            $(
                #[tokio::test]
                async fn $behaviour() {
                    let Some(subject) = super::Subject::local().await else { return };
                    super::$behaviour(subject).await;
                }
            )+
        }
    };
}

conformance!(
    reads_the_number_and_names_itself,
    answers_not_found_for_a_photo_without_a_card,
    answers_concurrent_calls_each_with_its_own_number,
);
