//! What the benchmark commands share.

/// How well the answers' confidences match how often they were right: for each tenth of the
/// range, how many answers fell in it and the share of them that was right; the expected
/// calibration error (the gap between the two, weighted by count); and, for a few thresholds,
/// the share right among answers at or above it and the wrong answers there.
pub fn print_reliability(answers: &[(f32, bool)]) {
    const BINS: usize = 10;
    let mut bins = [(0u64, 0u64, 0f64); BINS];
    for &(confidence, right) in answers {
        let bin = ((confidence * BINS as f32) as usize).min(BINS - 1);
        bins[bin].0 += 1;
        bins[bin].1 += u64::from(right);
        bins[bin].2 += f64::from(confidence);
    }
    println!("confidence reliability ({} answers):", answers.len());
    println!("  bin        count  right  mean conf");
    let mut ece = 0.0;
    for (i, &(count, right, sum)) in bins.iter().enumerate() {
        if count == 0 {
            continue;
        }
        let share = right as f64 / count as f64;
        let mean = sum / count as f64;
        ece += (share - mean).abs() * count as f64 / answers.len().max(1) as f64;
        println!(
            "  {:.1}-{:.1}  {count:>6}  {:5.1}%  {mean:.3}",
            i as f64 / BINS as f64,
            (i + 1) as f64 / BINS as f64,
            100.0 * share
        );
    }
    println!("  expected calibration error: {ece:.4}");
    for threshold in [0.5, 0.8, 0.9, 0.95, 0.99] {
        let above: Vec<bool> = answers
            .iter()
            .filter(|(confidence, _)| *confidence >= threshold)
            .map(|(_, right)| *right)
            .collect();
        let right = above.iter().filter(|right| **right).count();
        println!(
            "  confidence >= {threshold:.2}: {} answers, {:.1}% right, {} wrong",
            above.len(),
            100.0 * right as f64 / above.len().max(1) as f64,
            above.len() - right
        );
    }
}
