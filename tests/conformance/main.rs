//! What every bank card provider in the registry must do, checked the same way for each: directly
//! through `dyn BankCardRecognizer` (built by the provider's registration, with the layers every
//! provider gets) and through gRPC.
//!
//! The suite is a library of behaviours, each a function of the provider under test. A provider
//! joins by implementing [`Fixture`] in a file of its own here (how to configure it against the
//! simulator, and, for a vendor, the endpoint, secret and faults that drive it) and one line in
//! the `conformance!` call at the end. Vendors are driven through their simulators, which are
//! shown the number each generated photo holds; the local provider reads the very same photos.
//! Invoice title providers (WeChat alone today) meet their own suite the same way (`titles.rs`).

#[path = "../common/mod.rs"]
mod common;

use std::{marker::PhantomData, sync::Arc, time::Duration};

use common::{Gateway, cards, config_for, ordinary_cards, route, upload};
use ocrgate::{
    config::Config,
    provider::{
        BankCardRecognizer, BankCardRequest, CallContext, ErrorKind, ImageFormat, ImageSource,
        ProviderError, RecognitionMode,
    },
    providers::registration,
    telemetry::Metrics,
};
use ocrgate_cardgen::Card;
use tonic::{Code, Status};
use vendor_sim::{Endpoint, Fault, SimConfig, Simulator};

/// A bank card provider under test: what it implements to join the suite.
trait Fixture: Sized {
    /// Its name in the registry.
    const NAME: &'static str;

    /// Sets it up in `config` against `sim` (whose apps and keys are the tests' own); `false`
    /// when it cannot run here (the local provider without its model files).
    fn configure(config: &mut Config, sim: &Simulator) -> bool;

    /// The vendor behind it, for the behaviours only a remote vendor has.
    fn vendor() -> Option<Vendor> {
        None
    }
}

/// How the suite drives a vendor through its simulator.
struct Vendor {
    /// Its bank card endpoint.
    endpoint: Endpoint,
    /// A secret it must never show, and its configuration key.
    secret: &'static str,
    secret_key: &'static str,
    /// How the vendor says it could not decode an image.
    undecodable: Fault,
    /// Retries it makes after a transient failure, as configured.
    retries: usize,
}

/// One provider under test: a gateway routing bank cards to it alone, and the provider itself.
struct Subject<F> {
    gateway: Gateway,
    direct: Arc<dyn BankCardRecognizer>,
    vendor: Option<Vendor>,
    fixture: PhantomData<F>,
}

impl<F: Fixture> Subject<F> {
    /// Starts a simulator, a gateway whose only bank card provider is `F`, and the provider as its
    /// registration builds it from the same configuration; `None` when `F` cannot run here.
    async fn start() -> Option<Self> {
        let sim = common::simulator(SimConfig::default()).await;
        let mut config = config_for(&sim);
        if !F::configure(&mut config, &sim) {
            return None;
        }
        config.routing.bank_card = route(&[F::NAME]);
        let direct = build(F::NAME, &config).await;
        let gateway = Gateway::serve(sim, config).await;
        Some(Self {
            gateway,
            direct,
            vendor: F::vendor(),
            fixture: PhantomData,
        })
    }

    /// Makes `card` a photo the provider can read: the simulators learn its number.
    fn show(&self, card: &Card) {
        self.gateway
            .sim
            .add_card_image(card.jpeg.clone(), &card.number);
    }

    fn vendor(&self) -> &Vendor {
        self.vendor.as_ref().expect("a vendor fixture")
    }

    async fn direct(
        &self,
        image: Vec<u8>,
        deadline: Option<Duration>,
    ) -> Result<String, ProviderError> {
        let format = ImageFormat::sniff(&image).expect("an image format");
        let request = BankCardRequest {
            image: ImageSource::Upload {
                bytes: image.into(),
                format,
            },
            mode: RecognitionMode::Photo,
            account: None,
            provider: None,
        };
        let call = CallContext {
            deadline: deadline.map(|after| tokio::time::Instant::now() + after),
            ..CallContext::default()
        };
        self.direct
            .recognize_bank_card(request, &call)
            .await
            .map(|card| card.number.digits().to_owned())
    }

    /// Asserts `status` is `code` with the reason `<NAME>_<kind>`, and holds no secret.
    fn assert_failed(&self, status: &Status, code: Code, kind: &str) {
        assert_eq!(status.code(), code, "{status:?}");
        let (reason, metadata) = common::error_info(status);
        assert_eq!(reason, format!("{}_{kind}", F::NAME.to_ascii_uppercase()));
        assert_eq!(metadata["provider"], F::NAME);
        if let Some(vendor) = &self.vendor {
            let shown = format!("{status:?}");
            assert!(!shown.contains(vendor.secret), "a secret in {shown}");
        }
    }

    /// Asserts the provider, called directly, failed with `kind` and holds no secret.
    fn assert_direct_failed(&self, err: &ProviderError, kind: ErrorKind) {
        assert_eq!(err.kind, kind, "{err:?}");
        assert_eq!(err.provider, F::NAME);
        if let Some(vendor) = &self.vendor {
            assert!(
                !format!("{err:?}").contains(vendor.secret),
                "a secret in {err:?}"
            );
        }
    }
}

/// The bank card service of provider `name`, as the server builds it from `config`: with the
/// layers every provider gets.
async fn build(name: &str, config: &Config) -> Arc<dyn BankCardRecognizer> {
    let registration = registration(name).expect("registered");
    registration
        .build_layered(&config.providers, &Metrics::disabled())
        .await
        .expect("builds")
        .bank_card
        .expect("reads bank cards")
}

/// Cards of their own, apart from those the other tests use.
const FIRST_SEED: u64 = 100;

async fn reads_the_number_and_names_itself<F: Fixture>(subject: Subject<F>) {
    assert_eq!(subject.direct.name(), F::NAME);
    for card in ordinary_cards(FIRST_SEED, 3) {
        subject.show(&card);
        let reply = subject.gateway.read_card(&card).await;

        assert_eq!(reply.card_number, card.number, "seed {}", card.seed);
        assert!(reply.card_number.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(reply.provider, F::NAME);
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
        let direct = subject
            .direct(card.jpeg.clone(), None)
            .await
            .expect("read directly");
        assert_eq!(direct, card.number, "seed {}", card.seed);
    }
}

async fn answers_not_found_for_a_photo_without_a_card<F: Fixture>(subject: Subject<F>) {
    let photo = cards().non_card(5);
    let status = subject
        .gateway
        .recognize(upload(photo.clone()))
        .await
        .expect_err("no card");
    subject.assert_failed(&status, Code::NotFound, "NOT_FOUND");
    assert_eq!(common::error_info(&status).1["retryable"], "false");

    let err = subject.direct(photo, None).await.expect_err("no card");
    subject.assert_direct_failed(&err, ErrorKind::NotFound);
}

async fn refuses_an_undecodable_image<F: Fixture>(subject: Subject<F>) {
    // A JPEG's signature, then nothing a decoder can use.
    let mut broken = b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00".to_vec();
    broken.extend(std::iter::repeat_n(0x5a, 512));
    if let Some(vendor) = &subject.vendor {
        subject
            .gateway
            .sim
            .inject(vendor.endpoint, vendor.undecodable.clone(), 2);
    }
    let status = subject
        .gateway
        .recognize(upload(broken.clone()))
        .await
        .expect_err("undecodable");
    subject.assert_failed(&status, Code::InvalidArgument, "INVALID_INPUT");

    let err = subject.direct(broken, None).await.expect_err("undecodable");
    subject.assert_direct_failed(&err, ErrorKind::InvalidInput);
}

async fn answers_concurrent_calls_each_with_its_own_number<F: Fixture>(subject: Subject<F>) {
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

async fn reports_an_exhausted_quota<F: Fixture>(subject: Subject<F>) {
    let card = &ordinary_cards(FIRST_SEED, 1)[0];
    subject.show(card);
    subject.gateway.sim.set_quota(subject.vendor().endpoint, 0);

    let status = subject
        .gateway
        .recognize(upload(card.jpeg.clone()))
        .await
        .expect_err("no quota");
    subject.assert_failed(&status, Code::ResourceExhausted, "QUOTA_EXHAUSTED");
    assert!(common::error_info(&status).1.contains_key("errcode"));

    let err = subject
        .direct(card.jpeg.clone(), None)
        .await
        .expect_err("no quota");
    subject.assert_direct_failed(&err, ErrorKind::QuotaExhausted);
}

async fn retries_an_unavailable_vendor_a_bounded_number_of_times<F: Fixture>(subject: Subject<F>) {
    let card = &ordinary_cards(FIRST_SEED, 1)[0];
    subject.show(card);
    let vendor = subject.vendor();
    subject
        .gateway
        .sim
        .inject(vendor.endpoint, Fault::HttpStatus(503), 100);

    let status = subject
        .gateway
        .recognize(upload(card.jpeg.clone()))
        .await
        .expect_err("unavailable");
    subject.assert_failed(&status, Code::Unavailable, "UNAVAILABLE");
    assert_eq!(common::error_info(&status).1["retryable"], "true");
    assert_eq!(
        subject.gateway.sim.count(vendor.endpoint),
        1 + vendor.retries
    );

    let err = subject
        .direct(card.jpeg.clone(), None)
        .await
        .expect_err("unavailable");
    subject.assert_direct_failed(&err, ErrorKind::Unavailable);
    assert_eq!(
        subject.gateway.sim.count(vendor.endpoint),
        2 * (1 + vendor.retries)
    );
}

async fn recovers_when_the_vendor_comes_back_within_the_retries<F: Fixture>(subject: Subject<F>) {
    let card = &ordinary_cards(FIRST_SEED, 1)[0];
    subject.show(card);
    let vendor = subject.vendor();
    subject
        .gateway
        .sim
        .inject(vendor.endpoint, Fault::HttpStatus(502), vendor.retries);

    let reply = subject
        .gateway
        .recognize(upload(card.jpeg.clone()))
        .await
        .expect("answered after the retries");
    assert_eq!(reply.card_number, card.number);
    assert_eq!(
        subject.gateway.sim.count(vendor.endpoint),
        1 + vendor.retries
    );
}

async fn cuts_an_endless_reply_at_the_cap<F: Fixture>(subject: Subject<F>) {
    let card = &ordinary_cards(FIRST_SEED, 1)[0];
    subject.show(card);
    let vendor = subject.vendor();
    // Far more than the 1 MiB a vendor reply may hold; streamed, so the simulator holds none of it.
    subject
        .gateway
        .sim
        .inject(vendor.endpoint, Fault::OversizedBody(64 << 20), 2);

    let status = subject
        .gateway
        .recognize(upload(card.jpeg.clone()))
        .await
        .expect_err("too long");
    subject.assert_failed(&status, Code::Unknown, "UNKNOWN");
    assert!(
        status.message().contains("longer than 1048576 bytes"),
        "{status:?}"
    );

    let err = subject
        .direct(card.jpeg.clone(), None)
        .await
        .expect_err("too long");
    subject.assert_direct_failed(&err, ErrorKind::Unknown);
}

async fn stops_at_the_deadline<F: Fixture>(subject: Subject<F>) {
    let card = &ordinary_cards(FIRST_SEED, 1)[0];
    subject.show(card);
    let vendor = subject.vendor();
    subject.gateway.sim.inject(vendor.endpoint, Fault::Hold, 2);

    let mut request = tonic::Request::new(upload(card.jpeg.clone()));
    request.set_timeout(Duration::from_millis(300));
    let status = subject
        .gateway
        .client_without_local_deadline()
        .recognize_bank_card(request)
        .await
        .expect_err("deadline");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");

    let err = subject
        .direct(card.jpeg.clone(), Some(Duration::from_millis(300)))
        .await
        .expect_err("deadline");
    subject.assert_direct_failed(&err, ErrorKind::DeadlineExceeded);
    subject.gateway.sim.release_held(2);
}

async fn refuses_wrong_credentials_without_showing_them<F: Fixture>(subject: Subject<F>) {
    let card = &ordinary_cards(FIRST_SEED, 1)[0];
    subject.show(card);
    let vendor = subject.vendor();
    // The same provider, its secret changed to one the vendor does not know.
    let wrong = format!("{}-wrong", vendor.secret);
    let sim = &subject.gateway.sim;
    let mut config = config_for(sim);
    F::configure(&mut config, sim);
    config.providers.set(vendor.secret_key, &wrong);
    let provider = build(F::NAME, &config).await;
    let request = BankCardRequest {
        image: ImageSource::Upload {
            bytes: card.jpeg.clone().into(),
            format: ImageFormat::Jpeg,
        },
        mode: RecognitionMode::Photo,
        account: None,
        provider: None,
    };
    let err = provider
        .recognize_bank_card(request, &CallContext::default())
        .await
        .expect_err("wrong credentials");

    subject.assert_direct_failed(&err, ErrorKind::Misconfigured);
    assert!(!format!("{err:?}").contains(&wrong), "{err:?}");
}

/// The behaviours every provider shows, then those only a vendor behind an API has, handed to
/// `suite!`. A fixture's file runs them all with one line: `behaviours!(vendor Fixture);` or
/// `behaviours!(offline Fixture);`.
macro_rules! behaviours {
    ($kind:ident $fixture:ty) => {
        suite!(
            $kind $fixture;
            every provider:
                reads_the_number_and_names_itself,
                answers_not_found_for_a_photo_without_a_card,
                refuses_an_undecodable_image,
                answers_concurrent_calls_each_with_its_own_number;
            vendors only:
                reports_an_exhausted_quota,
                retries_an_unavailable_vendor_a_bounded_number_of_times,
                recovers_when_the_vendor_comes_back_within_the_retries,
                cuts_an_endless_reply_at_the_cap,
                stops_at_the_deadline,
                refuses_wrong_credentials_without_showing_them
        );
    };
}

/// One test per behaviour for `$fixture`. A vendor's simulator is in the tests, so a vendor always
/// runs; an offline provider skips when it cannot run here (see `local_models`).
macro_rules! suite {
    (vendor $fixture:ty; every provider: $($every:ident),+; vendors only: $($vendor:ident),+) => {
        $(
            #[tokio::test]
            async fn $every() {
                crate::$every(crate::Subject::<$fixture>::start().await.expect("runs")).await;
            }
        )+
        $(
            #[tokio::test]
            async fn $vendor() {
                crate::$vendor(crate::Subject::<$fixture>::start().await.expect("runs")).await;
            }
        )+
    };
    (offline $fixture:ty; every provider: $($every:ident),+; vendors only: $($vendor:ident),+) => {
        $(
            #[tokio::test]
            async fn $every() {
                if let Some(subject) = crate::Subject::<$fixture>::start().await {
                    crate::$every(subject).await;
                }
            }
        )+
    };
}

// The invoice title suite, then the fixtures, each in a file of its own, after the macros they
// use.
#[macro_use]
mod titles;
mod local;
mod tencent;
mod wechat;
