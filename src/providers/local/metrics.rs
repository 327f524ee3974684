//! The local provider's own instruments, on the gateway's meter: its queue and its refusals.

use std::sync::Arc;

use opentelemetry::{
    KeyValue,
    metrics::{Counter, UpDownCounter},
};

use crate::telemetry::Metrics;

/// Cheap to clone: every instrument is shared.
#[derive(Clone)]
pub(super) struct LocalMetrics {
    reads: Counter<u64>,
    reads_stopped: Counter<u64>,
    unsure: Counter<u64>,
    waiting: UpDownCounter<i64>,
    refused: Counter<u64>,
}

impl LocalMetrics {
    pub(super) fn new(metrics: &Metrics) -> Self {
        let meter = metrics.meter();
        Self {
            reads: meter
                .u64_counter("ocrgate.local.reads")
                .with_description(
                    "Card reads the local provider finished, by the pass that settled the number \
                     (settled_by; none when no pass did)",
                )
                .build(),
            reads_stopped: meter
                .u64_counter("ocrgate.local.reads_stopped")
                .with_description(
                    "Card reads the local provider stopped because nobody waited for the answer",
                )
                .build(),
            unsure: meter
                .u64_counter("ocrgate.local.unsure")
                .with_description(
                    "Card numbers the local provider read with a confidence under \
                     local.min_confidence, and answered NOT_FOUND for",
                )
                .build(),
            waiting: meter
                .i64_up_down_counter("ocrgate.local.waiting")
                .with_description("Card reads waiting for a free engine of the local provider")
                .build(),
            refused: meter
                .u64_counter("ocrgate.local.refused")
                .with_description(
                    "Card reads the local provider refused as busy, by why: queue_full or \
                     deadline",
                )
                .build(),
        }
    }

    /// A read finished, settled by the pass named `settled_by`, or by none.
    pub(super) fn read(&self, settled_by: &'static str) {
        self.reads
            .add(1, &[KeyValue::new("settled_by", settled_by)]);
    }

    /// A read stopped: the caller's deadline passed or the call was dropped.
    pub(super) fn read_stopped(&self) {
        self.reads_stopped.add(1, &[]);
    }

    /// A number was read with too little confidence to be an answer.
    pub(super) fn unsure(&self) {
        self.unsure.add(1, &[]);
    }

    /// A card read started (`+1`) or stopped (`-1`) waiting for a free engine.
    pub(super) fn waiting(&self, delta: i64) {
        self.waiting.add(delta, &[]);
    }

    /// `caller`'s read refused as busy: the queue was full (`queue_full`) or the wait would
    /// outlast the call's deadline (`deadline`).
    pub(super) fn refused(&self, why: &'static str, caller: Arc<str>) {
        self.refused.add(
            1,
            &[
                KeyValue::new("why", why),
                KeyValue::new("ocrgate.caller", caller),
            ],
        );
    }
}
