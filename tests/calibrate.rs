//! `scripts/calibrate.py`, run as the README says, on evidence files written with the reader's
//! own feature names: it fits the confidence model and holds each weight whose sign is known.

use std::{fmt::Write as _, path::Path, process::Command};

use ocrgate::providers::local::FEATURE_NAMES;

/// One reading's features, by name; the rest 0.
fn features(set: &[(&str, f64)]) -> Vec<f64> {
    FEATURE_NAMES
        .iter()
        .map(|name| {
            set.iter()
                .find(|(feature, _)| feature == name)
                .map_or(0.0, |&(_, value)| value)
        })
        .collect()
}

/// Evidence as `ocrgate-ocr-bench --evidence` writes it: readings of a bank's prefix, mostly right
/// and surer when right; of no issuer's prefix, half right; and, when `networks` is set, of a
/// network's prefix, all wrong, which a free fit would take to weigh a known issuer against a
/// reading.
fn evidence(networks: bool) -> String {
    let mut csv = format!("set,seed,right,confidence,{}\n", FEATURE_NAMES.join(","));
    let mut row = |seed: usize, right: bool, features: Vec<f64>| {
        let features: Vec<String> = features.iter().map(|x| format!("{x:.6}")).collect();
        let _ = writeln!(
            csv,
            "wild,{seed},{},0.5,{}",
            u8::from(right),
            features.join(",")
        );
    };
    for seed in 0..240 {
        let right = seed % 8 != 0;
        let certainty = if right { 2.0 } else { 0.0 } + (seed % 5) as f64;
        let bank = [
            ("certainty_logit", certainty),
            ("luhn_valid", 1.0),
            ("issuer_known", 1.0),
            ("issuer_bank", 1.0),
        ];
        row(seed, right, features(&bank));
    }
    for seed in 240..280 {
        let certainty = 2.0 + (seed % 5) as f64;
        let unknown = [("certainty_logit", certainty), ("luhn_valid", 1.0)];
        row(seed, seed % 2 == 0, features(&unknown));
    }
    if networks {
        for seed in 280..320 {
            let certainty = 2.0 + (seed % 5) as f64;
            let network = [
                ("certainty_logit", certainty),
                ("luhn_valid", 1.0),
                ("issuer_known", 1.0),
            ];
            row(seed, false, features(&network));
        }
    }
    csv
}

/// What `scripts/calibrate.py` prints for `csv`.
fn calibrate(csv: &str) -> String {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("evidence.csv");
    std::fs::write(&file, csv).expect("the evidence written");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/calibrate.py");
    let output = Command::new("python3")
        .arg(script)
        .arg(&file)
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8")
}

/// The weight printed for `feature`.
fn weight(printed: &str, feature: &str) -> f64 {
    printed
        .lines()
        .find(|line| line.trim_end().ends_with(&format!("// {feature}")))
        .and_then(|line| line.trim().split(',').next())
        .and_then(|weight| weight.parse().ok())
        .unwrap_or_else(|| panic!("no weight for {feature} in\n{printed}"))
}

#[test]
fn a_known_issuer_the_readings_would_weigh_against_a_reading_is_held_at_zero() {
    let printed = calibrate(&evidence(true));
    assert!(
        printed.contains("held at 0, the readings pulling it against its sign: issuer_known"),
        "{printed}"
    );
    assert_eq!(weight(&printed, "issuer_known"), 0.0, "{printed}");
    assert!(weight(&printed, "issuer_bank") > 0.0, "{printed}");
    assert!(weight(&printed, "certainty_logit") > 0.0, "{printed}");
    assert!(printed.contains("const CALIBRATED: Weights"), "{printed}");
}

#[test]
fn readings_that_bear_every_sign_out_are_fitted_freely() {
    let printed = calibrate(&evidence(false));
    assert!(!printed.contains("held at 0"), "{printed}");
    assert!(weight(&printed, "issuer_known") > 0.0, "{printed}");
    assert!(weight(&printed, "issuer_bank") > 0.0, "{printed}");
}
