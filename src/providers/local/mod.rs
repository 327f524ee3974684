//! The local provider: bank card numbers read inside the process by PaddleOCR's PP-OCRv6 small
//! models (the detector's weights trained on to find card numbers) and its text direction
//! classifier on ONNX Runtime. No vendor, no quota; the image never leaves the gateway.
//!
//! `scripts/fetch-models.sh` puts the models and the ONNX Runtime library in one directory, which
//! `[local] models_dir` names. Inference runs on Tokio's blocking pool, at most `concurrency`
//! images at a time, so the async workers keep serving other calls while a card is read.

mod card;
mod confidence;
mod engine;
mod metrics;
mod passes;

pub use self::passes::{UNSETTLED, pass_names};

use std::{
    cell::OnceCell,
    collections::BTreeSet,
    num::NonZeroUsize,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex, MutexGuard, TryLockError,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use bytes::Bytes;
use image::Rgb;

use serde::Deserialize;
use tokio::{
    sync::{Notify, Semaphore},
    time::Instant,
};

use self::engine::{Engine, Look};
use self::metrics::LocalMetrics;
pub use self::{
    card::Issuer,
    confidence::{Evidence, FEATURE_NAMES},
};
use crate::{
    enrich::{BinTable, BinTableError},
    provider::{
        BankCard, BankCardRecognizer, BankCardRequest, CallContext, CardNumber, ErrorKind,
        ImageSource, ProviderError,
    },
    providers::{Built, Capability, Registration, images},
    telemetry::Metrics,
};

const PROVIDER: &str = "local";

/// The local engine in the provider registry: bank cards only, read inside the process.
pub const REGISTRATION: Registration = Registration {
    name: PROVIDER,
    section: "local",
    capabilities: &[Capability::BankCard],
    env: &[],
    read: |section| section.read::<LocalConfig>().map(drop),
    set_up: |section| {
        section
            .read::<LocalConfig>()
            .is_ok_and(|local| local.missing_files().is_empty())
    },
    set_up_hint: "run scripts/fetch-models.sh, or set [local] models_dir",
    check: |section| {
        let local: LocalConfig = section.read()?;
        let missing = local.missing_files();
        if !missing.is_empty() {
            return Err(BuildError::Missing(missing).into());
        }
        Ok(format!("models in {}", local.models_dir.display()))
    },
    build: |section, metrics| {
        let (config, metrics) = (section.read::<LocalConfig>(), metrics.clone());
        Box::pin(async move {
            let config = config?;
            // Loading the models reads and optimises tens of megabytes: off the async workers.
            let provider =
                tokio::task::spawn_blocking(move || LocalProvider::new(&config, &metrics))
                    .await??;
            // It reads any upload as it is, shrinking large ones itself.
            Ok(Built {
                bank_card: Some(Arc::new(provider)),
                invoice_title: None,
                fits: None,
                retries: None,
            })
        })
    },
};

/// File names inside `models_dir`, as `scripts/fetch-models.sh` writes them. The detector and the
/// recogniser are PP-OCRv6 small's, trained on to find card numbers' lines and to read them:
/// ocrgate's own, which the script copies from `data/` (`scripts/card-detector/` and
/// `scripts/card-recogniser/` say how they were made).
const DETECTION_MODEL: &str = "card-detector.onnx";
const RECOGNITION_MODEL: &str = "card-recogniser.onnx";
const DIRECTION_MODEL: &str = "ch_ppocr_mobile_v2.0_cls_mobile.onnx";
const RUNTIME_LIBRARY: &str = "libonnxruntime.so";

/// The `[local]` section of the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocalConfig {
    /// Directory with the detection and recognition models and `libonnxruntime.so`.
    pub models_dir: PathBuf,
    /// The ONNX Runtime library, when not in `models_dir`.
    pub onnxruntime_library: Option<PathBuf>,
    /// Images recognised at once; more calls wait. Defaults to the number of CPUs.
    pub concurrency: Option<NonZeroUsize>,
    /// Threads each recognition uses.
    pub threads_per_image: NonZeroUsize,
    /// Largest image decoded, in pixels; a larger one is refused before it is decoded (a small
    /// file can claim a huge picture, and its decoded pixels are what cost memory).
    pub max_image_pixels: u64,
    /// Reads that may wait for a free engine; one more is refused at once as busy.
    pub max_queue: usize,
    /// The least confidence a number is answered with: one read with less is more likely wrong
    /// than right, and the reader answers that it found no number (`NotFound`). 0 answers every
    /// number read.
    #[serde(deserialize_with = "confidence_from_0_to_1")]
    pub min_confidence: f32,
    /// Passes of a read left out, by name (see `passes`), to measure what each buys: the OCR
    /// bench's `--without`. Not a configuration key.
    #[serde(skip)]
    pub without_passes: Vec<String>,
}

impl Default for LocalConfig {
    fn default() -> Self {
        Self {
            models_dir: PathBuf::from("models"),
            onnxruntime_library: None,
            concurrency: None,
            threads_per_image: NonZeroUsize::MIN,
            max_image_pixels: 16_000_000,
            max_queue: 64,
            min_confidence: MIN_CONFIDENCE,
            without_passes: Vec::new(),
        }
    }
}

/// The default `min_confidence`: under it, the confidence model says a reading is more likely
/// wrong than right (it is calibrated: BENCHMARKS.md, "Confidence").
pub const MIN_CONFIDENCE: f32 = 0.5;

fn confidence_from_0_to_1<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<f32, D::Error> {
    let value = f32::deserialize(deserializer)?;
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(serde::de::Error::invalid_value(
            serde::de::Unexpected::Float(f64::from(value)),
            &"a confidence from 0 to 1",
        ))
    }
}

impl LocalConfig {
    fn runtime_library(&self) -> PathBuf {
        self.onnxruntime_library
            .clone()
            .unwrap_or_else(|| self.models_dir.join(RUNTIME_LIBRARY))
    }

    /// The files the provider needs that are not there, to tell the operator what to fetch.
    pub fn missing_files(&self) -> Vec<PathBuf> {
        [
            self.models_dir.join(DETECTION_MODEL),
            self.models_dir.join(RECOGNITION_MODEL),
            self.models_dir.join(DIRECTION_MODEL),
            self.runtime_library(),
        ]
        .into_iter()
        .filter(|path| !path.is_file())
        .collect()
    }
}

/// Why the local provider could not start.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(
        "the local provider's files are missing: {}; run scripts/fetch-models.sh, or set \
         [local] models_dir", .0.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    Missing(Vec<PathBuf>),
    #[error("could not load ONNX Runtime from {path}: {message}")]
    Runtime { path: PathBuf, message: String },
    #[error("could not load the OCR models from {dir}: {source}")]
    Models { dir: PathBuf, source: ort::Error },
    #[error(transparent)]
    BinTable(#[from] BinTableError),
    #[error("{0}")]
    Passes(String),
}

/// Bank card numbers read by PP-OCR inside the process.
pub struct LocalProvider {
    /// One engine per permit of `permits`: a holder of a permit always finds one unlocked.
    engines: Arc<[Mutex<Engine>]>,
    /// Issuers' prefixes, to tell a card's number from digits misread into one.
    bins: Arc<BinTable>,
    permits: Arc<Semaphore>,
    /// The reads waiting for a permit, and how long reads take.
    queue: Arc<Queue>,
    plan: Plan,
    metrics: LocalMetrics,
}

/// What every read is asked to do.
#[derive(Debug, Clone, Copy)]
struct Plan {
    max_image_pixels: u64,
    /// The passes it runs.
    passes: passes::PassSet,
    /// Numbers read with less confidence are no answer; while the best reading is under it, the
    /// passes for photos without a number run.
    min_confidence: f32,
}

/// A card read, and what the reader knows of it.
#[derive(Debug, Clone)]
pub struct Reading {
    pub card: BankCard,
    pub evidence: Evidence,
    /// The pass that settled the number (see `passes`), or `none`.
    pub settled_by: &'static str,
}

impl Reading {
    /// The card, unless the number was read with a confidence under `min_confidence`: a reader
    /// more likely wrong than right says it found no number (`NotFound`) rather than guess.
    pub fn answer(self, min_confidence: f32) -> Result<BankCard, ProviderError> {
        match self.card.confidence {
            Some(confidence) if confidence < min_confidence => Err(ProviderError::new(
                PROVIDER,
                ErrorKind::NotFound,
                format!(
                    "no bank card number was read surely enough: the likeliest reading's \
                     confidence is {confidence:.2}, under local.min_confidence ({min_confidence})"
                ),
            )),
            _ => Ok(self.card),
        }
    }
}

/// What each of the reader's recognisers reads in one line of a number, as digits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineDigits {
    /// PP-OCR's recogniser.
    pub recogniser: String,
    /// ocrgate's own recogniser of card numbers' lines.
    pub card_digits: String,
}

impl LocalProvider {
    pub fn new(config: &LocalConfig, metrics: &Metrics) -> Result<Self, BuildError> {
        let metrics = LocalMetrics::new(metrics);
        let missing = config.missing_files();
        if !missing.is_empty() {
            return Err(BuildError::Missing(missing));
        }
        let environment = runtime(&config.runtime_library())?;
        let concurrency = config
            .concurrency
            .or_else(|| std::thread::available_parallelism().ok())
            .map_or(1, NonZeroUsize::get);
        let engines = (0..concurrency)
            .map(|_| {
                Engine::load(
                    &environment,
                    &config.models_dir.join(DETECTION_MODEL),
                    &config.models_dir.join(RECOGNITION_MODEL),
                    &config.models_dir.join(DIRECTION_MODEL),
                    config.threads_per_image.get(),
                )
            })
            .map(|engine| engine.map(Mutex::new))
            .collect::<Result<Arc<[_]>, _>>()
            .map_err(|source| BuildError::Models {
                dir: config.models_dir.clone(),
                source,
            })?;
        Ok(Self {
            engines,
            bins: Arc::new(BinTable::embedded()?),
            permits: Arc::new(Semaphore::new(concurrency)),
            queue: Arc::new(Queue::new(config.max_queue, metrics.clone())),
            plan: Plan {
                max_image_pixels: config.max_image_pixels,
                passes: passes::PassSet::without(&config.without_passes)
                    .map_err(BuildError::Passes)?,
                min_confidence: config.min_confidence,
            },
            metrics,
        })
    }

    /// Reads the card number in `bytes` on the blocking pool, waiting for a free engine first,
    /// with what the reader knows of the reading. While every engine is busy, a read that could
    /// not be done by the call's deadline, or that would find `max_queue` reads waiting already,
    /// is refused at once as `Busy`.
    pub async fn read(&self, bytes: Bytes, call: &CallContext) -> Result<Reading, ProviderError> {
        let engines = self.engines.len();
        // Refusals are counted by caller.
        let caller: Arc<str> = call.caller.clone().unwrap_or_else(|| "unknown".into());
        let waiting = self.queue.admit(
            self.permits.available_permits() == 0,
            engines,
            call.remaining(),
            &caller,
        )?;
        let acquire = Arc::clone(&self.permits).acquire_owned();
        tokio::pin!(acquire);
        // Each read that ends tells how long reads take and moves the queue on: a read that can
        // no longer finish in time gives up its place then, rather than at its deadline.
        let permit = loop {
            let read_ended = self.queue.read_ended.notified();
            let deadline = async {
                match call.deadline {
                    Some(deadline) => tokio::time::sleep_until(deadline).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                permit = &mut acquire => break permit.map_err(|_| {
                    ProviderError::new(PROVIDER, ErrorKind::Unavailable, "shutting down")
                })?,
                () = read_ended => {
                    if let Some(left) = call.remaining() {
                        self.queue.recheck(&waiting, engines, left, &caller)?;
                    }
                }
                () = deadline => return Err(deadline_exceeded("waiting for a free OCR engine")),
            }
        };
        drop(waiting);

        let engines = Arc::clone(&self.engines);
        let bins = Arc::clone(&self.bins);
        let plan = self.plan;
        let span = tracing::Span::current();
        // Set when this call is dropped (the client went away, or its deadline answered first).
        let abandoned = StopOnDrop::default();
        let stop = Arc::clone(&abandoned.0);
        let deadline = call.deadline;
        let metrics = self.metrics.clone();
        let queue = Arc::clone(&self.queue);
        let work = tokio::task::spawn_blocking(move || {
            // Held until the work stops, which it does soon after the caller stops waiting.
            let permit = permit;
            let started = Instant::now();
            let stop =
                || stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| Instant::now() >= d);
            let read = span.in_scope(|| read_card(&engines, &bins, &bytes, plan, stop, &metrics));
            if read.is_err() && stop() {
                metrics.read_stopped();
            } else {
                queue.read_took(started.elapsed());
            }
            // The engine is free before the reads waiting weigh their turn again.
            drop(permit);
            queue.read_ended.notify_waiters();
            read
        });
        let joined = match call.remaining() {
            Some(left) => tokio::time::timeout(left, work)
                .await
                .map_err(|_| deadline_exceeded("reading the card"))?,
            None => work.await,
        };
        joined.map_err(|err| {
            ProviderError::new(
                PROVIDER,
                ErrorKind::Unknown,
                format!("the recognition task failed: {err}"),
            )
        })?
    }

    /// What each recogniser reads in each of `lines` of `image`, given where they are: each
    /// line's four corners in the order its text reads, cut out `grow` times as thick as that
    /// box (and longer by as much). How well the reader's recognition reads a number wherever
    /// its detection is no limit: for measurement (`ocrgate-ocr-bench --given-lines`), not for
    /// serving. Blocking; `Unavailable` while every engine is reading.
    pub fn read_given_lines(
        &self,
        image: &image::RgbImage,
        lines: &[[(f32, f32); 4]],
        grow: f32,
    ) -> Result<Vec<LineDigits>, ProviderError> {
        // A permit, as reads take one: the engine is then one no read is promised.
        let _permit = self.permits.try_acquire().map_err(|_| {
            ProviderError::new(
                PROVIDER,
                ErrorKind::Unavailable,
                "every OCR engine is reading",
            )
        })?;
        let mut engine = free_engine(&self.engines)?;
        let digits = |glyphs: &[engine::Glyph]| -> String {
            glyphs
                .iter()
                .filter(|glyph| glyph.is_digit())
                .map(|glyph| glyph.text.as_str())
                .collect()
        };
        lines
            .iter()
            .map(|&corners| {
                let (strip, upside_down) = engine::Strip::through(corners, grow);
                let line = engine
                    .read_row(image, strip, upside_down)
                    .map_err(inference_failed)?;
                Ok(line.map_or_else(LineDigits::default, |line| LineDigits {
                    recogniser: digits(&line.glyphs),
                    card_digits: digits(line.digits_read.as_deref().unwrap_or_default()),
                }))
            })
            .collect()
    }
}

#[async_trait]
impl BankCardRecognizer for LocalProvider {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    async fn recognize_bank_card(
        &self,
        request: BankCardRequest,
        call: &CallContext,
    ) -> Result<BankCard, ProviderError> {
        match request.image {
            ImageSource::Upload { bytes, .. } => {
                let answer = self
                    .read(bytes, call)
                    .await?
                    .answer(self.plan.min_confidence);
                if answer.is_err() {
                    self.metrics.unsure();
                }
                answer
            }
            ImageSource::Url(_) => Err(ProviderError::new(
                PROVIDER,
                ErrorKind::InvalidInput,
                "the local provider reads uploaded images only and does not fetch URLs: \
                 send the image bytes in `image`",
            )),
        }
    }
}

/// The reads waiting for a free engine, and how long reads take: when a read would finish.
struct Queue {
    /// The tickets of the reads waiting, in the order they came (the order engines are given).
    waiting: Mutex<BTreeSet<u64>>,
    next_ticket: AtomicU64,
    max_waiting: usize,
    metrics: LocalMetrics,
    /// Recent reads' mean duration in microseconds: [`FIRST_GUESS`] until a read is timed, the
    /// mean of the first eight, then each new read weighing an eighth.
    read_micros: AtomicU64,
    /// Reads timed so far, up to eight.
    reads_timed: AtomicU64,
    /// Wakes the reads waiting whenever a read ends.
    read_ended: Notify,
}

impl Queue {
    fn new(max_waiting: usize, metrics: LocalMetrics) -> Self {
        Self {
            waiting: Mutex::new(BTreeSet::new()),
            next_ticket: AtomicU64::new(0),
            max_waiting,
            metrics,
            read_micros: AtomicU64::new(FIRST_GUESS.as_micros() as u64),
            reads_timed: AtomicU64::new(0),
            read_ended: Notify::new(),
        }
    }

    fn read_took(&self, took: Duration) {
        let took = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        let timed = (self.reads_timed.load(Ordering::Relaxed) + 1).min(8);
        self.reads_timed.store(timed, Ordering::Relaxed);
        // Only this update writes it: a lost race only drops one sample.
        let mean = self.read_micros.load(Ordering::Relaxed);
        let mean = mean - mean / timed + took / timed;
        self.read_micros.store(mean, Ordering::Relaxed);
    }

    fn tickets(&self) -> std::sync::MutexGuard<'_, BTreeSet<u64>> {
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How long a read with `ahead` reads waiting before it would take to be done while every
    /// one of `engines` is busy: the reads running are half done on average, each read ahead
    /// takes one turn of an engine, and then its own.
    fn expected_finish(&self, ahead: usize, engines: usize) -> Duration {
        let read = Duration::from_micros(self.read_micros.load(Ordering::Relaxed));
        read.mul_f64(1.5 + ahead as f64 / engines.max(1) as f64)
    }

    /// Lets a read wait its turn, or, with every engine `busy`, refuses it: the queue is full, or
    /// the read could not be done in the `left` of its deadline.
    fn admit(
        self: &Arc<Self>,
        busy: bool,
        engines: usize,
        left: Option<Duration>,
        caller: &Arc<str>,
    ) -> Result<Waiting, ProviderError> {
        let mut waiting = self.tickets();
        let ahead = waiting.len();
        // With an engine free, the read starts at once: how long it takes is its own to find out.
        if busy {
            let finish = self.expected_finish(ahead, engines);
            if ahead >= self.max_waiting {
                self.metrics.refused("queue_full", Arc::clone(caller));
                return Err(busy_reader(
                    format!(
                        "{ahead} reads wait for its {engines} engine(s) already, as many as \
                         [local] max_queue lets wait"
                    ),
                    finish,
                ));
            }
            self.refuse_late(ahead, engines, finish, left, caller)?;
        }
        let ticket = self.next_ticket.fetch_add(1, Ordering::Relaxed);
        waiting.insert(ticket);
        self.metrics.waiting(1);
        Ok(Waiting {
            queue: Arc::clone(self),
            ticket,
        })
    }

    /// Weighs again, with what is known now, whether `waiting` can be done in the `left` of its
    /// deadline.
    fn recheck(
        &self,
        waiting: &Waiting,
        engines: usize,
        left: Duration,
        caller: &Arc<str>,
    ) -> Result<(), ProviderError> {
        let ahead = self.tickets().range(..waiting.ticket).count();
        let finish = self.expected_finish(ahead, engines);
        self.refuse_late(ahead, engines, finish, Some(left), caller)
    }

    fn refuse_late(
        &self,
        ahead: usize,
        engines: usize,
        finish: Duration,
        left: Option<Duration>,
        caller: &Arc<str>,
    ) -> Result<(), ProviderError> {
        match left {
            Some(left) if finish > left => {
                self.metrics.refused("deadline", Arc::clone(caller));
                Err(busy_reader(
                    format!(
                        "{ahead} reads wait for its {engines} engine(s) ahead of this one: it \
                         would be done in about {} ms, after the {} ms its deadline leaves",
                        finish.as_millis(),
                        left.as_millis()
                    ),
                    finish,
                ))
            }
            _ => Ok(()),
        }
    }
}

/// A read waiting for an engine, in its queue until it is dropped.
struct Waiting {
    queue: Arc<Queue>,
    ticket: u64,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.queue.tickets().remove(&self.ticket);
        self.queue.metrics.waiting(-1);
    }
}

fn busy_reader(why: String, wait: Duration) -> ProviderError {
    ProviderError::new(
        PROVIDER,
        ErrorKind::Busy,
        format!("the local reader is busy: {why}"),
    )
    .retry_after(wait.max(Duration::from_millis(100)))
}

/// What a read is taken to last until one is timed: about a hard photo's p50 on one core of the
/// machines BENCHMARKS.md was measured on. The first read timed replaces it.
const FIRST_GUESS: Duration = Duration::from_millis(250);

/// Sets its flag when dropped: tells blocking work that nobody waits for it any more.
#[derive(Default)]
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// An engine no read holds. One whose last run panicked is still whole (ONNX Runtime keeps no
/// state between runs), so a poisoned slot is taken as it is rather than lost.
fn free_engine(engines: &[Mutex<Engine>]) -> Result<MutexGuard<'_, Engine>, ProviderError> {
    engines
        .iter()
        .find_map(|slot| match slot.try_lock() {
            Ok(engine) => Some(engine),
            Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        })
        .ok_or_else(|| ProviderError::new(PROVIDER, ErrorKind::Unknown, "no free OCR engine"))
}

/// Decodes `bytes`, reads its text and picks the card number. Runs on a blocking thread, and gives
/// up as soon as `stop` says nobody waits for the answer any more.
fn read_card(
    engines: &[Mutex<Engine>],
    bins: &BinTable,
    bytes: &[u8],
    plan: Plan,
    stop: impl Fn() -> bool,
    metrics: &LocalMetrics,
) -> Result<Reading, ProviderError> {
    let image = decode(bytes, plan.max_image_pixels)?;
    if stop() {
        return Err(stopped());
    }
    let mut engine = free_engine(engines)?;
    let turned = OnceCell::new();
    let mut read = passes::Read::new(
        &mut engine,
        bins,
        &stop,
        &image,
        &turned,
        plan.min_confidence,
    );
    let settled_by = read.run(plan.passes)?;
    metrics.read(settled_by);
    tracing::debug!(settled_by, looks = read.looks.len(), "card read");
    let passes::Read {
        best,
        best_in,
        readings,
        looks,
        ..
    } = read;
    drop(engine);
    let (lines, image) = &looks[best_in];
    described(best, &readings, lines, image, settled_by)
}

/// The number each look read, in order, to tell how many agree with the one taken.
#[derive(Debug, Default)]
struct Readings {
    numbers: Vec<Option<CardNumber>>,
}

impl Readings {
    fn add(&mut self, picked: Option<&card::Picked>) {
        self.numbers
            .push(picked.map(|picked| picked.number.clone()));
    }

    /// What they say of `picked`, the reading taken.
    fn evidence(&self, picked: &card::Picked) -> Evidence {
        let same = self
            .numbers
            .iter()
            .filter(|number| number.as_ref() == Some(&picked.number))
            .count();
        Evidence {
            certainty: picked.certainty,
            log_probability: picked.log_probability,
            digits: picked.number.digits().len(),
            luhn_valid: picked.luhn_valid,
            issuer: picked.issuer,
            usual_length: picked.usual_length,
            bank_grouped: picked.bank_grouped,
            short_for_issuer: picked.short_for_issuer,
            corrected: picked.corrected,
            settled: picked.settled(),
            looks: self.numbers.len(),
            agreeing: same.saturating_sub(1),
        }
    }
}

/// Where the number's row most likely is, and in which look: where the best reading was found
/// (`picked`, in look `picked_in`), then where most digits were (groups read, others missed), at
/// most `ROWS_LOOKED_AT` rows, each once.
fn number_rows(
    picked: Option<&card::Picked>,
    picked_in: usize,
    looks: &[(Vec<engine::TextLine>, &image::RgbImage)],
) -> Vec<(engine::Bounds, usize)> {
    let mut candidates: Vec<(usize, engine::Bounds, usize)> = looks
        .iter()
        .enumerate()
        .flat_map(|(at, (lines, _))| {
            card::digit_rows(lines)
                .into_iter()
                .map(move |(digits, bounds)| (digits, bounds, at))
        })
        .collect();
    // Stable: of rows with as many digits, the earlier look's first.
    candidates.sort_by_key(|&(digits, _, _)| std::cmp::Reverse(digits));
    let mut rows: Vec<(engine::Bounds, usize)> = picked
        .map(|picked| (picked.bounds, picked_in))
        .into_iter()
        .collect();
    for (_, bounds, at) in candidates {
        if rows.len() >= ROWS_LOOKED_AT {
            break;
        }
        let seen = rows.iter().any(|&(row, row_at)| {
            std::ptr::eq(looks[row_at].1, looks[at].1)
                && (row.center_y() - bounds.center_y()).abs() < row.height.max(bounds.height) as f32
        });
        if !seen {
            rows.push((bounds, at));
        }
    }
    rows
}

/// How many rows are looked at alone, at most: a card's number is seldom beyond the two likeliest.
const ROWS_LOOKED_AT: usize = 2;

/// `image` in grey with its light evened out: each pixel's difference from its surroundings (a
/// blur of `radius`, about a line's height), stretched so that the strongest 2% of differences
/// span the levels. Glare or shade over a group of digits no longer hides it.
fn flattened(image: &image::RgbImage, radius: f32) -> image::RgbImage {
    let grey = image::imageops::grayscale(image);
    let background = imageproc::filter::gaussian_blur_f32(&grey, radius.max(1.0));
    let differences: Vec<f32> = grey
        .pixels()
        .zip(background.pixels())
        .map(|(pixel, around)| f32::from(pixel.0[0]) - f32::from(around.0[0]))
        .collect();
    let mut strengths: Vec<f32> = differences.iter().map(|d| d.abs()).collect();
    if strengths.is_empty() {
        return image.clone();
    }
    let at = (strengths.len() * 98 / 100).min(strengths.len() - 1);
    let (_, strong, _) = strengths.select_nth_unstable_by(at, f32::total_cmp);
    let gain = 110.0 / strong.max(4.0);
    let width = image.width();
    image::RgbImage::from_fn(width, image.height(), |x, y| {
        let d = differences[(y * width + x) as usize];
        Rgb([(128.0 + gain * d).clamp(0.0, 255.0) as u8; 3])
    })
}

/// The part of an image of `size` a row of digits at `row` is looked at again in: as wide again
/// on each side (the groups missed may be on either), and above and below it as far as the next
/// line of a number printed in lines may be, whole ([`card::NEXT_LINE_REACH`] line heights).
fn around_row(row: engine::Bounds, size: (u32, u32)) -> engine::Bounds {
    let (width, height) = size;
    let reach = (card::NEXT_LINE_REACH * row.height as f32).ceil() as u32;
    let x = row.x.saturating_sub(row.width);
    let y = row.y.saturating_sub(reach);
    engine::Bounds {
        x,
        y,
        width: (row.x + 2 * row.width).min(width) - x,
        height: (row.y + row.height + reach).min(height) - y,
    }
}

/// The card `picked` from `lines` read in `image`: its number, how far it is to be trusted given
/// what every look read, the expiry printed near it, and how sharp its print is (a quality below
/// 50 is `BLURRY`).
fn described(
    picked: Option<card::Picked>,
    readings: &Readings,
    lines: &[engine::TextLine],
    image: &image::RgbImage,
    settled_by: &'static str,
) -> Result<Reading, ProviderError> {
    let picked = picked.ok_or_else(|| {
        ProviderError::new(
            PROVIDER,
            ErrorKind::NotFound,
            "no bank card number (16 to 19 digits) was found in the image",
        )
    })?;
    let evidence = readings.evidence(&picked);
    let mut card = BankCard::new(picked.number);
    card.expiry = card::expiry(lines, picked.bounds);
    card.quality = Some(card::sharpness(image, picked.bounds));
    card.confidence = Some(evidence.confidence());
    Ok(Reading {
        card: card.with_own_rules(),
        evidence,
        settled_by,
    })
}

fn inference_failed(err: ort::Error) -> ProviderError {
    ProviderError::new(
        PROVIDER,
        ErrorKind::Unknown,
        format!("OCR inference failed: {err}"),
    )
}

/// Lines turned less than this (radians, 1.5°) are read well as they are.
const MIN_DESKEW: f32 = 0.026;
/// Lines turned more than this (45°) run nearer up and down than across: not a card held off
/// square, which is turned upright up to it, but one on its side, which an image stored sideways
/// says in its EXIF orientation (decoding honours it).
const MAX_DESKEW: f32 = std::f32::consts::FRAC_PI_4;
/// A second look: the detector sees more of a small card.
const SECOND_LOOK: Look = Look {
    detection_side: 768,
    line_stretch: 1.0,
    channel: None,
};
/// A third look: the recogniser sees more of narrow digits.
const THIRD_LOOK: Look = Look {
    detection_side: 512,
    line_stretch: 1.4,
    channel: None,
};
/// A look at the number's row alone, a strip some ten times wider than high: the detector sees
/// it at least as large as in the second look.
const ROW_LOOK: Look = Look {
    detection_side: 960,
    line_stretch: 1.0,
    channel: None,
};

/// A photo larger than this on its longer side is averaged down to it before it is read: the
/// detector's input is at most 1280 pixels on its longer side, and a card across half of it still
/// prints its number some 60 pixels high, over the recogniser's 48. Every look's copies (the image
/// turned upright, the lines cut out) are then a fraction of a phone photo's size.
const MAX_WORKING_SIDE: u32 = 2560;

/// Decodes an image of at most `max_pixels`, upright by its EXIF orientation, at most
/// `MAX_WORKING_SIDE` on its longer side.
fn decode(bytes: &[u8], max_pixels: u64) -> Result<image::RgbImage, ProviderError> {
    let image =
        images::decode(bytes, max_pixels).map_err(|err| err.into_provider_error(PROVIDER))?;
    let (width, height) = (image.width(), image.height());
    if width.max(height) <= MAX_WORKING_SIDE {
        return Ok(image.into_rgb8());
    }
    // Area averaging, straight from the decoded pixels: no full-size copy is made.
    let scale = f64::from(MAX_WORKING_SIDE) / f64::from(width.max(height));
    Ok(image
        .thumbnail_exact(images::scaled(width, scale), images::scaled(height, scale))
        .into_rgb8())
}

fn stopped() -> ProviderError {
    deadline_exceeded("reading the card: nobody waits for the answer any more")
}

fn deadline_exceeded(what: &str) -> ProviderError {
    ProviderError::new(
        PROVIDER,
        ErrorKind::DeadlineExceeded,
        format!("the deadline ran out {what}"),
    )
}

/// ONNX Runtime allows one environment per process; every provider built shares it.
fn runtime(library: &Path) -> Result<ort::environment::Environment, BuildError> {
    static RUNTIME: Mutex<Option<ort::environment::Environment>> = Mutex::new(None);
    let failed = |message: String| BuildError::Runtime {
        path: library.to_owned(),
        message,
    };
    let mut runtime = RUNTIME
        .lock()
        .map_err(|_| failed("a previous load panicked".into()))?;
    if let Some(environment) = runtime.as_ref() {
        return Ok(environment.clone());
    }
    let environment = ort::init_from(library)
        .map_err(|err| failed(err.to_string()))?
        .with_name("ocrgate")
        .build()
        .map_err(|err| failed(err.to_string()))?;
    *runtime = Some(environment.clone());
    Ok(environment)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_is_refused_when_it_could_not_be_done_by_its_deadline_or_the_queue_is_full() {
        let queue = Arc::new(Queue::new(2, LocalMetrics::new(&Metrics::disabled())));
        let caller: Arc<str> = "anonymous".into();
        let second = Duration::from_secs(1);
        // Nothing timed yet: a read is guessed to take a quarter of a second.
        assert_eq!(queue.expected_finish(0, 1), FIRST_GUESS.mul_f64(1.5));
        let first = queue
            .admit(true, 1, Some(second), &caller)
            .expect("admitted");
        queue.read_took(second);
        // Behind the read running (half done, on average) and one waiting: two and a half reads.
        assert_eq!(queue.expected_finish(1, 1), Duration::from_millis(2500));
        assert_eq!(queue.expected_finish(1, 2), Duration::from_millis(2000));
        let refused = queue
            .admit(true, 1, Some(2 * second), &caller)
            .err()
            .expect("busy");
        assert_eq!(refused.kind, ErrorKind::Busy);
        assert_eq!(refused.retry_after, Some(Duration::from_millis(2500)));
        assert!(
            queue.admit(false, 1, Some(2 * second), &caller).is_ok(),
            "an engine is free"
        );
        assert!(
            queue.admit(false, 1, Some(second / 10), &caller).is_ok(),
            "a read that starts at once is not refused for being slow"
        );
        let second_in_line = queue
            .admit(true, 1, Some(3 * second), &caller)
            .expect("time enough");
        // Two wait: the queue is full, whatever the deadline.
        let full = queue.admit(true, 1, None, &caller).err().expect("full");
        assert_eq!(full.kind, ErrorKind::Busy);
        // Weighed again as reads end: with the first gone, the second is next.
        assert!(
            queue
                .recheck(&second_in_line, 1, 2 * second, &caller)
                .is_err()
        );
        drop(first);
        assert!(
            queue
                .recheck(&second_in_line, 1, 2 * second, &caller)
                .is_ok()
        );
        drop(second_in_line);
        assert!(queue.admit(true, 1, None, &caller).is_ok());
    }

    #[test]
    fn recent_reads_weigh_most_in_the_time_a_read_takes() {
        let queue = Queue::new(1, LocalMetrics::new(&Metrics::disabled()));
        queue.read_took(Duration::from_millis(800));
        for _ in 0..40 {
            queue.read_took(Duration::from_millis(200));
        }
        let mean = queue.read_micros.load(Ordering::Relaxed);
        assert!((200_000..210_000).contains(&mean), "{mean}");
    }

    #[test]
    fn flattening_evens_out_glare_and_brings_faint_print_out() {
        // Light rising from dark on the left to glare on the right; across it, print 10 levels
        // lighter than its surroundings.
        let image = image::RgbImage::from_fn(400, 60, |x, y| {
            let light = 60 + (160 * x / 400) as u8;
            let print = if (25..35).contains(&y) && x % 20 < 10 {
                10
            } else {
                0
            };
            Rgb([light + print; 3])
        });
        let even = flattened(&image, 15.0);
        let level = |x: u32, y: u32| i32::from(even.get_pixel(x, y).0[0]);
        // The surroundings are alike in the dark and in the glare...
        assert!(
            (level(50, 5) - level(350, 5)).abs() <= 8,
            "{} {}",
            level(50, 5),
            level(350, 5)
        );
        // ...and the print stands out of them in both.
        for x in [60, 340] {
            assert!(
                level(x, 30) - level(x, 5) > 40,
                "{x}: {} {}",
                level(x, 30),
                level(x, 5)
            );
        }
    }

    #[test]
    fn a_photo_larger_than_the_working_side_is_averaged_down_to_it_and_a_smaller_one_is_not() {
        let png = |width, height| {
            let mut bytes = Vec::new();
            image::RgbImage::new(width, height)
                .write_to(
                    &mut std::io::Cursor::new(&mut bytes),
                    image::ImageFormat::Png,
                )
                .expect("encoded");
            bytes
        };
        let large = decode(&png(4000, 3000), 16_000_000).expect("decoded");
        assert_eq!(large.dimensions(), (MAX_WORKING_SIDE, 1920));
        let small = decode(&png(1280, 800), 16_000_000).expect("decoded");
        assert_eq!(small.dimensions(), (1280, 800));
    }

    /// A level line of `text`, read surely, at `(x, y)`, 100 wide and 30 high.
    fn line(x: u32, y: u32, text: &str) -> engine::TextLine {
        card::tests::line(x, y, 30, text)
    }

    #[test]
    fn the_rows_looked_at_alone_are_the_readings_then_the_one_with_most_digits_each_once() {
        let image = image::RgbImage::new(800, 600);
        // A receipt's 13 digits, and a number's groups read in part on another row.
        let first = vec![
            line(10, 400, "2024112500123"),
            line(300, 200, "4216"),
            line(420, 200, "1685425"),
        ];
        // Another look reads the number's row again, a few pixels off.
        let second = vec![line(300, 205, "4216"), line(420, 205, "168542")];
        let looks = vec![(first, &image), (second, &image)];
        let rows = number_rows(None, 0, &looks);
        let ys: Vec<u32> = rows.iter().map(|(row, _)| row.y).collect();
        assert_eq!(ys, [400, 200]);
        assert_eq!(rows[1].1, 0);

        // With a reading, its row comes first and the receipt's next; never more than two.
        let picked = card::pick_number(
            &[line(300, 200, "6222 0202 0011 2345")],
            &BinTable::embedded().expect("bins"),
        )
        .expect("a reading");
        let rows = number_rows(Some(&picked), 1, &looks);
        let ys: Vec<u32> = rows.iter().map(|(row, _)| row.y).collect();
        assert_eq!(ys, [200, 400]);
        assert_eq!(rows[0].1, 1);
    }

    #[test]
    fn a_row_is_looked_at_with_its_width_each_side_and_a_next_lines_reach_above_and_below() {
        let row = engine::Bounds {
            x: 300,
            y: 400,
            width: 200,
            height: 40,
        };
        let around = around_row(row, (1000, 800));
        assert_eq!(
            (around.x, around.y, around.width, around.height),
            (100, 280, 600, 280)
        );
        // Clipped to the image.
        let around = around_row(row, (600, 420));
        assert_eq!(
            (around.x, around.y, around.width, around.height),
            (100, 280, 500, 140)
        );
    }
}
