//! `ocrgate-ocr-bench`: how well and how fast the local provider reads bank cards.
//!
//! Renders `--count` synthetic card photos (ocrgate-cardgen, seeds `--from` on), reads each through
//! the local provider one at a time with one inference thread, and reports exact-match accuracy
//! (overall, per grouping, per font, per design feature, by how high the digits stand, by how
//! plainly the number stands in the photo, hard cases, and on the numbers a person may read: the
//! generator's `Legibility`), how well its confidence is calibrated (a reliability table and the
//! expected calibration error) and p50/p95 latency per image. Misreads are listed by seed with
//! masked numbers; `cardgen OUT_DIR 1 SEED` renders one to look at, and `--write DIR` writes
//! every photo and where its number is (`scripts/number-lines.py` cuts the numbers out of them to
//! look at). `--evidence FILE` writes what the reader knew of each answer, for
//! `scripts/calibrate.py`. `--given-lines` also reads each number where the generator put it,
//! with each recogniser alone: what the reader's recognition reads wherever its detection is no
//! limit.

use std::{collections::BTreeMap, io::Write as _, num::NonZeroUsize, path::PathBuf, time::Instant};

use bytes::Bytes;
use clap::Parser;
use hdrhistogram::Histogram;
use ocrgate::{
    provider::{CallContext, CardNumber, ImageWarning},
    providers::local::{
        FEATURE_NAMES, LocalConfig, LocalProvider, MIN_CONFIDENCE, UNSETTLED, pass_names,
    },
};
use ocrgate_cardgen::{CardGenerator, Legibility};

#[derive(Debug, Parser)]
#[command(about = "How well and how fast the local provider reads synthetic card photos")]
struct Args {
    /// Cards to render and read.
    #[arg(long, default_value_t = 300)]
    count: u64,
    /// The first card's seed: seeds `from..from + count` are read. Cards past those a change was
    /// tuned on tell how it does on photos it has never seen.
    #[arg(long, default_value_t = 0)]
    from: u64,
    /// The directory scripts/fetch-models.sh filled.
    #[arg(long, default_value = "models")]
    models: PathBuf,
    /// Fonts for the generator (scripts/fetch-fonts.sh).
    #[arg(long)]
    fonts: Option<PathBuf>,
    /// Draw the numbers in the fonts of this folder instead of the set's own: faces the reader
    /// was never made or tuned with (`scripts/fetch-fonts.sh --held-out`).
    #[arg(long, value_name = "DIR")]
    number_fonts: Option<PathBuf>,
    /// Which photos: the generator's standard mode, its hard mode (phone photos: perspective,
    /// clutter, glare, metal embossing, low JPEG quality), or its wild mode (hard photos drawn
    /// wider, in fonts the other modes never use: what the reader was not tuned on).
    #[arg(long, value_enum, default_value_t = Set::Standard)]
    set: Set,
    /// Print figures only, never a seed: for ranges held out from tuning, which stay held out
    /// only while nobody looks at their photos or misreads.
    #[arg(long)]
    held_out: bool,
    /// Blur each photo by a Gaussian of this σ (pixels) before it is read, to see `BLURRY` at work.
    #[arg(long)]
    blur: Option<f32>,
    /// Also read each photo's number where the generator put it, line by line with each
    /// recogniser alone, cut out a little (`GIVEN_LINES_GROWTH`) larger than its digits: how
    /// many numbers the reader's recognition reads wherever its detection is no limit.
    #[arg(long)]
    given_lines: bool,
    /// Also write each photo to this directory as `<seed>-<number>.jpg`, for other readers, and
    /// where its number is beside it as `<seed>-<number>.txt` (`cardgen --positions`' form, for
    /// `scripts/number-lines.py`).
    #[arg(long)]
    write: Option<PathBuf>,
    /// Leave these passes of a read out (e.g. `--without wide --without upright_roomier`), to
    /// measure what each buys (the passes are listed in the output).
    #[arg(long)]
    without: Vec<String>,
    /// Append what the reader knew of each answer to this CSV file (with a header when it is
    /// new): set, seed, whether it was right, its confidence and the features it weighed.
    #[arg(long)]
    evidence: Option<PathBuf>,
    /// Append each photo to this CSV file (with a header when it is new): set, seed, how it was
    /// read (`right`, `wrong` or `not_found`), the answer's confidence, how plainly its number
    /// stands in it (`ocrgate_cardgen::Legibility`), its font and its design features.
    #[arg(long)]
    photos: Option<PathBuf>,
    /// The reader's `local.min_confidence`: numbers read with less count as not found, as the
    /// gateway answers them, and the passes for photos without a number run while no reading has
    /// it; 0 takes every reading as an answer. The reliability table and `--evidence` weigh every
    /// reading.
    #[arg(long, default_value_t = MIN_CONFIDENCE)]
    min_confidence: f32,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Set {
    Standard,
    Hard,
    Wild,
    /// The generator's design mode: cards as banks design them (portrait fronts, backs,
    /// guilloche, speckle, holograms, tone-on-tone and foil print, brand marks, hands, sleeves).
    Design,
}

#[derive(Default)]
struct Tally {
    total: u64,
    exact: u64,
}

impl Tally {
    fn add(&mut self, exact: bool) {
        self.total += 1;
        self.exact += u64::from(exact);
    }

    fn percent(&self) -> f64 {
        100.0 * self.exact as f64 / self.total.max(1) as f64
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let mut generator =
        CardGenerator::new(&args.fonts.unwrap_or_else(CardGenerator::default_fonts_dir))?
            .measuring_legibility();
    if let Some(dir) = &args.number_fonts {
        generator = generator.with_number_fonts(dir)?;
    }
    let provider = LocalProvider::new(
        &LocalConfig {
            models_dir: args.models,
            concurrency: Some(NonZeroUsize::MIN),
            threads_per_image: NonZeroUsize::MIN,
            without_passes: args.without.clone(),
            min_confidence: args.min_confidence,
            ..LocalConfig::default()
        },
        ocrgate::telemetry::Telemetry::without_exporters()?.metrics(),
    )?;

    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut overall = Tally::default();
    let mut by_grouping: BTreeMap<String, Tally> = BTreeMap::new();
    let mut by_font: BTreeMap<String, Tally> = BTreeMap::new();
    // The design mode's cards by each feature they have.
    let mut by_feature: BTreeMap<&str, Tally> = BTreeMap::new();
    // Cards by how high their number's digits stand in the photo (`HEIGHT_BANDS`).
    let mut by_height: BTreeMap<usize, Tally> = BTreeMap::new();
    // Cards by how plainly their number stands in the photo (`LEGIBILITY_BANDS`), and those a
    // person may read (`Legibility::is_legible`).
    let mut by_legibility: BTreeMap<usize, Tally> = BTreeMap::new();
    let mut legible = Tally::default();
    // Misses that answered a wrong number, and those that found none.
    let (mut wrong, mut not_found) = (0, 0);
    let mut hard = Tally::default();
    // Answers by the pass of the read that settled them (`none`: no pass did).
    let mut by_pass: BTreeMap<&str, Tally> = BTreeMap::new();
    // Of the cards whose number was read: their expiry read too, and their print's quality.
    let mut expiry = Tally::default();
    let mut qualities = Vec::new();
    let mut blurry = 0;
    let mut misses = Vec::new();
    // Each reading's confidence, and whether it was right.
    let mut answers: Vec<(f32, bool)> = Vec::new();
    // Readings under `--min-confidence`, answered as not found, and how many of them were right.
    let mut unsure = Tally::default();
    // With `--given-lines`: photos whose every line PP-OCR's recogniser, the card-digit
    // recogniser, or one or the other read exactly, at each growth and at any.
    let mut given = [[0u64; 3]; GIVEN_LINES_GROWTH.len() + 1];
    // Of those the reader missed: how many one or the other read at some growth.
    let mut given_of_missed = Tally::default();
    let set = format!("{:?}", args.set).to_lowercase();
    let mut evidence = args
        .evidence
        .as_deref()
        .map(|path| {
            appended_csv(
                path,
                &format!("set,seed,right,confidence,{}", FEATURE_NAMES.join(",")),
            )
        })
        .transpose()?;
    let mut photos = args
        .photos
        .as_deref()
        .map(|path| {
            appended_csv(
                path,
                "set,seed,read,confidence,height,contrast,blur,legibility,quality,font,features",
            )
        })
        .transpose()?;
    if let Some(dir) = &args.write {
        std::fs::create_dir_all(dir)?;
    }
    for seed in args.from..args.from + args.count {
        let mut card = match args.set {
            Set::Standard => generator.card(seed),
            Set::Hard => generator.hard_card(seed),
            Set::Wild => generator.wild_card(seed),
            Set::Design => generator.design_card(seed),
        };
        if let Some(sigma) = args.blur {
            card.jpeg = blurred(&card.jpeg, sigma)?;
        }
        if let Some(dir) = &args.write {
            let photo = dir.join(format!("{seed}-{}.jpg", card.number));
            std::fs::write(&photo, &card.jpeg)?;
            std::fs::write(photo.with_extension("txt"), card.positions())?;
        }
        let started = Instant::now();
        let reading = provider
            .read(Bytes::from(card.jpeg.clone()), &CallContext::default())
            .await;
        latency.record(started.elapsed().as_micros().max(1) as u64)?;
        let right = |read: &ocrgate::provider::BankCard| read.number.digits() == card.number;
        let read = reading
            .clone()
            .and_then(|reading| reading.answer(args.min_confidence));
        let exact = read.as_ref().is_ok_and(right);
        // A read that found no number was settled by no pass.
        let settled_by = reading
            .as_ref()
            .map_or(UNSETTLED, |reading| reading.settled_by);
        by_pass.entry(settled_by).or_default().add(exact);
        if let Ok(reading) = &reading {
            let confidence = reading.card.confidence.unwrap_or_default();
            let exact = right(&reading.card);
            answers.push((confidence, exact));
            if read.is_err() {
                unsure.add(exact);
            }
            if let Some(file) = &mut evidence {
                let features: Vec<String> = reading
                    .evidence
                    .features()
                    .iter()
                    .map(|feature| format!("{feature:.6}"))
                    .collect();
                writeln!(
                    file,
                    "{set},{seed},{},{confidence:.6},{}",
                    u8::from(exact),
                    features.join(",")
                )?;
            }
        }
        if args.given_lines {
            let read = read_given_lines(&provider, &card)?;
            for (tally, read) in given.iter_mut().zip(read) {
                for (count, read) in tally.iter_mut().zip(read) {
                    *count += u64::from(read);
                }
            }
            if !exact {
                given_of_missed.add(read[GIVEN_LINES_GROWTH.len()][2]);
            }
        }
        if let Some(file) = &mut photos {
            let outcome = match (exact, &read) {
                (true, _) => "right",
                (false, Ok(_)) => "wrong",
                (false, Err(_)) => "not_found",
            };
            let confidence = reading
                .as_ref()
                .map_or(0.0, |reading| reading.card.confidence.unwrap_or_default());
            let legibility = card.legibility.map_or_else(
                || ",,,,".to_owned(),
                |l| {
                    format!(
                        "{:.2},{:.3},{:.4},{:.0},{}",
                        l.height,
                        l.contrast,
                        l.blur,
                        l.score(),
                        l.quality
                    )
                },
            );
            writeln!(
                file,
                "{set},{seed},{outcome},{confidence:.6},{legibility},{},{}",
                card.font,
                card.features.join(" ")
            )?;
        }
        overall.add(exact);
        if let (true, Ok(read)) = (exact, &read) {
            expiry.add(read.expiry.is_some_and(|read| {
                (u32::from(read.month), u32::from(read.year) % 100) == card.expiry
            }));
            qualities.extend(read.quality);
            blurry += usize::from(read.warnings.contains(&ImageWarning::Blurry));
        }
        by_grouping
            .entry(format!("{:?}", card.grouping))
            .or_default()
            .add(exact);
        by_font.entry(card.font.clone()).or_default().add(exact);
        for feature in &card.features {
            by_feature.entry(feature).or_default().add(exact);
        }
        if let Some(height) = digits_height(&card) {
            let band = HEIGHT_BANDS.partition_point(|&(from, _)| from <= height);
            by_height
                .entry(band.saturating_sub(1))
                .or_default()
                .add(exact);
        }
        if let Some(legibility) = card.legibility {
            let band = LEGIBILITY_BANDS.partition_point(|&(from, _)| from <= legibility.score());
            by_legibility
                .entry(band.saturating_sub(1))
                .or_default()
                .add(exact);
            if legibility.is_legible() {
                legible.add(exact);
            }
        }
        if card.hard {
            hard.add(exact);
        }
        if !exact {
            let expected = CardNumber::parse(&card.number).map(|n| n.masked());
            let got = match &read {
                Ok(read) => {
                    wrong += 1;
                    read.number.masked()
                }
                Err(err) => {
                    not_found += 1;
                    format!("{:?}: {err}", err.kind)
                }
            };
            let legibility = card
                .legibility
                .map_or_else(String::new, |l| format!(", legibility {:.0}", l.score()));
            misses.push(format!(
                "  seed {seed}: expected {} got {got} ({:?}, {}, hard={}{legibility})",
                expected.unwrap_or_default(),
                card.grouping,
                card.font,
                card.hard
            ));
        }
    }

    println!(
        "local provider, {} synthetic cards ({:?} set), 1 inference thread",
        overall.total, args.set
    );
    for (name, tally) in &by_grouping {
        println!(
            "  grouping {name:<12} {:>3}/{:<3} {:6.1}%",
            tally.exact,
            tally.total,
            tally.percent()
        );
    }
    for (name, tally) in &by_font {
        println!(
            "  font {name:<24} {:>3}/{:<3} {:6.1}%",
            tally.exact,
            tally.total,
            tally.percent()
        );
    }
    for (name, tally) in &by_feature {
        println!(
            "  feature {name:<16} {:>3}/{:<3} {:6.1}%",
            tally.exact,
            tally.total,
            tally.percent()
        );
    }
    for (&band, tally) in &by_height {
        println!(
            "  digits {:<17} {:>3}/{:<3} {:6.1}%",
            HEIGHT_BANDS[band].1,
            tally.exact,
            tally.total,
            tally.percent()
        );
    }
    for (&band, tally) in &by_legibility {
        println!(
            "  legibility {:<13} {:>3}/{:<3} {:6.1}%",
            LEGIBILITY_BANDS[band].1,
            tally.exact,
            tally.total,
            tally.percent()
        );
    }
    println!(
        "  hard cases              {:>3}/{:<3} {:6.1}%",
        hard.exact,
        hard.total,
        hard.percent()
    );
    println!("reads by the pass that settled them (none: no pass did, or no number was found):");
    for name in pass_names() {
        let none = Tally::default();
        let tally = by_pass.get(name).unwrap_or(&none);
        println!(
            "  settled_by {name:<16} {:>3}/{:<3} {:6.1}%",
            tally.exact,
            tally.total,
            tally.percent()
        );
    }
    println!("misses: {wrong} wrong numbers, {not_found} without a number");
    println!(
        "readings under the least confidence answered ({}), counted as without a number: {} \
         ({} of them right)",
        args.min_confidence, unsure.total, unsure.exact
    );
    if !misses.is_empty() && !args.held_out {
        println!("misreads:");
        for miss in &misses {
            println!("{miss}");
        }
    }
    if args.given_lines {
        println!(
            "given lines: numbers whose every line was read exactly where the generator put it \
             (PP-OCR's recogniser, the card-digit one, one or the other)"
        );
        let labels = GIVEN_LINES_GROWTH
            .iter()
            .map(|growth| format!("{growth}x as thick as its digits"))
            .chain(std::iter::once("at any of those".to_owned()));
        for (label, [recogniser, card_digits, either]) in labels.zip(given) {
            println!(
                "  {label:<28} {recogniser:>3} {card_digits:>3} {either:>3} of {}",
                overall.total
            );
        }
        println!(
            "  of the reader's misses, read so: {} of {}",
            given_of_missed.exact, given_of_missed.total
        );
    }
    qualities.sort_unstable();
    let quality_at = |q: f64| {
        qualities
            .get(((qualities.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    println!(
        "expiry read on cards read: {:.1}% ({}/{})",
        expiry.percent(),
        expiry.exact,
        expiry.total
    );
    println!(
        "quality of the number's print p5/p50/p95: {}/{}/{}, BLURRY on {} of {}",
        quality_at(0.05),
        quality_at(0.5),
        quality_at(0.95),
        blurry,
        qualities.len()
    );
    ocrgate_bench::print_reliability(&answers);
    let ms = |us: u64| us as f64 / 1000.0;
    println!(
        "exact match: {:.1}% ({}/{})",
        overall.percent(),
        overall.exact,
        overall.total
    );
    println!(
        "exact match on numbers a person may read (legibility {} or more): {:.1}% ({}/{})",
        Legibility::LEGIBLE,
        legible.percent(),
        legible.exact,
        legible.total
    );
    println!(
        "latency per image p50: {:.1} ms",
        ms(latency.value_at_quantile(0.5))
    );
    println!(
        "latency per image p95: {:.1} ms",
        ms(latency.value_at_quantile(0.95))
    );
    // One line for scripts/bench-ocr.sh's side-by-side table, as scripts/rapidocr-bench.py prints.
    println!(
        "summary reader=ocrgate set={set} n={} exact={:.1} p50_ms={:.1} p95_ms={:.1}",
        overall.total,
        overall.percent(),
        ms(latency.value_at_quantile(0.5)),
        ms(latency.value_at_quantile(0.95))
    );
    Ok(())
}

/// The CSV file at `path`, opened to append to; a new one starts with `header`.
fn appended_csv(path: &std::path::Path, header: &str) -> std::io::Result<std::fs::File> {
    let new = !path.exists();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    if new {
        writeln!(file, "{header}")?;
    }
    Ok(file)
}

/// Bands of `digits_height`, each from where it begins, in pixels, to where the next does.
const HEIGHT_BANDS: [(f32, &str); 5] = [
    (0.0, "under 10 px"),
    (10.0, "10-15 px"),
    (15.0, "15-20 px"),
    (20.0, "20-30 px"),
    (30.0, "30 px and over"),
];

/// How high the digits of `card`'s number stand in its photo, in pixels: the mean of the two
/// sides of its lines' boxes, of the line whose digits are smallest. `None` when the photo shows
/// no line of it.
fn digits_height(card: &ocrgate_cardgen::Card) -> Option<f32> {
    let side = |(ax, ay): (f32, f32), (bx, by): (f32, f32)| (bx - ax).hypot(by - ay);
    card.number_lines
        .iter()
        .map(|line| {
            let [top_left, top_right, bottom_right, bottom_left] = line.corners;
            (side(top_left, bottom_left) + side(top_right, bottom_right)) / 2.0
        })
        .min_by(f32::total_cmp)
}

/// Bands of `Legibility::score`, each from where it begins to where the next does: halves and
/// multiples of `Legibility::LEGIBLE`.
const LEGIBILITY_BANDS: [(f32, &str); 5] = [
    (0.0, "under 450"),
    (0.5 * Legibility::LEGIBLE, "450-900"),
    (Legibility::LEGIBLE, "900-1800"),
    (2.0 * Legibility::LEGIBLE, "1800-3600"),
    (4.0 * Legibility::LEGIBLE, "3600 and over"),
];

/// How much thicker than its digits a line is cut out by `--given-lines`: a detector's box runs
/// past the print by some margin, and which margin reads best differs from line to line.
const GIVEN_LINES_GROWTH: [f32; 3] = [1.2, 1.4, 1.7];

/// Whether every line of `card`'s number was read exactly where the generator put it, by PP-OCR's
/// recogniser, by the card-digit one, and line by line by one or the other: at each of
/// `GIVEN_LINES_GROWTH`, then at any.
fn read_given_lines(
    provider: &LocalProvider,
    card: &ocrgate_cardgen::Card,
) -> Result<[[bool; 3]; GIVEN_LINES_GROWTH.len() + 1], Box<dyn std::error::Error>> {
    // A photo that shows no line of its number was read by none.
    if card.number_lines.is_empty() {
        return Ok([[false; 3]; GIVEN_LINES_GROWTH.len() + 1]);
    }
    let photo = image::load_from_memory(&card.jpeg)?.to_rgb8();
    let corners: Vec<_> = card.number_lines.iter().map(|line| line.corners).collect();
    let wanted: Vec<String> = card
        .number_lines
        .iter()
        .map(ocrgate_cardgen::NumberLine::digits)
        .collect();
    let mut found = [[true; 3]; GIVEN_LINES_GROWTH.len() + 1];
    // Line by line, whether some growth's reading by each had it.
    let mut anywhere = vec![[false; 3]; wanted.len()];
    for (found, growth) in found.iter_mut().zip(GIVEN_LINES_GROWTH) {
        let lines = provider.read_given_lines(&photo, &corners, growth)?;
        for ((read, wanted), anywhere) in lines.iter().zip(&wanted).zip(&mut anywhere) {
            let right = [
                read.recogniser == *wanted,
                read.card_digits == *wanted,
                read.recogniser == *wanted || read.card_digits == *wanted,
            ];
            for ((found, anywhere), right) in found.iter_mut().zip(anywhere).zip(right) {
                *found &= right;
                *anywhere |= right;
            }
        }
    }
    found[GIVEN_LINES_GROWTH.len()] =
        std::array::from_fn(|reader| anywhere.iter().all(|line| line[reader]));
    Ok(found)
}

/// `jpeg` blurred by a Gaussian of `sigma`, as a JPEG of quality 90.
fn blurred(jpeg: &[u8], sigma: f32) -> Result<Vec<u8>, image::ImageError> {
    let photo = image::imageops::blur(&image::load_from_memory(jpeg)?.to_rgb8(), sigma);
    let mut out = std::io::Cursor::new(Vec::new());
    photo.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
        &mut out, 90,
    ))?;
    Ok(out.into_inner())
}
