//! What every invoice title provider must do, checked the same way for each, directly and
//! through gRPC. A provider joins by implementing [`TitleFixture`] and one
//! `title_behaviours!(Fixture);` line in its fixture's file.

use std::{marker::PhantomData, sync::Arc, time::Duration};

use ocrgate::{
    provider::{CallContext, ErrorKind, InvoiceTitleParser, InvoiceTitleRequest, ProviderError},
    providers::registration,
    telemetry::Metrics,
};
use serde_json::json;
use tonic::Code;
use vendor_sim::{Endpoint, Fault, SimConfig};

use crate::common::{self, Gateway, config_for, route};

/// An invoice title provider under test: what it implements to join this suite. It is driven
/// through its simulator, which is told the title of the suite's scan text.
pub trait TitleFixture {
    /// Its name in the registry.
    const NAME: &'static str;
    /// Its invoice title endpoint in the simulator.
    const ENDPOINT: Endpoint;
    /// A secret it must never show, and its configuration key.
    const SECRET: &'static str;
    const SECRET_KEY: &'static str;
    /// Retries it makes after a transient failure, as configured.
    const RETRIES: usize;
}

const SCAN_TEXT: &str =
    "https://mp.weixin.qq.com/intp/invoice/usertitlewxa?action=list_auth&invoice_key=conf";

/// One provider under test: a gateway routing invoice titles to it alone, and the provider.
pub struct Subject<F> {
    gateway: Gateway,
    direct: Arc<dyn InvoiceTitleParser>,
    fixture: PhantomData<F>,
}

impl<F: TitleFixture> Subject<F> {
    pub async fn start(tweak: impl FnOnce(&mut ocrgate::config::Config)) -> Self {
        let sim = common::simulator(SimConfig::default()).await;
        sim.add_invoice_title(
            SCAN_TEXT,
            json!({"title_type": 0, "title": "Conformance Co."}),
        );
        let mut config = config_for(&sim);
        config.routing.invoice_title = route(&[F::NAME]);
        tweak(&mut config);
        let direct = registration(F::NAME)
            .expect("registered")
            .build_layered(&config.providers, &Metrics::disabled())
            .await
            .expect("builds")
            .invoice_title
            .expect("reads invoice titles");
        Self {
            gateway: Gateway::serve(sim, config).await,
            direct,
            fixture: PhantomData,
        }
    }

    async fn direct(&self, deadline: Option<Duration>) -> Result<String, ProviderError> {
        let request = InvoiceTitleRequest {
            scan_text: SCAN_TEXT.into(),
            account: None,
            provider: None,
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
        assert_eq!(reason, format!("{}_{kind}", F::NAME.to_ascii_uppercase()));
        assert_eq!(metadata["provider"], F::NAME);
        assert_eq!(err.kind, error_kind, "{err:?}");
        assert_eq!(err.provider, F::NAME);
        for shown in [format!("{status:?}"), format!("{err:?}")] {
            assert!(!shown.contains(F::SECRET), "a secret in {shown}");
        }
    }
}

pub async fn reads_the_title_and_names_itself<F: TitleFixture>(subject: Subject<F>) {
    assert_eq!(subject.direct.name(), F::NAME);
    let reply = subject
        .gateway
        .parse_title(SCAN_TEXT)
        .await
        .expect("parsed");
    assert_eq!(reply.title, "Conformance Co.");
    assert_eq!(reply.provider, F::NAME);
    assert_eq!(
        subject.direct(None).await.expect("parsed"),
        "Conformance Co."
    );
}

pub async fn reports_an_exhausted_quota<F: TitleFixture>(subject: Subject<F>) {
    subject.gateway.sim.set_quota(F::ENDPOINT, 0);
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

pub async fn retries_an_unavailable_vendor_a_bounded_number_of_times<F: TitleFixture>(
    subject: Subject<F>,
) {
    subject
        .gateway
        .sim
        .inject(F::ENDPOINT, Fault::HttpStatus(503), 100);
    let status = subject
        .gateway
        .parse_title(SCAN_TEXT)
        .await
        .expect_err("unavailable");
    assert_eq!(subject.gateway.sim.count(F::ENDPOINT), 1 + F::RETRIES);
    let err = subject.direct(None).await.expect_err("unavailable");
    subject.assert_failed(
        &status,
        Code::Unavailable,
        "UNAVAILABLE",
        &err,
        ErrorKind::Unavailable,
    );
}

pub async fn stops_at_the_deadline<F: TitleFixture>(subject: Subject<F>) {
    subject.gateway.sim.inject(F::ENDPOINT, Fault::Hold, 1);
    let err = subject
        .direct(Some(Duration::from_millis(300)))
        .await
        .expect_err("deadline");
    assert_eq!(err.kind, ErrorKind::DeadlineExceeded, "{err:?}");
    subject.gateway.sim.release_held(1);
}

pub async fn refuses_wrong_credentials_without_showing_them<F: TitleFixture>(subject: Subject<F>) {
    let wrong = format!("{}-wrong", F::SECRET);
    drop(subject);
    let subject = Subject::<F>::start(|config| config.providers.set(F::SECRET_KEY, &wrong)).await;
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

/// One test per behaviour for `$fixture`, run with one line in the fixture's file.
macro_rules! title_behaviours {
    ($fixture:ty) => {
        title_behaviours!(
            $fixture:
            reads_the_title_and_names_itself,
            reports_an_exhausted_quota,
            retries_an_unavailable_vendor_a_bounded_number_of_times,
            stops_at_the_deadline,
            refuses_wrong_credentials_without_showing_them
        );
    };
    ($fixture:ty: $($behaviour:ident),+) => {
        mod titles {
            use super::*;

            $(
                #[tokio::test]
                async fn $behaviour() {
                    let subject = crate::titles::Subject::<$fixture>::start(|_| {}).await;
                    crate::titles::$behaviour(subject).await;
                }
            )+
        }
    };
}
