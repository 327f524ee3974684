//! What the layers between the edge and the providers note about a call as they serve it: which
//! provider answered, the providers the call was passed on from, and how the result cache served
//! it. The edge reads it when the call returns, for the response, the span and the audit line.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// A call passed on from one provider to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Escalation {
    pub from: &'static str,
    pub to: &'static str,
    /// `low_confidence`, `busy`, or the error kind in snake case (`not_found`, `unavailable`...).
    pub reason: &'static str,
}

impl Escalation {
    /// `from->to:reason`, comma-separated, as the audit line and span write them.
    pub fn describe(escalations: &[Self]) -> String {
        escalations
            .iter()
            .map(|e| format!("{}->{}:{}", e.from, e.to, e.reason))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// How the result cache served a call, as metrics and spans label it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cached {
    /// Answered from an earlier identical call.
    Hit,
    /// Served by the providers, and kept if they answered.
    Miss,
    /// Answered by an identical call that was in flight.
    Shared,
    /// Not looked up: the cache is off, or the image is a URL (its content may change).
    Bypassed,
}

impl Cached {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
            Self::Shared => "shared",
            Self::Bypassed => "bypassed",
        }
    }
}

/// What the trail holds once the call has returned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provenance {
    /// The provider whose answer this is; `None` until one answers.
    pub provider: Option<&'static str>,
    /// The providers this call was passed on from, in order.
    pub escalations: Vec<Escalation>,
    /// How the result cache served the call; `None` where no cache stands in the way.
    pub cached: Option<Cached>,
}

/// The notes of one call, shared by every copy of its [`CallContext`](super::CallContext).
#[derive(Debug, Clone, Default)]
pub struct Trail(Arc<Mutex<Provenance>>);

impl Trail {
    /// Notes that `provider` answered.
    pub fn answered(&self, provider: &'static str) {
        self.notes().provider = Some(provider);
    }

    /// Notes that the call was passed on.
    pub fn passed_on(&self, escalation: Escalation) {
        self.notes().escalations.push(escalation);
    }

    /// Notes how the result cache served the call.
    pub fn cached(&self, cached: Cached) {
        self.notes().cached = Some(cached);
    }

    /// The provider noted as having answered, if one has.
    pub fn provider(&self) -> Option<&'static str> {
        self.notes().provider
    }

    /// What was noted, leaving the trail empty.
    pub fn take(&self) -> Provenance {
        std::mem::take(&mut *self.notes())
    }

    /// The notes; a panic while they were held left nothing half-written (each note is one
    /// assignment or push), so a poisoned lock is taken as it is.
    fn notes(&self) -> MutexGuard<'_, Provenance> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_of_a_trail_note_into_one_provenance() {
        let trail = Trail::default();
        let copy = trail.clone();
        copy.passed_on(Escalation {
            from: "local",
            to: "wechat",
            reason: "low_confidence",
        });
        trail.answered("wechat");
        copy.cached(Cached::Miss);
        assert_eq!(trail.provider(), Some("wechat"));
        let provenance = trail.take();
        assert_eq!(provenance.provider, Some("wechat"));
        assert_eq!(
            Escalation::describe(&provenance.escalations),
            "local->wechat:low_confidence"
        );
        assert_eq!(provenance.cached, Some(Cached::Miss));
        assert_eq!(copy.take(), Provenance::default());
    }
}
