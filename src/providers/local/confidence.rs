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
            // A prefix some network or bank issues, then a bank's on top: each can only add
            // trust, which `scripts/calibrate.py` holds the fit to.
            flag(self.issuer != Issuer::Unknown),
            flag(self.issuer == Issuer::Bank),
            flag(self.usual_length),
            flag(self.bank_grouped),
            flag(self.short_for_issuer),
            flag(self.corrected),
            flag(self.settled),
            flag(self.settled && self.looks == 1),
            flag(self.agreeing > 0),
            // Few banks issue 17 or 18 digits: such a reading is more often a 19-digit number
            // with a digit lost, passing the Luhn check by chance.
            flag(!matches!(self.digits, 16 | 19)),
        ]
    }

    /// The chance, from 0 to 1, that the number read is exactly right.
    pub fn confidence(&self) -> f32 {
        CALIBRATED.confidence(&self.features())
    }
}

/// How many features [`Evidence::features`] gives.
pub const FEATURES: usize = 13;

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
    "issuer_known",
    "issuer_bank",
    "usual_length",
    "bank_grouped",
    "short_for_issuer",
    "corrected",
    "settled",
    "settled_first_look",
    "agreeing",
    "uncommon_length",
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

/// Fitted by `scripts/calibrate.py` (ridge 1 on standardised features, the weights of what can only
/// speak for a reading or only against it held to that sign) on 2,028 readings that
/// `ocrgate-ocr-bench --evidence` wrote of the generator's cards as drawn since each number's
/// length is its issuer's, for calibration seeds no rule of the reader was tuned on or looked at
/// one by one: standard 10000-10299, hard 10000-10599, wild 10000-10799 and design 10000-10399
/// (87 of the readings wrong; photos without a reading give no row). `agreeing` is held at 0:
/// those readings would have it count against a reading. A fourteenth feature of the fit, digits
/// read just past a number shorter than its issuer's cards, was 0 in every reading and weighed 0;
/// it went with the pass that read them (`past_end`). BENCHMARKS.md, "Confidence" and "The
/// model fitted again, on numbers as banks issue them", has the reliability tables of held-out
/// seeds.
const CALIBRATED: Weights = Weights {
    bias: -12.6365,
    weights: [
        0.1607,  // certainty_logit
        1.1196,  // log_probability
        6.2271,  // luhn_valid
        0.6907,  // issuer_known
        5.7109,  // issuer_bank
        1.2924,  // usual_length
        1.5433,  // bank_grouped
        -5.2660, // short_for_issuer
        0.9710,  // corrected
        4.1829,  // settled
        0.8997,  // settled_first_look
        0.0000,  // agreeing
        -1.2924, // uncommon_length
    ],
};

#[cfg(test)]
mod tests {
    use super::*;

    /// A 16-digit reading of a bank's prefix, settled on the first look.
    fn settled() -> Evidence {
        Evidence {
            certainty: 0.99,
            log_probability: -0.05,
            digits: 16,
            luhn_valid: true,
            issuer: Issuer::Bank,
            usual_length: true,
            bank_grouped: true,
            short_for_issuer: false,
            corrected: false,
            settled: true,
            looks: 1,
            agreeing: 0,
        }
    }

    /// The same reading, unsettled after three looks: unsure enough that no confidence is held at
    /// the bounds.
    fn unsure() -> Evidence {
        Evidence {
            certainty: 0.6,
            log_probability: -2.0,
            settled: false,
            looks: 3,
            ..settled()
        }
    }

    #[test]
    fn a_settled_reading_is_trusted_and_one_failing_luhn_with_doubtful_digits_is_not() {
        assert!(settled().confidence() > 0.99, "{}", settled().confidence());
        let doubtful = Evidence {
            certainty: 0.4,
            log_probability: -3.0,
            luhn_valid: false,
            settled: false,
            looks: 4,
            ..settled()
        };
        assert!(doubtful.confidence() < 0.1, "{}", doubtful.confidence());
    }

    #[test]
    fn confidence_grows_with_the_digits_certainty_and_never_falls_for_looks_that_agree() {
        let unsettled = Evidence {
            settled: false,
            looks: 4,
            certainty: 0.5,
            log_probability: -2.0,
            ..settled()
        };
        let surer = Evidence {
            certainty: 0.7,
            log_probability: -1.0,
            ..unsettled
        };
        let agreed = Evidence {
            agreeing: 1,
            ..unsettled
        };
        assert!(surer.confidence() > unsettled.confidence());
        // Held at 0 by the fit when the readings would have it count against a reading.
        assert!(agreed.confidence() >= unsettled.confidence());
    }

    #[test]
    fn a_prefix_nobody_issues_is_never_trusted_above_a_networks_nor_a_networks_above_a_banks() {
        let unsure = unsure();
        let of = |issuer| Evidence { issuer, ..unsure }.confidence();
        let (unknown, network, bank) = (of(Issuer::Unknown), of(Issuer::Network), of(Issuer::Bank));
        assert!(
            unknown > LEAST as f32 && bank < MOST as f32,
            "{unknown} {bank}"
        );
        assert!(
            unknown <= network,
            "no issuer {unknown}, a network {network}"
        );
        assert!(network < bank, "a network {network}, a bank {bank}");
    }

    #[test]
    fn a_reading_shorter_than_its_issuers_cards_is_trusted_less_than_one_as_long() {
        // Its prefix's bank issues longer numbers: most often a group or a digit was missed.
        let unsure = unsure();
        let short = Evidence {
            short_for_issuer: true,
            ..unsure
        };
        assert!(
            short.confidence() < unsure.confidence(),
            "short {}, as long as its issuer's {}",
            short.confidence(),
            unsure.confidence()
        );
    }

    #[test]
    fn confidence_stays_inside_what_the_calibration_can_show() {
        let certain = Evidence {
            certainty: 1.0,
            log_probability: 0.0,
            agreeing: 3,
            ..settled()
        };
        assert_eq!(certain.confidence(), MOST as f32);
        let hopeless = Evidence {
            certainty: 0.0,
            log_probability: f32::NEG_INFINITY,
            luhn_valid: false,
            issuer: Issuer::Unknown,
            usual_length: false,
            bank_grouped: false,
            settled: false,
            ..settled()
        };
        assert_eq!(hopeless.confidence(), LEAST as f32);
    }
}
