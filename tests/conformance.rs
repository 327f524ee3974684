//! What every bank card provider in the registry must do, checked the same way for each: directly
//! through `dyn BankCardRecognizer` (built by the provider's registration) and through gRPC.
//!
//! One function per behaviour takes the provider under test as a [`Subject`]; the macro at the end
//! runs each behaviour for each provider. A new provider joins with one fixture: a `Subject`
//! constructor, and a line in the macro. Vendors are driven through their simulators, which are
//! told which number each generated photo shows; the local provider reads the very same photos.
//! Invoice title providers (WeChat alone today) meet their own suite the same way, at the end.

mod common;

use std::{sync::Arc, time::Duration};

use common::{
    APP_SECRET, Gateway, TENCENT_SECRET_KEY, cards, config_for, local_models, ordinary_cards,
    route, upload, with_local_models, with_tencent,
};
use ocrgate::{
    provider::{
        BankCardRecognizer, BankCardRequest, CallContext, ErrorKind, ImageFormat, ImageSource,
        ProviderError, RecognitionMode,
    },
    providers::registration,
    telemetry::Metrics,
};
use ocrgate_cardgen::Card;
use tonic::{Code, Status};
use vendor_sim::{Endpoint, Fault, SimConfig};

/// A vendor's simulator endpoint and the secret it must never echo.
struct Vendor {
    endpoint: Endpoint,
    secret: &'static str,
    /// How the vendor says it could not decode an image.
    undecodable: Fault,
    /// Retries the fixture configures after a transient failure.
    retries: usize,
}

/// One provider under test: a gateway routing bank cards to it alone, and the provider itself.
struct Subject {
    name: &'static str,
    gateway: Gateway,
    direct: Arc<dyn BankCardRecognizer>,
    vendor: Option<Vendor>,
}

impl Subject {
    async fn wechat() -> Self {
        Self::start(
            "wechat",
            None,
            Some(Vendor {
                endpoint: Endpoint::BankCard,
                secret: APP_SECRET,
                undecodable: Fault::errcode(101002, "image decode failed"),
                retries: 2,
            }),
        )
        .await
    }

    async fn tencent() -> Self {
        Self::start(
            "tencent",
            None,
            Some(Vendor {
                endpoint: Endpoint::TencentBankCard,
                secret: TENCENT_SECRET_KEY,
                undecodable: Fault::tencent(
                    "FailedOperation.ImageDecodeFailed",
                    "image decode failed",
                ),
                retries: 2,
            }),
        )
        .await
    }

    async fn local() -> Option<Self> {
        let models = local_models()?;
        Some(Self::start("local", Some(&models), None).await)
    }

    /// Starts a simulator, a gateway whose only bank card provider is `name`, and the provider
    /// as its registration builds it from the same configuration.
    async fn start(
        name: &'static str,
        models: Option<&std::path::Path>,
        vendor: Option<Vendor>,
    ) -> Self {
        let sim = common::simulator(SimConfig::default()).await;
        let mut config = config_for(&sim);
        with_tencent(&mut config, &sim);
        config.routing.bank_card = route(&[name]);
        if let Some(models) = models {
            with_local_models(&mut config, models);
            config.providers.set("local.concurrency", 2);
        }
        let direct = build(name, &config).await;
        let gateway = Gateway::serve(sim, config).await;
        Self {
            name,
            gateway,
            direct,
            vendor,
        }
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
        assert_eq!(reason, format!("{}_{kind}", self.name.to_ascii_uppercase()));
        assert_eq!(metadata["provider"], self.name);
        if let Some(vendor) = &self.vendor {
            let shown = format!("{status:?}");
            assert!(!shown.contains(vendor.secret), "a secret in {shown}");
        }
    }

    /// Asserts the provider, called directly, failed with `kind` and holds no secret.
    fn assert_direct_failed(&self, err: &ProviderError, kind: ErrorKind) {
        assert_eq!(err.kind, kind, "{err:?}");
        assert_eq!(err.provider, self.name);
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
async fn build(name: &str, config: &ocrgate::config::Config) -> Arc<dyn BankCardRecognizer> {
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

async fn reads_the_number_and_names_itself(subject: Subject) {
    assert_eq!(subject.direct.name(), subject.name);
    for card in ordinary_cards(FIRST_SEED, 3) {
        subject.show(&card);
        let reply = subject.gateway.read_card(&card).await;

        assert_eq!(reply.card_number, card.number, "seed {}", card.seed);
        assert!(reply.card_number.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(reply.provider, subject.name);
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

async fn answers_not_found_for_a_photo_without_a_card(subject: Subject) {
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

async fn refuses_an_undecodable_image(subject: Subject) {
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

async fn reports_an_exhausted_quota(subject: Subject) {
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

async fn retries_an_unavailable_vendor_a_bounded_number_of_times(subject: Subject) {
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

async fn recovers_when_the_vendor_comes_back_within_the_retries(subject: Subject) {
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

async fn cuts_an_endless_reply_at_the_cap(subject: Subject) {
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

async fn stops_at_the_deadline(subject: Subject) {
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

async fn refuses_wrong_credentials_without_showing_them(subject: Subject) {
    let card = &ordinary_cards(FIRST_SEED, 1)[0];
    subject.show(card);
    let name = subject.name;
    let vendor = subject.vendor();
    // The same provider, its secret changed to one the vendor does not know.
    let wrong = format!("{}-wrong", vendor.secret);
    let sim = &subject.gateway.sim;
    let mut config = config_for(sim);
    with_tencent(&mut config, sim);
    config.providers.set("wechat.app_secret", &wrong);
    config.providers.set("tencent.secret_key", &wrong);
    let provider = build(name, &config).await;
    let request = BankCardRequest {
        image: ImageSource::Upload {
            bytes: card.jpeg.clone().into(),
            format: ImageFormat::Jpeg,
        },
        mode: RecognitionMode::Photo,
        account: None,
    };
    let err = provider
        .recognize_bank_card(request, &CallContext::default())
        .await
        .expect_err("wrong credentials");

    subject.assert_direct_failed(&err, ErrorKind::Misconfigured);
    assert!(!format!("{err:?}").contains(&wrong), "{err:?}");
}

macro_rules! conformance {
    (every provider: $($every:ident),+; vendors: $($vendor:ident),+ $(,)?) => {
        mod wechat {
            $(#[tokio::test] async fn $every() { super::$every(super::Subject::wechat().await).await; })+
            $(#[tokio::test] async fn $vendor() { super::$vendor(super::Subject::wechat().await).await; })+
        }
        mod tencent {
            $(#[tokio::test] async fn $every() { super::$every(super::Subject::tencent().await).await; })+
            $(#[tokio::test] async fn $vendor() { super::$vendor(super::Subject::tencent().await).await; })+
        }
        mod local {
            $(
                #[tokio::test]
                async fn $every() {
                    let Some(subject) = super::Subject::local().await else { return };
                    super::$every(subject).await;
                }
            )+
        }
    };
}

conformance!(
    every provider:
        reads_the_number_and_names_itself,
        answers_not_found_for_a_photo_without_a_card,
        refuses_an_undecodable_image,
        answers_concurrent_calls_each_with_its_own_number;
    vendors:
        reports_an_exhausted_quota,
        retries_an_unavailable_vendor_a_bounded_number_of_times,
        recovers_when_the_vendor_comes_back_within_the_retries,
        cuts_an_endless_reply_at_the_cap,
        stops_at_the_deadline,
        refuses_wrong_credentials_without_showing_them,
);

/// What every invoice title provider must do, checked the same way: WeChat is the only one.
mod invoice_titles {
    use std::{sync::Arc, time::Duration};

    use ocrgate::{
        provider::{
            CallContext, ErrorKind, InvoiceTitleParser, InvoiceTitleRequest, ProviderError,
        },
        providers::registration,
        telemetry::Metrics,
    };
    use serde_json::json;
    use tonic::Code;
    use vendor_sim::{Endpoint, Fault, SimConfig};

    use super::common::{self, APP_SECRET, Gateway, config_for, route};

    const SCAN_TEXT: &str =
        "https://mp.weixin.qq.com/intp/invoice/usertitlewxa?action=list_auth&invoice_key=conf";

    struct Subject {
        name: &'static str,
        gateway: Gateway,
        direct: Arc<dyn InvoiceTitleParser>,
        endpoint: Endpoint,
        secret: &'static str,
        retries: usize,
    }

    impl Subject {
        async fn wechat() -> Self {
            Self::start("wechat", Endpoint::ScanTitle, APP_SECRET, 2, |_| {}).await
        }

        async fn start(
            name: &'static str,
            endpoint: Endpoint,
            secret: &'static str,
            retries: usize,
            tweak: impl FnOnce(&mut ocrgate::config::Config),
        ) -> Self {
            let sim = common::simulator(SimConfig::default()).await;
            sim.add_invoice_title(
                SCAN_TEXT,
                json!({"title_type": 0, "title": "Conformance Co."}),
            );
            let mut config = config_for(&sim);
            config.routing.invoice_title = route(&[name]);
            tweak(&mut config);
            let direct = registration(name)
                .expect("registered")
                .build_layered(&config.providers, &Metrics::disabled())
                .await
                .expect("builds")
                .invoice_title
                .expect("reads invoice titles");
            Self {
                name,
                gateway: Gateway::serve(sim, config).await,
                direct,
                endpoint,
                secret,
                retries,
            }
        }

        async fn direct(&self, deadline: Option<Duration>) -> Result<String, ProviderError> {
            let request = InvoiceTitleRequest {
                scan_text: SCAN_TEXT.into(),
                account: None,
            };
            let call = CallContext {
                deadline: deadline.map(|after| tokio::time::Instant::now() + after),
                ..CallContext::default()
            };
            self.direct
                .parse_invoice_title(request, &call)
                .await
                .map(|title| title.title)
        }

        fn assert_failed(
            &self,
            status: &tonic::Status,
            code: Code,
            kind: &str,
            err: &ProviderError,
            error_kind: ErrorKind,
        ) {
            assert_eq!(status.code(), code, "{status:?}");
            let (reason, metadata) = common::error_info(status);
            assert_eq!(reason, format!("{}_{kind}", self.name.to_ascii_uppercase()));
            assert_eq!(metadata["provider"], self.name);
            assert_eq!(err.kind, error_kind, "{err:?}");
            assert_eq!(err.provider, self.name);
            for shown in [format!("{status:?}"), format!("{err:?}")] {
                assert!(!shown.contains(self.secret), "a secret in {shown}");
            }
        }
    }

    async fn reads_the_title_and_names_itself(subject: Subject) {
        assert_eq!(subject.direct.name(), subject.name);
        let reply = subject
            .gateway
            .parse_title(SCAN_TEXT)
            .await
            .expect("parsed");
        assert_eq!(reply.title, "Conformance Co.");
        assert_eq!(reply.provider, subject.name);
        assert_eq!(
            subject.direct(None).await.expect("parsed"),
            "Conformance Co."
        );
    }

    async fn reports_an_exhausted_quota(subject: Subject) {
        subject.gateway.sim.set_quota(subject.endpoint, 0);
        let status = subject
            .gateway
            .parse_title(SCAN_TEXT)
            .await
            .expect_err("no quota");
        let err = subject.direct(None).await.expect_err("no quota");
        subject.assert_failed(
            &status,
            Code::ResourceExhausted,
            "QUOTA_EXHAUSTED",
            &err,
            ErrorKind::QuotaExhausted,
        );
    }

    async fn retries_an_unavailable_vendor_a_bounded_number_of_times(subject: Subject) {
        subject
            .gateway
            .sim
            .inject(subject.endpoint, Fault::HttpStatus(503), 100);
        let status = subject
            .gateway
            .parse_title(SCAN_TEXT)
            .await
            .expect_err("unavailable");
        assert_eq!(
            subject.gateway.sim.count(subject.endpoint),
            1 + subject.retries
        );
        let err = subject.direct(None).await.expect_err("unavailable");
        subject.assert_failed(
            &status,
            Code::Unavailable,
            "UNAVAILABLE",
            &err,
            ErrorKind::Unavailable,
        );
    }

    async fn stops_at_the_deadline(subject: Subject) {
        subject.gateway.sim.inject(subject.endpoint, Fault::Hold, 1);
        let err = subject
            .direct(Some(Duration::from_millis(300)))
            .await
            .expect_err("deadline");
        assert_eq!(err.kind, ErrorKind::DeadlineExceeded, "{err:?}");
        subject.gateway.sim.release_held(1);
    }

    async fn refuses_wrong_credentials_without_showing_them(subject: Subject) {
        let wrong = format!("{}-wrong", subject.secret);
        let subject = Subject::start(
            subject.name,
            subject.endpoint,
            subject.secret,
            subject.retries,
            |config| {
                config.providers.set("wechat.app_secret", &wrong);
            },
        )
        .await;
        let status = subject
            .gateway
            .parse_title(SCAN_TEXT)
            .await
            .expect_err("wrong secret");
        let err = subject.direct(None).await.expect_err("wrong secret");
        subject.assert_failed(
            &status,
            Code::FailedPrecondition,
            "MISCONFIGURED",
            &err,
            ErrorKind::Misconfigured,
        );
        assert!(!format!("{status:?} {err:?}").contains(&wrong));
    }

    macro_rules! conformance {
        ($($behaviour:ident),+ $(,)?) => {
            mod wechat {
                $(#[tokio::test] async fn $behaviour() { super::$behaviour(super::Subject::wechat().await).await; })+
            }
        };
    }

    conformance!(
        reads_the_title_and_names_itself,
        reports_an_exhausted_quota,
        retries_an_unavailable_vendor_a_bounded_number_of_times,
        stops_at_the_deadline,
        refuses_wrong_credentials_without_showing_them,
    );
}
