//! What the text lines read from a card say: which is its number, what its expiry is, and how
//! sharp its print is.

use std::ops::Range;

use image::{
    RgbImage,
    imageops::{self, FilterType},
};

use super::engine::{Bounds, Glyph, Strip, TextLine};
use crate::{
    enrich::{BinTable, CardNetwork, luhn_valid},
    provider::{CardExpiry, CardNumber},
};

/// Card numbers have 16 to 19 digits (13- and 15-digit numbers are not issued in China any more
/// and the vendors we stand in for do not read them either).
pub const DIGITS: std::ops::RangeInclusive<usize> = 16..=19;

/// A digit read with less probability than this may be replaced by its runner-up when that makes
/// a number pass the Luhn check. A number read with certainty is left alone: some real cards fail
/// Luhn.
const DOUBTFUL: f32 = 0.9;

/// Boxes further apart than this many line heights are not one number's groups.
const MAX_GAP: f32 = 2.0;

/// How many of the least certain digits are tried.
const CORRECTIONS_TRIED: usize = 3;

/// A reading whose least certain digit was read with at least this probability, and which is
/// otherwise settled (`Picked::settled`: Luhn, length, issuer, grouping), is taken without looking
/// again. Two misread digits can pass the Luhn check together; they are seldom both read with
/// certainty.
const SETTLED: f32 = 0.8;

/// Numbers of these lengths are issued by every network. Of 17 or 18 digits only by a few banks:
/// such a reading is more often a 19-digit number with digits lost (a group under glare, two equal
/// digits read as one) that passes the Luhn check by chance, one time in ten.
const USUAL_LENGTHS: [usize; 2] = [16, 19];

/// Whether `digits` are as long as card numbers usually are, or as the BIN table says their
/// issuer's are.
fn usual_length(digits: &str, bins: &BinTable) -> bool {
    USUAL_LENGTHS.contains(&digits.len()) || bins.lookup(digits).is_some()
}

/// Whether `digits` are fewer than the cards of the issuer whose prefix they start with have, and
/// no issuer of that prefix has cards as short.
fn short_for_issuer(digits: &str, bins: &BinTable) -> bool {
    bins.lookup(digits).is_none()
        && bins
            .longest_issued(digits)
            .is_some_and(|longest| longest > digits.len())
}

/// How banks group the digits of 16- and 19-digit numbers on their cards.
const GROUPINGS: [&[usize]; 4] = [&[4, 4, 4, 4], &[4, 4, 4, 4, 3], &[6, 13], &[4, 4, 4, 7]];

/// Whether digits read in groups of `groups` (boxes, or spaces within a box) could be printed as a
/// bank groups them: the groups read are a bank's grouping, some of its neighbouring groups read as
/// one. `522 0283612145891`, a 6-digit group cut short by its box, is not. Lengths banks group no
/// single way (17, 18) pass.
fn bank_grouped(groups: &[usize]) -> bool {
    let read = group_ends(groups);
    let printed: Vec<Vec<usize>> = GROUPINGS
        .iter()
        .map(|grouping| group_ends(grouping))
        .filter(|ends| ends.last() == read.last())
        .collect();
    printed.is_empty()
        || printed
            .iter()
            .any(|ends| read.iter().all(|end| ends.contains(end)))
}

/// Where each of `groups` ends, counted in digits from the first.
fn group_ends(groups: &[usize]) -> Vec<usize> {
    groups
        .iter()
        .scan(0, |end, group| {
            *end += group;
            Some(*end)
        })
        .collect()
}

/// Whose cards a number's leading digits are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Issuer {
    Unknown,
    /// A card network's range (UnionPay 62, Visa 4, ...).
    Network,
    /// A bank's prefix in the BIN table.
    Bank,
}

impl Issuer {
    fn of(digits: &str, bins: &BinTable) -> Self {
        if bins.knows_prefix(digits) {
            Self::Bank
        } else if CardNetwork::of(digits).is_some() {
            Self::Network
        } else {
            Self::Unknown
        }
    }
}

/// A card number found, where it is printed, and how much it is to be trusted.
#[derive(Debug, Clone, PartialEq)]
pub struct Picked {
    pub number: CardNumber,
    /// The boxes it was read from, together.
    pub bounds: Bounds,
    pub luhn_valid: bool,
    /// Whether it is as long as card numbers usually are, or as its issuer's are.
    pub usual_length: bool,
    pub issuer: Issuer,
    /// Whether its groups, as read, could be a bank's grouping.
    pub bank_grouped: bool,
    /// Whether it is shorter than every card its issuer's prefix is known for: a 19-digit number
    /// whose last group was missed reads as 16 digits that pass the Luhn check one time in ten.
    pub short_for_issuer: bool,
    /// The probability of its least certain digit (a digit the Luhn check corrected counts at its
    /// runner-up's).
    pub certainty: f32,
    /// The sum of its digits' log probabilities (a corrected digit at its runner-up's).
    pub log_probability: f32,
    /// Whether one doubtful digit was replaced by its runner-up to pass the Luhn check.
    pub corrected: bool,
    /// Whether its row goes on past its last group with another box of digits: the number's
    /// last group apart from the others (a 19-digit number read as its first 16 passes the Luhn
    /// check one time in ten), or print beside the card.
    pub continued: bool,
}

impl Picked {
    /// What trusting a reading weighs before its certainty.
    fn rank(&self) -> (bool, bool, Issuer) {
        (self.luhn_valid, self.usual_length, self.issuer)
    }

    /// Whether another look could hardly do better.
    pub fn settled(&self) -> bool {
        self.read_well() && !self.may_go_on()
    }

    /// Signs of a longer number whose last digits were missed, just past its last box: it is
    /// shorter than its issuer's cards, its row goes on with more digits, or it is 17 or 18
    /// digits long, as few banks' cards are and a 19-digit number with a digit lost is.
    fn may_go_on(&self) -> bool {
        self.short_for_issuer
            || self.continued
            || !USUAL_LENGTHS.contains(&self.number.digits().len())
    }

    /// A valid number of a usual length and a known issuer, grouped as banks print them, every
    /// digit read with some certainty.
    fn read_well(&self) -> bool {
        self.luhn_valid
            && self.usual_length
            && self.issuer > Issuer::Unknown
            && self.bank_grouped
            && self.certainty >= SETTLED
    }
}

/// Whether reading `a` is more to be trusted than `b`, of one look or of two: one passing the
/// Luhn check, then one of a usual length, then one starting as an issuer's cards do, then the
/// longer (a look that missed a group can read 16 digits of a 19-digit number that pass the Luhn
/// check by chance; the digits another look read beyond them are seldom all invented), then the
/// surer; any reading more than none.
pub fn more_trusted(a: Option<&Picked>, b: Option<&Picked>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a
            .rank()
            .cmp(&b.rank())
            .then(a.number.digits().len().cmp(&b.number.digits().len()))
            .then(a.certainty.total_cmp(&b.certainty))
            .is_gt(),
        (a, b) => a.is_some() && b.is_none(),
    }
}

/// The card number among `lines`, or `None` when no line holds 16 to 19 digits.
///
/// A number printed in widely spaced groups is often detected as several boxes, so boxes on the
/// same row are joined first, every run of neighbouring boxes on its own (print beside the card,
/// such as a price on a receipt, may share the number's row). Rows printed one under another are
/// also read as one number, top to bottom: portrait cards print theirs in two to four lines (see
/// [`stacks`]). A number failing the Luhn check is
/// most often one misread digit: the least certain digits are tried with their runner-up. Among
/// the candidates, one passing the Luhn check wins, then one of a usual length, then one starting
/// as an issuer's cards do (a stray mark read as a digit before the number, or a dropped first
/// digit, seldom does), then the longer, then the tallest text (the number is the largest print on
/// a card's face). How a reading is grouped does not rank it (as a key it ranked one wrong reading
/// over the right one in 1,250 fresh photos and changed nothing else); it counts towards settling
/// a reading, and in its confidence.
pub fn pick_number(lines: &[TextLine], bins: &BinTable) -> Option<Picked> {
    let rows = rows(lines);
    let parts: Vec<&[&TextLine]> = rows.iter().flat_map(|row| unlabelled_parts(row)).collect();
    rows.iter()
        .flat_map(|row| spans(row))
        .chain(stacks(&parts))
        .flat_map(|row| {
            // A stack's number holds some of the box it was begun from: the stacks begun from
            // later boxes are the ones that leave it out, with the lines under those.
            let begun_from = row.stacked.then(|| row.begun_from());
            digit_runs(&row.glyphs)
                .into_iter()
                .filter(move |run| {
                    begun_from.as_ref().is_none_or(|begun_from| {
                        begun_from.start < run.from + run.digits.len() && run.from < begun_from.end
                    })
                })
                .map(move |run| (run, row.height, row.bounds, row.stacked, row.continued))
        })
        .filter(|(run, ..)| DIGITS.contains(&run.digits.len()))
        .filter_map(|(run, height, bounds, stacked, continued)| {
            let read = corrected(&run.digits);
            let digits = &read.digits;
            let picked = Picked {
                luhn_valid: luhn_valid(digits),
                usual_length: usual_length(digits, bins),
                issuer: Issuer::of(digits, bins),
                bank_grouped: bank_grouped(&run.groups),
                short_for_issuer: short_for_issuer(digits, bins),
                number: CardNumber::parse(digits)?,
                bounds,
                certainty: read.certainty,
                log_probability: read.log_probability,
                corrected: read.replaced,
                continued,
            };
            // Where a number cut from a longer run starts, only an issuer's prefix tells.
            let placed = !run.cut || picked.issuer > Issuer::Unknown;
            // Lines of print one under another (a receipt's) are many, and so are figures with
            // marks between their digits (amounts, times); those of a number read as a number
            // does: a valid one of a known issuer, the lines in a bank's groups.
            let number_like = picked.luhn_valid && picked.issuer > Issuer::Unknown;
            let whole = !stacked || number_like && picked.bank_grouped;
            let unmarked = !run.across_marks || number_like;
            (placed && whole && unmarked).then_some((picked, height))
        })
        .max_by(|(a, a_height), (b, b_height)| {
            a.rank()
                .cmp(&b.rank())
                .then(a.number.digits().len().cmp(&b.number.digits().len()))
                .then(a_height.total_cmp(b_height))
        })
        .map(|(picked, _)| picked)
}

/// The number among `lines` as [`pick_number`] picks it; where that settles nothing, the number
/// the same lines give with each group of digits as ocrgate's own recogniser read it, and each
/// line whose marks were nearly as likely digits read as digits ([`TextLine::digits_read`]), is
/// taken instead when it is more trusted. A second recogniser errs elsewhere than the first: a
/// `0` read as `8`, a digit cut by the box's edge lost; and a group printed in a font whose `6`
/// looks like a `b` is one of digits all the same.
pub fn pick_number_read_twice(lines: &[TextLine], bins: &BinTable) -> Option<Picked> {
    let picked = pick_number(lines, bins);
    if picked.as_ref().is_some_and(Picked::settled)
        || lines.iter().all(|line| line.digits_read.is_none())
    {
        return picked;
    }
    let read_again: Vec<TextLine> = lines
        .iter()
        .map(|line| TextLine {
            bounds: line.bounds,
            strip: line.strip,
            glyphs: line.digits_read.as_ref().unwrap_or(&line.glyphs).clone(),
            upside_down: line.upside_down,
            digits_read: None,
        })
        .collect();
    let again = pick_number(&read_again, bins);
    if more_trusted(again.as_ref(), picked.as_ref()) {
        again
    } else {
        picked
    }
}

/// The band along which the row of digits at `row` is read whole, as one line: from the first box
/// of digits on its line to the last (each within `BAND_REACH` of the next, so a group the
/// detector missed between them lies in it), and `BAND_MARGIN` past each end; and whether it reads
/// turned over (most of the row's boxes were). `None` when no box of digits lies within `row`.
pub fn number_band(lines: &[TextLine], row: Bounds) -> Option<(Strip, bool)> {
    let digits: Vec<&TextLine> = lines.iter().filter(|line| mostly_digits(line)).collect();
    let in_row: Vec<&TextLine> = digits
        .iter()
        .copied()
        .filter(|line| row.contains(line.bounds))
        .collect();
    // The row's longest box gives its direction.
    let guide = in_row
        .iter()
        .max_by(|a, b| a.strip.length.total_cmp(&b.strip.length))?
        .strip;
    let upside_down = 2 * in_row.iter().filter(|line| line.upside_down).count() > in_row.len();
    let on_its_line = |line: &&TextLine| {
        off_line(guide.centre, guide.slope(), line.strip.centre) < guide.thickness / 2.0
    };
    let mut on_line: Vec<(f32, f32)> = digits
        .iter()
        .copied()
        .filter(on_its_line)
        .map(|line| {
            let left = line.bounds.x as f32;
            (left, left + line.bounds.width as f32)
        })
        .collect();
    on_line.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Boxes on the line reached from the row, on either side, one after another.
    let reach = BAND_REACH * guide.thickness;
    let (mut left, mut right) = (row.x as f32, (row.x + row.width) as f32);
    for &(start, end) in &on_line {
        if start <= right + reach {
            right = right.max(end);
        }
    }
    for &(start, end) in on_line.iter().rev() {
        if end >= left - reach {
            left = left.min(start);
        }
    }
    let margin = BAND_MARGIN * guide.thickness;
    let (left, right) = (left - margin, right + margin);
    let x = (left + right) / 2.0;
    let strip = Strip {
        centre: (x, guide.centre.1 + (x - guide.centre.0) * guide.slope()),
        angle: guide.angle,
        length: (right - left) / guide.angle.cos(),
        thickness: guide.thickness,
    };
    Some((strip, upside_down))
}

/// How far past a row's end, in its band's thickness (about two and a half text heights), another
/// box of digits on its line is taken into its band: a group of four digits and the spaces around
/// it, missed by the detector, lie within it. A reach of six read the tuning ranges as three does
/// (`BENCHMARKS.md`).
const BAND_REACH: f32 = 3.0;
/// How far the band of a row runs past its first and last box, in the band's thickness: a digit
/// cut by a box's edge, or a group beside it that no box reached. Half of it read one wild photo
/// fewer, twice as much two fewer (`BENCHMARKS.md`).
const BAND_MARGIN: f32 = 1.0;

/// A row of neighbouring boxes holding at least this many digits is where a number is likely to
/// be, even when it is not read whole: two groups of four.
const LIKELY_ROW_DIGITS: usize = 8;

/// The runs of neighbouring boxes on one row holding at least `LIKELY_ROW_DIGITS` digits, those
/// with the most digits (then the tallest) first, and where each is: the groups of a number read in
/// part. Labelled figures (`TEL 021-6888 1213`) are not a number's groups.
pub fn digit_rows(lines: &[TextLine]) -> Vec<(usize, Bounds)> {
    let mut found: Vec<(usize, f32, Bounds)> = rows(lines)
        .iter()
        .flat_map(|row| spans(row))
        .filter(|row| !row.labelled)
        .map(|row| (digit_count(&row.glyphs), row.height, row.bounds))
        .filter(|(digits, _, _)| *digits >= LIKELY_ROW_DIGITS)
        .collect();
    found.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.total_cmp(&a.1)));
    found
        .into_iter()
        .map(|(digits, _, bounds)| (digits, bounds))
        .collect()
}

/// What precedes a card's expiry: `VALID THRU`, `GOOD THRU`, `EXPIRES`, `有效期`, `MONTH/YEAR`.
const EXPIRY_LABELS: &[&str] = &["VALID", "THRU", "GOOD", "EXP", "MONTH", "有效"];

/// An unlabelled `MM/YY` further from the number than this many of its heights is not the card's.
const EXPIRY_REACH: f32 = 4.0;

/// The expiry printed on the card whose number is at `number`: an `MM/YY` (or `MM/YYYY`) after a
/// label such as `VALID THRU` anywhere, else one alone near the number (cards print it below), the
/// nearest first. Impossible months are not expiries.
pub fn expiry(lines: &[TextLine], number: Bounds) -> Option<CardExpiry> {
    let reach = EXPIRY_REACH * number.height as f32;
    lines
        .iter()
        .flat_map(|line| {
            let text: String = line
                .glyphs
                .iter()
                .map(|glyph| glyph.text.as_str())
                .filter(|text| !text.trim().is_empty())
                .collect::<String>()
                .to_uppercase();
            let labelled = EXPIRY_LABELS.iter().any(|label| text.contains(label));
            let distance = (line.bounds.center_y() - number.center_y()).abs();
            month_years(&text)
                .map(|expiry| (expiry, labelled, distance))
                .collect::<Vec<_>>()
        })
        .filter(|(_, labelled, distance)| *labelled || *distance <= reach)
        .min_by(|(_, a_labelled, a), (_, b_labelled, b)| {
            b_labelled.cmp(a_labelled).then(a.total_cmp(b))
        })
        .map(|(expiry, _, _)| expiry)
}

/// Every `MM/YY` or `MM/YYYY` in `text` (spaces already dropped) that is not part of a longer run
/// of digits or of a date such as `2026/11/24`.
fn month_years(text: &str) -> impl Iterator<Item = CardExpiry> + '_ {
    let bytes = text.as_bytes();
    let digits_at = move |from: usize| {
        bytes[from.min(bytes.len())..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    bytes
        .iter()
        .enumerate()
        .filter(|(_, byte)| **byte == b'/')
        .filter_map(move |(slash, _)| {
            let month_start = slash.checked_sub(2)?;
            let joined = month_start > 0
                && (bytes[month_start - 1].is_ascii_digit() || bytes[month_start - 1] == b'/');
            let month_digits = bytes[month_start..slash].iter().all(u8::is_ascii_digit);
            let year_len = digits_at(slash + 1);
            if joined || !month_digits || !matches!(year_len, 2 | 4) {
                return None;
            }
            CardExpiry::parse(text.get(month_start..slash + 1 + year_len)?)
        })
}

/// Line height the sharpness of a number's print is measured at, as the recogniser reads it.
const SHARPNESS_HEIGHT: u32 = 48;
/// The variance of the Laplacian over the variance of the levels of crisply printed digits at that
/// height: quality 100, and 0.08 quality 50, under which a reading is `BLURRY`. Calibrated on 30 of
/// the generator's standard photos, over their number's region: as they are, 28 measure over 0.08
/// (half over 0.5); blurred further by a Gaussian of σ 2 pixels, 20 measure under it, and of σ 2.5,
/// 28.
const SHARP_VARIANCE: f64 = 0.16;

/// How sharp the print at `at` is, 0 to 100: the variance of its Laplacian over that of its levels
/// (so that faint print is not taken for blurry print), at the recogniser's line height (so that a
/// large photo and a small one compare), against that of crisp print.
pub fn sharpness(image: &RgbImage, at: Bounds) -> u8 {
    if at.width < 3 || at.height < 3 {
        return 0;
    }
    let crop = imageops::crop_imm(image, at.x, at.y, at.width, at.height).to_image();
    let gray = imageops::grayscale(&crop);
    let width = (u64::from(at.width) * u64::from(SHARPNESS_HEIGHT) / u64::from(at.height))
        .clamp(3, 4096) as u32;
    let line = imageops::resize(&gray, width, SHARPNESS_HEIGHT, FilterType::Triangle);
    let at = |x: u32, y: u32| f64::from(line.get_pixel(x, y).0[0]);
    let (mut edges, mut levels) = (Moments::default(), Moments::default());
    for y in 1..SHARPNESS_HEIGHT - 1 {
        for x in 1..width - 1 {
            edges.add(at(x - 1, y) + at(x + 1, y) + at(x, y - 1) + at(x, y + 1) - 4.0 * at(x, y));
            levels.add(at(x, y));
        }
    }
    // Edges against contrast: faint print is not blurry print.
    let variance = edges.variance() / levels.variance().max(1.0);
    (100.0 * variance / SHARP_VARIANCE)
        .clamp(0.0, 100.0)
        .round() as u8
}

/// Count, sum and sum of squares of values, for their variance.
#[derive(Default)]
struct Moments(f64, f64, f64);

impl Moments {
    fn add(&mut self, value: f64) {
        self.0 += 1.0;
        self.1 += value;
        self.2 += value * value;
    }

    fn variance(&self) -> f64 {
        if self.0 == 0.0 {
            return 0.0;
        }
        self.2 / self.0 - (self.1 / self.0).powi(2)
    }
}

/// A run of digits as the picker takes it: as read, or with one doubtful digit replaced by its
/// runner-up.
struct Corrected {
    digits: String,
    /// The probability of the least certain digit.
    certainty: f32,
    /// The sum of every digit's log probability: the chance that all of them are right, were the
    /// recogniser's probabilities true and independent.
    log_probability: f32,
    /// Whether a digit was replaced.
    replaced: bool,
}

/// One doubtful digit taken as its runner-up, to make a run pass the Luhn check: the digit at
/// `at`, `digit` of probability `p`.
#[derive(Debug, Clone, Copy)]
struct Replaced {
    at: usize,
    digit: char,
    p: f32,
}

impl Corrected {
    /// `digits`, with `replaced` made.
    fn of(digits: &[&Glyph], replaced: Option<Replaced>) -> Self {
        let mut read: Vec<(&str, f32)> = digits
            .iter()
            .map(|glyph| (glyph.text.as_str(), glyph.confidence))
            .collect();
        let mut buffer = [0; 4];
        if let Some(Replaced { at, digit, p }) = replaced {
            read[at] = (digit.encode_utf8(&mut buffer), p);
        }
        Self {
            digits: read.iter().map(|(text, _)| *text).collect(),
            certainty: read.iter().map(|(_, p)| *p).fold(1.0, f32::min),
            log_probability: read
                .iter()
                .map(|(_, p)| p.max(f32::MIN_POSITIVE).ln())
                .sum(),
            replaced: replaced.is_some(),
        }
    }
}

/// The digits as read, or, when they fail the Luhn check, with one of the least certain digits
/// replaced by its runner-up so that they pass it.
fn corrected(digits: &[&Glyph]) -> Corrected {
    let read = Corrected::of(digits, None);
    if luhn_valid(&read.digits) {
        return read;
    }
    let mut doubtful: Vec<(usize, &Glyph, (char, f32))> = digits
        .iter()
        .enumerate()
        .filter(|(_, glyph)| glyph.confidence < DOUBTFUL)
        .filter_map(|(at, glyph)| Some((at, *glyph, glyph.runner_up?)))
        .collect();
    doubtful.sort_by(|a, b| a.1.confidence.total_cmp(&b.1.confidence));
    doubtful
        .into_iter()
        .take(CORRECTIONS_TRIED)
        .map(|(at, _, (digit, p))| Corrected::of(digits, Some(Replaced { at, digit, p })))
        .find(|replaced| luhn_valid(&replaced.digits))
        .unwrap_or(read)
}

/// Where one box of a row ends and the next begins, among the row's glyphs.
static BOX_EDGE: Glyph = Glyph {
    text: String::new(),
    confidence: 1.0,
    runner_up: None,
};

#[derive(Clone)]
struct Row<'a> {
    /// Its boxes' glyphs, `BOX_EDGE` between two boxes.
    glyphs: Vec<&'a Glyph>,
    height: f32,
    /// The boxes read, together.
    bounds: Bounds,
    /// The bands of the boxes read.
    bands: Vec<Strip>,
    /// Whether its (one) box's digits follow or precede a word.
    labelled: bool,
    /// Whether most of its boxes were read upside down.
    upside_down: bool,
    /// Whether it is several lines, one under another (see [`stacks`]).
    stacked: bool,
    /// Whether the row it is part of goes on past its end with another box (see [`spans`]).
    continued: bool,
}

impl<'a> Row<'a> {
    /// The row's glyphs, each box's stripped of the marks a crop's edges pick up (boxes follow one
    /// another as spaced groups do). Boxes less than half as tall as the row's tallest are specks,
    /// not print: joined, they can keep a look from settling and cost the later looks time. A box
    /// whose digits follow or precede a word (`TEL 021-6888`, `WIFI 8888 6684`) is a labelled
    /// figure, not a card number's group: it is never joined with other boxes. Boxes read upside
    /// down (most of them) are joined right to left, as their text runs.
    fn join(boxes: &[&'a TextLine]) -> Option<Self> {
        let height = boxes
            .iter()
            .map(|line| line.strip.thickness)
            .fold(0.0, f32::max);
        let upside_down = 2 * boxes.iter().filter(|line| line.upside_down).count() > boxes.len();
        let mut in_reading_order: Vec<&TextLine> = boxes.to_vec();
        if upside_down {
            in_reading_order.reverse();
        }
        let mut glyphs = Vec::new();
        let mut bounds: Option<Bounds> = None;
        let mut bands = Vec::new();
        let mut labelled = false;
        for line in in_reading_order
            .into_iter()
            .filter(|line| 2.0 * line.strip.thickness >= height)
        {
            let first = line.glyphs.iter().position(Glyph::is_digit);
            let last = line.glyphs.iter().rposition(Glyph::is_digit);
            if let (Some(first), Some(last)) = (first, last) {
                let marks = |glyphs: &[Glyph]| {
                    glyphs
                        .iter()
                        .filter(|glyph| !glyph.text.trim().is_empty())
                        .count()
                };
                labelled = marks(&line.glyphs[..first]) > 1 || marks(&line.glyphs[last + 1..]) > 1;
                if labelled && boxes.len() > 1 {
                    return None;
                }
                if !glyphs.is_empty() {
                    glyphs.push(&BOX_EDGE);
                }
                glyphs.extend(&line.glyphs[first..=last]);
                bounds = Some(bounds.map_or(line.bounds, |joined| joined.union(line.bounds)));
                bands.push(line.strip);
            }
        }
        Some(Self {
            glyphs,
            height,
            bounds: bounds?,
            bands,
            labelled,
            upside_down,
            stacked: false,
            continued: false,
        })
    }
}

/// How far below a line of digits the next line of a number printed in lines may start, in line
/// heights: portrait cards leave a quarter to a whole line between them.
const MAX_LINE_SPACING: f32 = 1.5;

/// How far from a line of digits, in its heights, the whole of the next or the last line of a
/// number printed in lines may reach: the widest spacing, then a line as tall as half again.
pub(super) const NEXT_LINE_REACH: f32 = MAX_LINE_SPACING + 1.5;

/// Whether `lower` continues `upper` as the next line of a number printed in lines: just below
/// it, as tall within half again, and under it (overlapping along it at least half the narrower).
/// Below and along are the lines' own directions, their longest box's: the lines of a card
/// photographed turned are as far apart across them as printed, where their axis-aligned boxes
/// overlap.
fn next_line(upper: &Row, lower: &Row) -> bool {
    let height = upper.height.max(lower.height);
    let angle = upper
        .bands
        .iter()
        .chain(&lower.bands)
        .max_by(|a, b| a.length.total_cmp(&b.length))
        .map_or(0.0, |band| band.angle);
    let (upper_along, upper_across) = upper.extent(angle);
    let (lower_along, lower_across) = lower.extent(angle);
    let spacing = lower_across.start - upper_across.end;
    let overlap = upper_along.end.min(lower_along.end) - upper_along.start.max(lower_along.start);
    let narrower = (upper_along.end - upper_along.start).min(lower_along.end - lower_along.start);
    (-0.5 * height..=MAX_LINE_SPACING * height).contains(&spacing)
        && height <= 1.5 * upper.height.min(lower.height)
        && overlap >= narrower / 2.0
}

impl Row<'_> {
    /// How far the row's bands reach along the direction `angle` and across it (downwards, as
    /// the image shows it): where the image's corner would be at 0.
    fn extent(&self, angle: f32) -> (Range<f32>, Range<f32>) {
        let (sin, cos) = angle.sin_cos();
        let mut along = f32::INFINITY..f32::NEG_INFINITY;
        let mut across = f32::INFINITY..f32::NEG_INFINITY;
        for band in &self.bands {
            let (band_sin, band_cos) = band.angle.sin_cos();
            // Each corner of the band: half its length to one end, half its thickness to a side.
            for (end, side) in [(-1.0, -1.0), (1.0, -1.0), (1.0, 1.0), (-1.0, 1.0)] {
                let (to_end, to_side) = (end * band.length / 2.0, side * band.thickness / 2.0);
                let x = band.centre.0 + to_end * band_cos - to_side * band_sin;
                let y = band.centre.1 + to_end * band_sin + to_side * band_cos;
                let (corner_along, corner_across) = (x * cos + y * sin, y * cos - x * sin);
                along = along.start.min(corner_along)..along.end.max(corner_along);
                across = across.start.min(corner_across)..across.end.max(corner_across);
            }
        }
        (along, across)
    }
}

/// Lines of digits printed one under another, as portrait cards print their numbers: every run
/// of two to four such lines among `parts` (the boxes of rows between their labelled figures),
/// each joined as [`Row::stacked`] joins them. A line under another is the part of its row that
/// is under it: its first boxes, when they end before the line above begins, are other print on
/// its row (a receipt beside the card); the first line is taken from each of its row's boxes on.
/// The picker takes what these give only when it reads as a number does.
fn stacks<'a>(parts: &[&[&'a TextLine]]) -> Vec<Row<'a>> {
    let mut lines: Vec<(Row<'a>, &[&'a TextLine])> = parts
        .iter()
        .filter_map(|boxes| Some((Row::join(boxes)?, *boxes)))
        .collect();
    lines.sort_by_key(|(row, _)| row.bounds.y);
    let mut stacks = Vec::new();
    for (at, (_, boxes)) in lines.iter().enumerate() {
        // A number's first line may share its row with print to its left, as its next lines may.
        for start in 0..boxes.len() {
            if let Some(first) = Row::join(&boxes[start..]) {
                stack_under(&lines, at, &mut vec![first], &mut stacks);
            }
        }
    }
    stacks
}

/// Adds to `stacks` every way `stack`, whose last line is on the row `lines[at]`, goes on with
/// lines under it, up to four lines in all: a line of other print under a number's line (a
/// receipt's, beside the card) does not keep its next line from following it.
fn stack_under<'a>(
    lines: &[(Row<'a>, &[&'a TextLine])],
    at: usize,
    stack: &mut Vec<Row<'a>>,
    stacks: &mut Vec<Row<'a>>,
) {
    if stack.len() == 4 {
        return;
    }
    for (next, (line, boxes)) in lines.iter().enumerate().skip(at + 1) {
        let Some(last) = stack.last() else { return };
        let begins = if line.upside_down {
            0
        } else {
            boxes
                .iter()
                .position(|b| b.bounds.x + b.bounds.width > last.bounds.x)
                .unwrap_or(boxes.len())
        };
        let under = match begins {
            0 => Some(line.clone()),
            _ => Row::join(&boxes[begins..]),
        };
        if let Some(under) = under
            && next_line(last, &under)
        {
            stack.push(under);
            stacks.extend(Row::stacked(stack));
            stack_under(lines, next, stack, stacks);
            stack.pop();
        }
    }
}

impl<'a> Row<'a> {
    /// `lines`, from the top down, as one row: in reading order, which is bottom to top when
    /// most of them were read upside down (the card is turned over), a box edge between lines as
    /// between groups; `None` for no line.
    fn stacked(lines: &[Row<'a>]) -> Option<Self> {
        let upside_down = 2 * lines.iter().filter(|line| line.upside_down).count() > lines.len();
        let mut in_reading_order: Vec<&Row<'a>> = lines.iter().collect();
        if upside_down {
            in_reading_order.reverse();
        }
        let mut glyphs = Vec::new();
        for line in in_reading_order {
            if !glyphs.is_empty() {
                glyphs.push(&BOX_EDGE);
            }
            glyphs.extend(&line.glyphs);
        }
        Some(Self {
            glyphs,
            height: lines.iter().map(|line| line.height).fold(0.0, f32::max),
            bounds: lines.iter().map(|line| line.bounds).reduce(Bounds::union)?,
            bands: lines
                .iter()
                .flat_map(|line| line.bands.iter().copied())
                .collect(),
            labelled: false,
            upside_down,
            stacked: true,
            continued: false,
        })
    }

    /// The row's digits, counted in reading order, of the box its stack was begun from: its first
    /// line's first box, which is read last when the card is turned over.
    fn begun_from(&self) -> Range<usize> {
        let boxes = || self.glyphs.split(|glyph| glyph.text.is_empty());
        let all = digit_count(&self.glyphs);
        if self.upside_down {
            all - boxes().next_back().map_or(0, digit_count)..all
        } else {
            0..boxes().next().map_or(0, digit_count)
        }
    }
}

/// The parts of a row between its labelled figures (`AL 128.850` beside a number's line): a
/// labelled figure is never joined with other boxes, and must not hide its neighbours.
fn unlabelled_parts<'r, 'a>(row: &'r [&'a TextLine]) -> impl Iterator<Item = &'r [&'a TextLine]> {
    row.split(|line| Row::join(&[*line]).is_some_and(|alone| alone.labelled))
        .filter(|part| !part.is_empty())
}

/// Every run of neighbouring boxes of a row, joined; each says whether the row goes on past its
/// end (in reading order) with a box clear of it, which a box read twice over is not.
fn spans<'a>(row: &[&'a TextLine]) -> Vec<Row<'a>> {
    (0..row.len())
        .flat_map(|start| (start + 1..=row.len()).map(move |end| (start, end)))
        .filter_map(|(start, end)| {
            let mut span = Row::join(&row[start..end])?;
            let (left, right) = (span.bounds.x, span.bounds.x + span.bounds.width);
            span.continued = if span.upside_down {
                row[..start]
                    .iter()
                    .any(|line| line.bounds.x + line.bounds.width <= left)
            } else {
                row[end..].iter().any(|line| line.bounds.x >= right)
            };
            Some(span)
        })
        .collect()
}

/// Joins boxes into rows, left to right: a box continues the row whose last box ends to its left,
/// on its line (within half a line of where the longer of the two boxes' band leads, so a tilted
/// number still forms one row) and close by (a number's groups are a space or two apart). Only
/// boxes that are mostly digits take part, so a stray mark read as a letter between two groups
/// does not split the number.
fn rows(lines: &[TextLine]) -> Vec<Vec<&TextLine>> {
    let mut sorted: Vec<&TextLine> = lines.iter().filter(|line| mostly_digits(line)).collect();
    sorted.sort_by_key(|line| line.bounds.x);
    let mut rows: Vec<Vec<&TextLine>> = Vec::new();
    for line in sorted {
        let continues = rows
            .iter_mut()
            .filter_map(|row| {
                let last = row.last()?;
                let (a, b) = (last.strip, line.strip);
                let slope = if a.length >= b.length {
                    a.slope()
                } else {
                    b.slope()
                };
                let offset = off_line(a.centre, slope, b.centre);
                let height = a.thickness.max(b.thickness);
                let gap = line.bounds.x as f32 - (last.bounds.x + last.bounds.width) as f32;
                (offset < height / 2.0 && gap < MAX_GAP * height).then_some((offset, row))
            })
            .min_by(|(a, _), (b, _)| a.total_cmp(b))
            .map(|(_, row)| row);
        match continues {
            Some(row) => row.push(line),
            None => rows.push(vec![line]),
        }
    }
    rows
}

/// How far `point` lies above or below the line through `through` that drops `slope` pixels per
/// pixel to the right, measured straight down.
fn off_line(through: (f32, f32), slope: f32, point: (f32, f32)) -> f32 {
    (point.1 - through.1 - (point.0 - through.0) * slope).abs()
}

fn mostly_digits(line: &TextLine) -> bool {
    let (digits, others) = line
        .glyphs
        .iter()
        .filter(|glyph| !glyph.text.trim().is_empty())
        .fold((0, 0), |(digits, others), glyph| {
            if glyph.is_digit() {
                (digits + 1, others)
            } else {
                (digits, others + 1)
            }
        });
    digits > 0 && digits >= 2 * others
}

/// A sequence of digits read on a row.
struct Run<'a> {
    digits: Vec<&'a Glyph>,
    /// How many of the row's digits come before its first.
    from: usize,
    /// How many digits each group read holds.
    groups: Vec<usize>,
    /// Whether it is whole groups cut from a longer run.
    cut: bool,
    /// Whether it runs across a mark read between digits (see [`speck`]).
    across_marks: bool,
}

/// A mark that a speck, a guilloche line or a hologram's edge beside a digit is read as, in a
/// number's group or between two (`8244 .8617:5982`).
fn speck(glyph: &&Glyph) -> bool {
    matches!(glyph.text.as_str(), "." | ":" | "," | ";" | "'" | "·")
}

/// The digit sequences of a row; spaces and dashes between groups do not break one. A run longer
/// than any card number (a receipt's order number read in one box with the number beside it) also
/// gives each of its runs of whole groups as long as a card number. Marks read between digits
/// ([`speck`]) break a run, and the runs across them are given too, marked so: the picker takes
/// one only when it reads as a number does.
fn digit_runs<'a>(glyphs: &[&'a Glyph]) -> Vec<Run<'a>> {
    // Boxes joined into a row are apart as groups are.
    let separator = |glyph: &&Glyph| matches!(glyph.text.as_str(), " " | "-" | "–" | "—" | "");
    let as_read = counted_parts(glyphs, |glyph| !(glyph.is_digit() || separator(glyph)))
        .map(|(from, run)| (from, run, false));
    // The same, across the marks read between digits: runs only these give.
    let across_marks = counted_parts(glyphs, |glyph| {
        !(glyph.is_digit() || separator(glyph) || speck(glyph))
    })
    .filter(|(_, run)| {
        let first = run.iter().position(|glyph| glyph.is_digit());
        let last = run.iter().rposition(|glyph| glyph.is_digit());
        matches!((first, last), (Some(first), Some(last)) if run[first..last].iter().any(speck))
    })
    .map(|(from, run)| (from, run, true));
    as_read
        .chain(across_marks)
        .flat_map(|(from, run, across_marks)| {
            let groups: Vec<&[&Glyph]> = run
                .split(|glyph| separator(glyph) || speck(glyph))
                .filter(|group| !group.is_empty())
                .collect();
            let sizes = |groups: &[&[&Glyph]]| groups.iter().map(|group| group.len()).collect();
            let whole = groups.concat();
            let mut runs = Vec::new();
            if whole.len() > *DIGITS.end() {
                let mut skipped = 0;
                for start in 0..groups.len() {
                    let mut length = 0;
                    for end in start + 1..=groups.len() {
                        length += groups[end - 1].len();
                        if length > *DIGITS.end() {
                            break;
                        }
                        if DIGITS.contains(&length) {
                            runs.push(Run {
                                digits: groups[start..end].concat(),
                                from: from + skipped,
                                groups: sizes(&groups[start..end]),
                                cut: true,
                                across_marks,
                            });
                        }
                    }
                    skipped += groups[start].len();
                }
            }
            runs.push(Run {
                digits: whole,
                from,
                groups: sizes(&groups),
                cut: false,
                across_marks,
            });
            runs
        })
        .filter(|run| !run.digits.is_empty())
        .collect()
}

/// How many of `glyphs` are digits.
fn digit_count(glyphs: &[&Glyph]) -> usize {
    glyphs.iter().filter(|glyph| glyph.is_digit()).count()
}

/// `glyphs` split where `breaks` (never at a digit), each part with how many digits come before it.
fn counted_parts<'g, 'a>(
    glyphs: &'g [&'a Glyph],
    breaks: impl Fn(&&'a Glyph) -> bool,
) -> impl Iterator<Item = (usize, &'g [&'a Glyph])> {
    let mut before = 0;
    glyphs.split(breaks).map(move |part| {
        let from = before;
        before += digit_count(part);
        (from, part)
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::providers::local::engine::Strip;

    /// A box whose every character was read with certainty.
    pub(in crate::providers::local) fn line(x: u32, y: u32, height: u32, text: &str) -> TextLine {
        let bounds = Bounds {
            x,
            y,
            width: 100,
            height,
        };
        TextLine {
            bounds,
            strip: Strip::level(bounds),
            upside_down: false,
            digits_read: None,
            glyphs: text
                .chars()
                .map(|c| Glyph {
                    text: c.to_string(),
                    confidence: 1.0,
                    runner_up: None,
                })
                .collect(),
        }
    }

    /// A level box 40 px high and `width` wide, every character read with certainty.
    fn level_line(x: u32, y: u32, width: u32, text: &str) -> TextLine {
        let mut line = line(x, y, 40, text);
        line.bounds.width = width;
        line.strip = Strip::level(line.bounds);
        line
    }

    /// A box at `x` on one row, every character read with certainty, read turned over.
    fn turned(x: u32, text: &str) -> TextLine {
        TextLine {
            upside_down: true,
            ..line(x, 50, 40, text)
        }
    }

    fn pick(lines: &[TextLine]) -> Option<Picked> {
        pick_number(lines, &BinTable::embedded().expect("the BIN table"))
    }

    #[test]
    fn a_second_reading_of_the_groups_is_taken_only_where_the_first_settles_nothing() {
        let bins = BinTable::embedded().expect("the BIN table");
        let groups = |texts: [&str; 4]| -> Vec<TextLine> {
            texts
                .iter()
                .zip(0u32..)
                .map(|(text, at)| line(100 + 120 * at, 50, 40, text))
                .collect()
        };
        let read_again = |mut lines: Vec<TextLine>, again: [&str; 4]| {
            for (line, text) in lines.iter_mut().zip(again) {
                line.digits_read = Some(line_glyphs(text));
            }
            lines
        };
        let number = |lines: &[TextLine]| {
            pick_number_read_twice(lines, &bins).map(|picked| picked.number.digits().to_owned())
        };
        // The first reading fails Luhn with two digits wrong; the second reads them right.
        let misread = read_again(
            groups(["6225", "8826", "3858", "5188"]),
            ["6225", "8826", "3358", "5168"],
        );
        assert_eq!(number(&misread).as_deref(), Some("6225882633585168"));
        // A settled first reading stands, whatever the second reads.
        let settled = read_again(
            groups(["6225", "8826", "3358", "5168"]),
            ["6225", "8826", "3858", "5188"],
        );
        assert_eq!(number(&settled).as_deref(), Some("6225882633585168"));
        // A second reading no more trusted than the first is not taken.
        let both_wrong = read_again(
            groups(["6225", "8826", "3858", "5188"]),
            ["6225", "8826", "3858", "5180"],
        );
        assert_eq!(
            number(&both_wrong),
            number(&groups(["6225", "8826", "3858", "5188"]))
        );
    }

    /// The glyphs of `text`, every one read with certainty.
    fn line_glyphs(text: &str) -> Vec<Glyph> {
        line(0, 0, 40, text).glyphs
    }

    /// `line`, with the digit at `at` doubtful and `runner_up` second.
    fn doubting(mut line: TextLine, at: usize, confidence: f32, runner_up: char) -> TextLine {
        line.glyphs[at].confidence = confidence;
        line.glyphs[at].runner_up = Some((runner_up, 1.0 - confidence));
        line
    }

    #[test]
    fn groups_of_a_tilted_number_are_joined_along_its_direction() {
        // Four groups 140 px apart on a line falling 8°: each next one 20 px lower, more than half
        // of even their boxes' 38 px height, so only the bands' direction says they are one row.
        let slope = 8f32.to_radians().tan();
        let lines: Vec<TextLine> = ["6222", "0202", "0011", "2345"]
            .iter()
            .enumerate()
            .map(|(i, group)| {
                let x = 100 + 140 * i as u32;
                let centre = (x as f32 + 50.0, 200.0 + 140.0 * i as f32 * slope);
                let mut line = line(x, (centre.1 - 19.0) as u32, 38, group);
                line.strip = Strip {
                    centre,
                    angle: 8f32.to_radians(),
                    length: 100.0,
                    thickness: 24.0,
                };
                line
            })
            .collect();
        let number = pick(&lines).expect("a number").number;
        assert_eq!(number.digits(), "6222020200112345");
        // Level, the same boxes are four rows.
        let level: Vec<TextLine> = lines
            .into_iter()
            .map(|line| TextLine {
                strip: Strip::level(line.bounds),
                ..line
            })
            .collect();
        assert_eq!(pick(&level), None);
    }

    #[test]
    fn the_lines_of_a_number_on_a_turned_card_are_one_under_another_across_their_direction() {
        // A portrait card turned 7° anticlockwise: its number's second line starts 48 px under
        // the first across the lines, 8 px clear of it, but rises to the right so far that its
        // axis-aligned box reaches more than half a line (20 px) up into the first line's box.
        let angle = (-7f32).to_radians();
        let (sin, cos) = angle.sin_cos();
        let band = |start: (f32, f32), text: &str| {
            let length = 22.0 * text.len() as f32;
            let thickness = 40.0;
            let centre = (start.0 + length / 2.0 * cos, start.1 + length / 2.0 * sin);
            let half_width = (length * cos + thickness * sin.abs()) / 2.0;
            let half_height = (length * sin.abs() + thickness * cos) / 2.0;
            let mut line = line(
                (centre.0 - half_width) as u32,
                (centre.1 - half_height) as u32,
                (2.0 * half_height) as u32,
                text,
            );
            line.bounds.width = (2.0 * half_width) as u32;
            line.strip = Strip {
                centre,
                angle,
                length,
                thickness,
            };
            line
        };
        let first = band((130.0, 310.0), "622202");
        let second = band((130.0 - 48.0 * sin, 310.0 + 48.0 * cos), "0200112345679");
        assert!(second.bounds.y + 20 < first.bounds.y + first.bounds.height);
        let number = pick(&[first, second]).expect("a number").number;
        assert_eq!(number.digits(), "6222020200112345679");
    }

    #[test]
    fn a_numbers_first_line_is_found_beside_other_print_on_its_row() {
        // A receipt's date left of a portrait card's first line, on its row: the card's second
        // line lies under the card's part of that row only, less than half its own length.
        let lines = [
            level_line(0, 100, 300, "2026-11-16"),
            level_line(320, 100, 100, "622202"),
            level_line(320, 150, 260, "0200112345679"),
        ];
        let number = pick(&lines).expect("a number").number;
        assert_eq!(number.digits(), "6222020200112345679");
    }

    #[test]
    fn other_print_just_under_a_numbers_first_line_does_not_keep_its_next_line_from_it() {
        // A receipt's date tucked under a portrait card's first line, higher than the card's
        // second line: each is a line under the first, and neither is the other's.
        let lines = [
            level_line(300, 100, 100, "622202"),
            level_line(150, 125, 200, "2026-11-15"),
            level_line(300, 148, 260, "0200112345679"),
        ];
        let number = pick(&lines).expect("a number").number;
        assert_eq!(number.digits(), "6222020200112345679");
    }

    #[test]
    fn a_number_printed_in_lines_is_read_top_to_bottom_or_turned_over_bottom_to_top() {
        let lines = [
            line(60, 470, 40, "0011 2345"),
            line(60, 400, 40, "6222 0202"),
            line(62, 540, 40, "679"),
            line(60, 700, 24, "ZHANG WEI"),
        ];
        let number = pick(&lines).expect("a number").number;
        assert_eq!(number.digits(), "6222020200112345679");
        // The card upside down: its first line is at the bottom, each line read turned over.
        let turned_over = [
            TextLine {
                upside_down: true,
                ..line(60, 540, 40, "6222 0202")
            },
            TextLine {
                upside_down: true,
                ..line(60, 470, 40, "0011 2345")
            },
            TextLine {
                upside_down: true,
                ..line(58, 400, 40, "679")
            },
        ];
        let number = pick(&turned_over).expect("a number").number;
        assert_eq!(number.digits(), "6222020200112345679");
    }

    #[test]
    fn a_line_under_a_number_is_the_part_of_its_row_under_it() {
        // A portrait card's `6228 4890 4326` over `8782 308`, and a receipt's date ending just
        // left of the second line, on its row: that row stacked whole reads `6228 4890 4326 2026
        // 11 …`, whose first 18 digits pass the Luhn check.
        let sized = |x, y, width, text| {
            let mut line = line(x, y, 34, text);
            line.bounds.width = width;
            line.strip = Strip::level(line.bounds);
            line
        };
        let lines = [
            sized(213, 383, 190, "6228 4890 4326"),
            sized(89, 428, 119, "2026-11-"),
            sized(215, 427, 114, "8782 308"),
        ];
        let number = pick(&lines).expect("a number").number;
        assert_eq!(number.digits(), "6228489043268782308");
    }

    #[test]
    fn a_number_beside_other_print_is_not_read_on_into_a_line_under_that_print() {
        // Hard 480124: a receipt's `8888 6655` left of a landscape card's number, on its row, and
        // the receipt's `128.480` under both. Stacked from the receipt's box, the row reads `8888
        // 6655 6258 0710 7451 3158 128`, whose last 19 digits pass the Luhn check; begun from the
        // number's box, it has no line under it.
        let lines = [
            level_line(0, 370, 125, "8888 6655"),
            level_line(190, 372, 370, "6258 0710 7451 3158"),
            level_line(0, 440, 160, "128.480"),
        ];
        let number = pick(&lines).expect("a number").number;
        assert_eq!(number.digits(), "6258071074513158");
    }

    #[test]
    fn a_stack_is_begun_from_its_first_lines_first_box_which_turned_over_is_read_last() {
        let begun_from = |upside_down| {
            let boxes = [
                line(0, 100, 40, "8888 6655"),
                line(150, 100, 40, "6222 0202"),
                line(150, 150, 40, "0011 2345 679"),
            ]
            .map(|line| TextLine {
                upside_down,
                ..line
            });
            let first = Row::join(&[&boxes[0], &boxes[1]]).expect("the first line");
            let next = Row::join(&[&boxes[2]]).expect("the next line");
            Row::stacked(&[first, next]).expect("a stack").begun_from()
        };
        assert_eq!(begun_from(false), 0..8);
        // Read bottom to top, each line right to left: `679 2345 0011`, `0202 6222`, `6655 8888`.
        assert_eq!(begun_from(true), 19..27);
    }

    #[test]
    fn a_labelled_figure_beside_a_numbers_line_does_not_hide_it() {
        // A receipt's total on the first line's row, left of it: never joined, and left out.
        let lines = [
            line(0, 400, 40, "AL 128.850"),
            line(150, 400, 40, "6222 0202"),
            line(150, 470, 40, "0011 2345"),
            line(150, 540, 40, "679"),
        ];
        let number = pick(&lines).expect("a number").number;
        assert_eq!(number.digits(), "6222020200112345679");
    }

    #[test]
    fn lines_one_under_another_that_do_not_read_as_a_number_are_not_one() {
        // A receipt's figures: 16 digits in groups, but of no issuer and failing Luhn.
        let receipt = [
            line(60, 400, 30, "2024 1120"),
            line(60, 440, 30, "8888 6684"),
        ];
        assert_eq!(pick(&receipt), None);
        // A number's lines too far apart, or not under one another, are not joined.
        let apart = [
            line(60, 400, 40, "6222 0202"),
            line(60, 560, 40, "0011 2345 678"),
        ];
        assert_eq!(pick(&apart), None);
        let aside = [
            line(60, 400, 40, "6222 0202"),
            line(300, 450, 40, "0011 2345 678"),
        ];
        assert_eq!(pick(&aside), None);
    }

    #[test]
    fn figures_after_a_word_are_never_joined_with_their_neighbours() {
        // Receipt lines side by side; joined, their digits would pass for a card number.
        let receipts = [
            line(100, 50, 24, "WIFI 8888 6684"),
            line(220, 50, 24, "WIFI 8888 6625"),
        ];
        assert_eq!(pick(&receipts), None);
        // A whole number beside a word still counts.
        let labelled = [line(100, 50, 24, "6222 0202 0011 2345 678 VISA")];
        let number = pick(&labelled).expect("a number").number;
        assert_eq!(number.digits(), "6222020200112345678");
    }

    #[test]
    fn groups_on_one_row_are_joined_in_reading_order() {
        let lines = [
            line(260, 101, 30, "：0011."),
            line(280, 98, 8, "三"),
            line(390, 110, 12, "5525"),
            line(10, 20, 12, "中国银行"),
            line(10, 100, 30, "6222"),
            line(370, 99, 30, "2345 678"),
            line(150, 100, 30, "0202"),
            line(10, 160, 12, "VALID THRU 12/30"),
        ];
        let number = pick(&lines).expect("a number").number;
        assert_eq!(number.digits(), "6222020200112345678");
    }

    #[test]
    fn a_tilted_number_still_forms_one_row() {
        // Each group sits higher than the one before; the first and last are a line apart.
        let lines = [
            line(670, 343, 49, "0269"),
            line(154, 374, 52, "6205"),
            line(499, 353, 51, "9257"),
            line(327, 366, 47, "2243"),
            line(380, 475, 33, "VALID THRU 08/32"),
        ];
        let number = pick(&lines).expect("a number").number;
        assert_eq!(number.digits(), "6205224392570269");
    }

    #[test]
    fn print_beside_the_card_on_the_numbers_row_is_left_out() {
        // A price on a receipt left of the card, on the same row as the number's groups: joined
        // whole, the row reads 21 digits.
        let mut lines = [
            line(0, 441, 42, "78.50"),
            line(224, 443, 42, "6013 8230"),
            line(441, 440, 38, "3184"),
            line(546, 436, 39, "4074721"),
        ];
        // As they were detected: the price runs to the card's edge.
        for (line, width) in lines.iter_mut().zip([200, 200, 92, 140]) {
            line.bounds.width = width;
        }
        let number = pick(&lines).expect("a number").number;
        assert_eq!(number.digits(), "6013823031844074721");
    }

    #[test]
    fn a_luhn_valid_number_wins_over_a_taller_invalid_one() {
        let lines = [
            line(10, 50, 40, "4111 1111 1111 1112"),
            line(10, 150, 20, "4111 1111 1111 1111"),
        ];
        assert_eq!(
            pick(&lines).expect("a number").number.digits(),
            "4111111111111111"
        );
    }

    #[test]
    fn a_doubtful_digit_is_replaced_by_its_runner_up_when_that_passes_luhn() {
        // 4111 1111 1111 1111 read with its fifth digit as a doubtful 2.
        let misread = doubting(line(10, 50, 40, "4111 2111 1111 1111"), 5, 0.6, '1');
        assert_eq!(
            pick(&[misread]).expect("a number").number.digits(),
            "4111111111111111"
        );
    }

    #[test]
    fn a_number_starting_as_an_issuers_cards_do_wins_over_a_taller_one_that_does_not() {
        // Both pass the Luhn check; 0356... is no issuer's (a stray mark read as a 0, say).
        let lines = [
            line(10, 50, 40, "0356 8330 2011 2342"),
            line(10, 150, 30, "6225 8800 1122 3345"),
        ];
        let picked = pick(&lines).expect("a number");
        assert_eq!(picked.number.digits(), "6225880011223345");
        assert_eq!(picked.issuer, Issuer::Bank);
        assert!(picked.settled());
        // Alone, the other is still read, but not settled: another look may do better.
        let stray = pick(&lines[..1]).expect("a number");
        assert_eq!(stray.issuer, Issuer::Unknown);
        assert!(!stray.settled());
        assert!(more_trusted(Some(&picked), Some(&stray)));
        assert!(more_trusted(Some(&stray), None));
        assert!(!more_trusted(None, Some(&stray)));
    }

    #[test]
    fn a_number_shorter_than_its_issuers_cards_is_not_settled() {
        // ICBC's 622202 cards have 19 digits: 16 of them passing the Luhn check are a number whose
        // last group was missed, as likely as not.
        let lines = [
            line(10, 50, 40, "6222 0202"),
            line(120, 52, 40, "0011 2347"),
            line(10, 150, 20, "2026-11-04"),
        ];
        let short = pick(&lines).expect("a number");
        assert!(short.luhn_valid && short.usual_length && short.short_for_issuer);
        assert!(short.may_go_on() && !short.settled());
        // All 19 read, or a bank whose cards have 16: settled.
        for read in ["6222 0202 0011 2345 679", "6225 8800 1122 3345"] {
            let whole = pick(&[line(10, 50, 40, read)]).expect("a number");
            assert!(!whole.short_for_issuer, "{read}");
            assert!(whole.settled() && !whole.may_go_on(), "{read}");
        }
        // A doubtful digit keeps it from being settled: the whole photo is looked at again.
        let doubted = pick(&[doubting(
            line(10, 50, 40, "6222 0202 0011 2347"),
            5,
            0.5,
            '8',
        )])
        .expect("a number");
        assert!(!doubted.settled());
    }

    #[test]
    fn a_rows_band_runs_past_its_ends_to_the_boxes_of_digits_on_its_line_within_reach() {
        // The first two groups found, the third missed, the fourth a box apart; a date below, and
        // digits on the row's line too far off to be its number's.
        let lines = vec![
            line(10, 50, 40, "6222 0202"),
            line(230, 50, 40, "2347"),
            line(600, 50, 40, "0001"),
            line(10, 150, 40, "2026 1104"),
        ];
        let (_, row) = digit_rows(&lines)[0];
        assert_eq!((row.x, row.width), (10, 100));
        let (band, upside_down) = number_band(&lines, row).expect("a band");
        // From the first box to the fourth group's, and a band's thickness past each.
        assert_eq!(
            band,
            Strip {
                centre: (170.0, 70.0),
                angle: 0.0,
                length: 400.0,
                thickness: 40.0,
            }
        );
        assert!(!upside_down);

        // A row read turned over is read so whole.
        let turned: Vec<TextLine> = lines
            .iter()
            .map(|line| TextLine {
                upside_down: true,
                ..line.clone()
            })
            .collect();
        assert_eq!(number_band(&turned, row), Some((band, true)));
        // No box of digits within the row: no band.
        let elsewhere = Bounds { y: 300, ..row };
        assert_eq!(number_band(&lines, elsewhere), None);
    }

    #[test]
    fn a_reading_of_an_unusual_length_is_not_settled_and_yields_to_one_of_a_usual_length() {
        // 18 digits passing the Luhn check, read with certainty: a 19-digit number with a digit
        // lost, as likely as not. ICBC's 622202 cards have 19.
        let short = pick(&[line(10, 50, 40, "622202 020011234569")]).expect("a number");
        assert!(short.luhn_valid);
        assert!(!short.usual_length);
        assert!(!short.settled());
        // Another look reads all 19, a little less surely: that reading is the one to trust.
        let whole = doubting(line(10, 50, 40, "622202 0200112345679"), 18, 0.85, '1');
        let whole = pick(&[whole]).expect("a number");
        assert!(whole.usual_length && whole.settled());
        assert!(more_trusted(Some(&whole), Some(&short)));
        assert!(!more_trusted(Some(&short), Some(&whole)));
        // Shanghai Bank's 620522 cards have 18 digits: that length is theirs, but a 19-digit
        // number with a digit lost reads so too, so the band past its end is read before it is
        // taken.
        let issued = pick(&[line(10, 50, 40, "620522 020011234566")]).expect("a number");
        assert!(issued.usual_length && issued.may_go_on() && !issued.settled());
    }

    #[test]
    fn a_reading_whose_row_goes_on_with_more_digits_is_not_settled() {
        // A 19-digit number's last group apart from the others: the first 16 digits pass the
        // Luhn check (one time in ten they do), all 19 read as one fail it.
        let mut lines = [
            line(100, 50, 40, "6225 8846 6352 3606"),
            line(300, 48, 40, "57"),
        ];
        lines[0].bounds.width = 190;
        lines[1].bounds.width = 30;
        let read = pick(&lines).expect("a number");
        assert_eq!(read.number.digits(), "6225884663523606");
        assert!(read.continued && read.may_go_on() && !read.settled());
        // The same 16 digits alone on their row are settled.
        let alone = pick(&lines[..1]).expect("a number");
        assert!(!alone.continued && alone.settled());
        // A box read twice over, overlapping the number's last, does not continue it.
        lines[1].bounds.x = 280;
        assert!(!pick(&lines).expect("a number").continued);
    }

    #[test]
    fn a_look_that_reads_a_numbers_last_group_too_is_trusted_over_one_that_missed_it() {
        // The first look's box ended before the last group: 16 digits, Luhn-valid by chance,
        // read surely. Another look reads all 19 with a little more doubt.
        let short = pick(&[line(10, 50, 40, "6226 0927 8644 4275")]).expect("a number");
        let whole = doubting(line(10, 50, 40, "6226 0927 8644 4275802"), 20, 0.85, '3');
        let whole = pick(&[whole]).expect("a number");
        assert!(short.luhn_valid && whole.luhn_valid);
        assert_eq!(short.rank(), whole.rank());
        assert!(short.certainty > whole.certainty);
        assert!(more_trusted(Some(&whole), Some(&short)));
        assert!(!more_trusted(Some(&short), Some(&whole)));
    }

    #[test]
    fn groups_read_upside_down_are_joined_right_to_left() {
        // A card lying upside down: its groups, each read turned over, stand last first.
        let lines = [
            turned(100, "5801"),
            turned(240, "8644"),
            turned(380, "0927"),
            turned(520, "6226"),
        ];
        let picked = pick(&lines).expect("a number");
        assert_eq!(picked.number.digits(), "6226092786445801");
        assert!(picked.luhn_valid);
    }

    #[test]
    fn a_dash_of_any_width_between_groups_separates_them() {
        for dash in ["-", "–", "—"] {
            let text = format!("6222 0202 0011{dash}2345");
            let picked = pick(&[line(10, 50, 40, &text)]).expect("a number");
            assert_eq!(picked.number.digits(), "6222020200112345", "{dash}");
            assert!(picked.bank_grouped, "{dash}");
        }
    }

    #[test]
    fn groups_read_as_no_bank_prints_them_are_not_settled() {
        for groups in [
            &[4, 4, 4, 4][..],
            &[8, 8],
            &[16],
            &[6, 13],
            &[4, 4, 4, 7],
            &[4, 4, 11],
            &[4, 4, 4, 4, 3],
            &[6, 12],
        ] {
            assert!(bank_grouped(groups), "{groups:?}");
        }
        for groups in [&[3, 13][..], &[5, 14], &[4, 4, 4, 3, 4], &[2, 4, 4, 6]] {
            assert!(!bank_grouped(groups), "{groups:?}");
        }
        // The box of 6-13's first group took in only its last three digits. The 16 digits left
        // pass Luhn and start as Mastercard's do; groups of 3 and 13 say something is missing.
        let cut = pick(&[line(100, 50, 40, "522"), line(210, 50, 40, "0283612145891")])
            .expect("a number");
        assert!(cut.luhn_valid && cut.issuer == Issuer::Network);
        assert!(!cut.bank_grouped && !cut.settled());
        let whole = pick(&[
            line(100, 50, 40, "620522"),
            line(210, 50, 40, "0283612145891"),
        ])
        .expect("a number");
        assert_eq!(whole.number.digits(), "6205220283612145891");
        assert!(whole.settled());
        assert!(more_trusted(Some(&whole), Some(&cut)));
    }

    #[test]
    fn how_a_reading_is_grouped_does_not_rank_it() {
        // Two looks: one reads 16 digits in a bank's groups, the other 19 in groups no bank
        // prints. Both pass Luhn and start as a bank's cards do: the longer is trusted more.
        let grouped = pick(&[line(10, 50, 40, "6222 0202 0011 2347")]).expect("a number");
        let longer = pick(&[line(10, 50, 40, "62122 60200112345679")]).expect("a number");
        assert!(grouped.bank_grouped && !longer.bank_grouped);
        assert!(grouped.luhn_valid && longer.luhn_valid);
        assert!(grouped.issuer == Issuer::Bank && longer.issuer == Issuer::Bank);
        assert!(more_trusted(Some(&longer), Some(&grouped)));
        assert!(!more_trusted(Some(&grouped), Some(&longer)));
    }

    #[test]
    fn a_reading_with_a_doubtful_digit_is_not_settled_and_a_correction_counts_its_runner_up() {
        let doubtful = doubting(line(10, 50, 40, "6222 0202 0011 2347"), 3, 0.6, '3');
        let picked = pick(&[doubtful]).expect("a number");
        assert!(picked.luhn_valid);
        assert_eq!(picked.certainty, 0.6);
        assert!(!picked.settled());
        // Its fifth digit misread as a doubtful 3, with the right 0 the runner-up at 0.3.
        let corrected = doubting(line(10, 50, 40, "6222 3202 0011 2347"), 5, 0.7, '0');
        let picked = pick(&[corrected]).expect("a number");
        assert_eq!(picked.number.digits(), "6222020200112347");
        assert!((picked.certainty - 0.3).abs() < 1e-6);
        assert!(!picked.settled());
    }

    #[test]
    fn a_number_read_with_certainty_is_kept_even_when_it_fails_luhn() {
        let certain = line(10, 50, 40, "6222 0202 0011 2345 670");
        assert_eq!(
            pick(&[certain]).expect("a number").number.digits(),
            "6222020200112345670"
        );
        // A doubtful digit whose runner-up does not pass Luhn either changes nothing.
        let doubtful = doubting(line(10, 50, 40, "6222 0202 0011 2345 670"), 0, 0.5, '8');
        assert_eq!(
            pick(&[doubtful]).expect("a number").number.digits(),
            "6222020200112345670"
        );
    }

    #[test]
    fn the_row_with_most_digits_is_where_a_number_read_in_part_is() {
        let lines = [
            line(10, 20, 12, "TEL 021-6888 1213"),
            line(10, 100, 30, "6205"),
            line(120, 100, 30, "2228"),
            line(10, 200, 20, "1234"),
        ];
        assert_eq!(pick(&lines), None);
        let (digits, bounds) = digit_rows(&lines)[0];
        assert_eq!(digits, 8);
        assert_eq!((bounds.x, bounds.y, bounds.width), (10, 100, 210));
        // One group is not yet a number's row.
        assert_eq!(digit_rows(&lines[3..]), []);
    }

    #[test]
    fn short_or_long_digit_runs_are_not_card_numbers() {
        let lines = [
            line(10, 10, 20, "12/30"),
            line(10, 60, 20, "95588 客服热线"),
            line(10, 110, 20, "12345678901234567890"),
        ];
        assert_eq!(pick(&lines), None);
    }

    #[test]
    fn letters_split_runs_and_separators_do_not() {
        let line = line(0, 0, 10, "No. 6222 0202-0011  2345x678 /");
        let glyphs: Vec<&Glyph> = line.glyphs.iter().collect();
        let runs: Vec<String> = digit_runs(&glyphs)
            .iter()
            .map(|run| run.digits.iter().map(|g| g.text.as_str()).collect())
            .collect();
        assert_eq!(runs, ["6222020200112345", "678"]);
    }

    #[test]
    fn a_run_longer_than_a_number_gives_each_of_its_runs_of_whole_groups_as_long_as_one() {
        let line = line(0, 0, 10, "20241128 6222 0202 0011 2345 678 9");
        let glyphs: Vec<&Glyph> = line.glyphs.iter().collect();
        // Each with how many digits come before it, and whether it was cut from the run.
        let runs: Vec<(String, usize, bool)> = digit_runs(&glyphs)
            .iter()
            .map(|run| {
                let digits = run.digits.iter().map(|g| g.text.as_str()).collect();
                (digits, run.from, run.cut)
            })
            .collect();
        let cut = |digits: &str, from| (digits.to_owned(), from, true);
        assert_eq!(
            runs,
            [
                cut("2024112862220202", 0),
                cut("6222020200112345", 8),
                cut("6222020200112345678", 8),
                cut("0202001123456789", 12),
                ("2024112862220202001123456789".to_owned(), 0, false),
            ]
        );
    }

    #[test]
    fn marks_read_between_digits_are_crossed_only_by_a_valid_number_of_a_known_issuer() {
        // Specks on the card's face beside its digits, read as `.` and `:`.
        let specked = line(10, 50, 30, "6225 8826 .3358:5168");
        let picked = pick(&[specked]).expect("a number");
        assert_eq!(picked.number.digits(), "6225882633585168");
        assert!(picked.luhn_valid && picked.issuer == Issuer::Bank);
        // Across a mark, digits that fail the Luhn check, or that no issuer's cards start with,
        // are figures (amounts, times), not a number.
        for figures in ["6225 8826 .3358:5167", "0216 8881 .2112:1113"] {
            assert_eq!(pick(&[line(10, 50, 30, figures)]), None, "{figures}");
        }
    }

    #[test]
    fn a_number_read_in_one_box_with_a_receipts_figures_is_found() {
        // The detector took a receipt's order number and the card's number, on one row, as one
        // box: 24 digits, no card number as a whole.
        let joined = line(10, 50, 30, "ORDER 20241128 6225 8826 3358 5168");
        let picked = pick(&[joined]).expect("a number");
        assert_eq!(picked.number.digits(), "6225882633585168");
        assert!(picked.settled());
        // Cut from a run, digits no issuer's cards start with are not taken for a number.
        let receipts = line(10, 50, 30, "ORDER 20241128 0216 8881 2112 1116");
        assert_eq!(pick(&[receipts]), None);
        // A run no longer than a card number is not cut up: a stray group stays a stray group.
        let stray = line(10, 50, 30, "8 6225 8826 3358 5168");
        let glyphs: Vec<&Glyph> = stray.glyphs.iter().collect();
        assert_eq!(digit_runs(&glyphs).len(), 1);
    }

    fn number_at(y: u32) -> Bounds {
        Bounds {
            x: 60,
            y,
            width: 600,
            height: 40,
        }
    }

    #[test]
    fn the_expiry_after_its_label_is_read_wherever_it_is() {
        let lines = [
            line(60, 100, 40, "6222 0202 0011 2345 678"),
            line(300, 400, 20, "VALID THRU 07/29"),
            line(60, 150, 20, "11/30"),
        ];
        assert_eq!(
            expiry(&lines, number_at(100)),
            Some(CardExpiry {
                month: 7,
                year: 2029
            })
        );
    }

    #[test]
    fn an_unlabelled_expiry_is_read_only_near_the_number() {
        let near = [line(300, 160, 20, "有 效 期 ：")];
        assert_eq!(expiry(&near, number_at(100)), None);
        let lines = [line(300, 160, 20, "12 / 31"), line(300, 700, 20, "05/27")];
        assert_eq!(
            expiry(&lines, number_at(100)),
            Some(CardExpiry {
                month: 12,
                year: 2031
            })
        );
        assert_eq!(expiry(&lines[1..], number_at(100)), None);
    }

    #[test]
    fn dates_and_impossible_months_are_not_expiries() {
        let lines = [
            line(60, 120, 20, "2026/11/24"),
            line(60, 130, 20, "VALID THRU 13/29"),
            line(60, 140, 20, "TEL 010/1234"),
        ];
        assert_eq!(expiry(&lines, number_at(100)), None);
        let long_year = [line(60, 120, 20, "GOOD THRU 03/2031")];
        assert_eq!(
            expiry(&long_year, number_at(100)).map(|expiry| expiry.year),
            Some(2031)
        );
    }

    #[test]
    fn blurred_print_measures_less_sharp_than_crisp_print() {
        // Black bars on white, like strokes of digits, 48 pixels high.
        let crisp = RgbImage::from_fn(400, 60, |x, y| {
            let ink = (x / 6) % 3 == 0 && (6..54).contains(&y);
            image::Rgb(if ink { [20, 20, 20] } else { [235, 235, 235] })
        });
        let at = Bounds {
            x: 0,
            y: 0,
            width: 400,
            height: 60,
        };
        let sharp = sharpness(&crisp, at);
        let soft = sharpness(&imageops::blur(&crisp, 3.0), at);
        assert!(sharp >= 90, "{sharp}");
        assert!(soft < 50, "{soft}");
        // Faint is not blurry: the same bars in low contrast measure as sharp.
        let faint = RgbImage::from_fn(400, 60, |x, y| {
            let ink = (x / 6) % 3 == 0 && (6..54).contains(&y);
            image::Rgb(if ink {
                [120, 120, 120]
            } else {
                [150, 150, 150]
            })
        });
        assert!(sharpness(&faint, at).abs_diff(sharp) <= 5);
    }
}
