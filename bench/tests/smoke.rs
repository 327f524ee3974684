//! The benchmark command runs end to end against the real gateway binary: a short run, so that it
//! keeps working. Its figures are not judged (timed tests on shared machines only measure noise);
//! the command itself fails when a call fails or the stampede fetches more than one token.

use std::{path::PathBuf, process::Command};

/// The `ocrgate` binary next to this package's binary, built first if this package is tested on
/// its own.
fn gateway_binary() -> PathBuf {
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_ocrgate-bench"));
    let gateway = bench.with_file_name(format!("ocrgate{}", std::env::consts::EXE_SUFFIX));
    if !gateway.exists() {
        let built = Command::new(env!("CARGO"))
            .args(["build", "--bin", "ocrgate", "--package", "ocrgate"])
            .status()
            .expect("cargo runs");
        assert!(built.success(), "cargo build of the gateway failed");
    }
    gateway
}

/// Runs a short benchmark (0.3 s a cell, one floor round of 4 clients) with `args`, expects it to
/// succeed and returns what it printed.
fn run_bench(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_ocrgate-bench"))
        .arg("--gateway")
        .arg(gateway_binary())
        .args(["--passthrough", env!("CARGO_BIN_EXE_ocrgate-passthrough")])
        .args(["--seconds", "0.3"])
        .args(["--floor-rounds", "1", "--floor-concurrency", "4"])
        .args(args)
        .output()
        .expect("the benchmark starts");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "the benchmark failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The figure after `line` in `stdout` is a ratio above zero.
fn assert_positive_ratio(stdout: &str, line: &str) {
    let ratio: f64 = stdout
        .lines()
        .find_map(|text| text.strip_prefix(line))
        .unwrap_or_else(|| panic!("no `{line}` line in:\n{stdout}"))
        .parse()
        .expect("the ratio is a number");
    assert!(ratio > 0.0, "{line}{ratio}");
}

#[test]
fn a_short_run_prints_every_headline_figure() {
    let stdout = run_bench(&["--concurrency", "1,4", "--stampede", "50", "--uploads", "4"]);
    for rpc in ["RecognizeBankCard", "ParseInvoiceTitle"] {
        for concurrency in [1, 4] {
            assert_positive_ratio(
                &stdout,
                &format!("ratio throughput gateway/direct {rpc} c={concurrency}: "),
            );
            assert!(
                stdout.contains(&format!("added latency p50 {rpc} c={concurrency}: ")),
                "{stdout}"
            );
        }
        // The floor: the gateway against the passthrough, driven by h2load.
        for label in ["gateway", "gateway with API keys"] {
            assert_positive_ratio(
                &stdout,
                &format!("ratio throughput {label}/passthrough {rpc} c=4: "),
            );
        }
    }
    assert!(
        stdout.contains("stampede token fetches c=50: 1\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("this build "),
        "no flood table in:\n{stdout}"
    );
    // "memory: gateway peak RSS 55.4 MiB with 4 x 10 MiB photos in flight (idle 12.7 MiB; …"
    let memory = stdout
        .lines()
        .find_map(|text| text.strip_prefix("memory: gateway peak RSS "))
        .unwrap_or_else(|| panic!("no memory line in:\n{stdout}"));
    let figure = |text: &str| -> f64 {
        text.split_whitespace()
            .next()
            .and_then(|number| number.parse().ok())
            .unwrap_or_else(|| panic!("no figure at the start of `{text}`"))
    };
    let peak = figure(memory);
    let idle = figure(memory.split_once("(idle ").expect("an idle figure").1);
    // Four 10 MiB photos were held in the gateway at its peak.
    assert!(peak - idle >= 38.0, "peak {peak} MiB, idle {idle} MiB");
    // "downscale: a 10.0 MiB 4000x2800 photo to a 1391765 byte 2948x2063 JPEG for WeChat: …"
    let downscale = stdout
        .lines()
        .find_map(|text| text.strip_prefix("downscale: a 10.0 MiB 4000x2800 photo to a "))
        .unwrap_or_else(|| panic!("no downscale line in:\n{stdout}"));
    assert!(figure(downscale) <= 2_000_000.0, "{downscale}");
}

#[test]
fn the_floor_alone_prints_its_ratios_and_nothing_else() {
    let stdout = run_bench(&["--floor-only"]);
    for rpc in ["RecognizeBankCard", "ParseInvoiceTitle"] {
        for label in ["gateway", "gateway with API keys"] {
            assert_positive_ratio(
                &stdout,
                &format!("ratio throughput {label}/passthrough {rpc} c=4: "),
            );
        }
    }
    assert!(!stdout.contains("gateway/direct"), "{stdout}");
    assert!(!stdout.contains("stampede"), "{stdout}");
}

#[test]
fn the_flood_alone_measures_every_call_in_every_condition_beside_a_baseline() {
    let gateway = gateway_binary();
    let stdout = run_bench(&[
        "--flood-only",
        "--flood-baseline",
        gateway.to_str().expect("a UTF-8 path"),
    ]);
    let baseline = gateway.display().to_string();
    for name in [baseline.as_str(), "this build"] {
        for condition in ["quiet", "flood by another caller", "anonymous flood"] {
            for call in [
                "card, own API key",
                "title, own API key",
                "title, anonymous",
                "health check",
            ] {
                let row = stdout.lines().find(|line| {
                    line.starts_with(name) && line.contains(condition) && line.contains(call)
                });
                assert!(
                    row.is_some(),
                    "no row for {name}, {condition}, {call}:\n{stdout}"
                );
            }
        }
    }
    assert!(!stdout.contains("stampede"), "{stdout}");
}
