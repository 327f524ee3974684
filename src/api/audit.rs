//! The audit log (target `ocrgate::audit`): one line for each `OcrService` call, whatever ended
//! it, written by the telemetry layer as the call ends from what the layers and the handler
//! noted of it (see [`CallNotes`](super::telemetry::CallNotes)). A line names the caller, the
//! RPC, the provider and account, the status and the latency; a bank card's number only masked,
//! an invoice title nothing of its content.

use tonic::{Code, Status};

use crate::{
    auth::{DEFAULT_ACCOUNT, Rpc},
    provider::{BankCard, Cached, Escalation, Provenance},
};

/// What a call's line will say, as the call learns it.
#[derive(Debug, Default)]
pub(super) struct Entry {
    /// The account the request names; `None` bills the default one.
    account: Option<String>,
    outcome: Option<Outcome>,
}

#[derive(Debug)]
enum Outcome {
    /// The auth layer refused the caller.
    Refused { error: String },
    Served {
        provider: &'static str,
        card: Option<CardFacts>,
    },
    Failed {
        code: Code,
        provider: Option<String>,
        reason: Option<String>,
        error: String,
    },
}

/// What a bank card answer adds to its line.
#[derive(Debug)]
struct CardFacts {
    number: String,
    confidence: Option<f32>,
    result_cache: Option<Cached>,
    escalations: Option<String>,
}

impl Entry {
    pub(super) fn account(&mut self, account: Option<String>) {
        self.account = account;
    }

    pub(super) fn refused(&mut self, error: String) {
        self.outcome = Some(Outcome::Refused { error });
    }

    pub(super) fn served(&mut self, provenance: &Provenance) {
        self.outcome = Some(Outcome::Served {
            provider: provenance.provider.unwrap_or_default(),
            card: None,
        });
    }

    pub(super) fn served_card(&mut self, card: &BankCard, provenance: &Provenance) {
        self.outcome = Some(Outcome::Served {
            provider: provenance.provider.unwrap_or_default(),
            card: Some(CardFacts {
                number: card.number.masked(),
                confidence: card.confidence,
                result_cache: provenance.cached,
                escalations: (!provenance.escalations.is_empty())
                    .then(|| Escalation::describe(&provenance.escalations)),
            }),
        });
    }

    pub(super) fn failed(&mut self, status: &Status) {
        let info = error_info(status);
        self.outcome = Some(Outcome::Failed {
            code: status.code(),
            provider: info
                .as_ref()
                .and_then(|info| info.metadata.get("provider").cloned()),
            reason: info.map(|info| info.reason),
            error: status.message().to_owned(),
        });
    }

    /// Writes the call's line. `code` is the status the call ended with; `dropped` says that it
    /// ended unanswered, its client gone. A call refused before the handler saw it, other than
    /// by the auth layer, has no line.
    pub(super) fn write(&self, caller: &str, rpc: Rpc, code: Code, dropped: bool, latency_ms: u64) {
        let rpc = rpc.as_str();
        let account = self.account.as_deref().unwrap_or(DEFAULT_ACCOUNT);
        match &self.outcome {
            Some(Outcome::Refused { error }) => {
                tracing::info!(target: "ocrgate::audit", caller, rpc, error, "call refused");
            }
            // A bank card's facts are written when there is a card: a field of `None` is left out.
            Some(Outcome::Served { provider, card }) => tracing::info!(
                target: "ocrgate::audit",
                caller,
                rpc,
                provider,
                account,
                code = ?Code::Ok,
                latency_ms,
                card_number = card.as_ref().map(|card| card.number.as_str()),
                confidence = card.as_ref().and_then(|card| card.confidence),
                result_cache = card
                    .as_ref()
                    .and_then(|card| card.result_cache.map(Cached::as_str)),
                escalations = card.as_ref().and_then(|card| card.escalations.as_deref()),
                "call served"
            ),
            Some(Outcome::Failed {
                code,
                provider,
                reason,
                error,
            }) => {
                macro_rules! line {
                    ($level:expr) => {
                        tracing::event!(
                            target: "ocrgate::audit",
                            $level,
                            caller,
                            rpc,
                            provider,
                            account,
                            code = ?code,
                            reason,
                            error,
                            latency_ms,
                            "call failed"
                        )
                    };
                }
                if is_the_gateways_failure(*code) {
                    line!(tracing::Level::WARN);
                } else {
                    line!(tracing::Level::INFO);
                }
            }
            // Ended before the handler answered: its client went, or its deadline passed.
            None if dropped => tracing::info!(
                target: "ocrgate::audit",
                caller,
                rpc,
                account,
                code = ?Code::Cancelled,
                latency_ms,
                "call cancelled by the client"
            ),
            None if code == Code::DeadlineExceeded => tracing::warn!(
                target: "ocrgate::audit",
                caller,
                rpc,
                account,
                code = ?code,
                latency_ms,
                "call ended at its deadline"
            ),
            // Refused before the handler saw it (request memory, a malformed message): the
            // refusal metrics count those, and a flood of them is not worth a line each.
            None => {}
        }
    }
}

/// Whether a call that ended with `code` failed for the gateway's or its vendor's reasons, not
/// the caller's.
fn is_the_gateways_failure(code: Code) -> bool {
    matches!(
        code,
        Code::Unknown
            | Code::Internal
            | Code::Unavailable
            | Code::DeadlineExceeded
            | Code::FailedPrecondition
            | Code::Unimplemented
            | Code::DataLoss
    )
}

fn error_info(status: &Status) -> Option<tonic_types::ErrorInfo> {
    use tonic_types::StatusExt as _;
    status.get_details_error_info()
}
