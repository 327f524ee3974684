//! `ocrgate-qr-bench`: how often and how fast QR decoders find the invoice title's code in the
//! generator's images (ocrgate-cardgen's QR scenes), side by side in one process: the gateway's
//! own (`ocrgate::qr::texts`, rxing) and rqrr. Each takes the image file's bytes and returns the
//! texts it found; a read counts when the invoice title's text is among them. Pin the process to
//! one core (`taskset -c 0`) to compare per core. `--write DIR` also writes the images and
//! `expected.json` for `scripts/qr-bench.py` (zbar and OpenCV's WeChat decoder).

use std::{path::PathBuf, time::Instant};

use clap::Parser;
use hdrhistogram::Histogram;
use ocrgate_cardgen::{CardGenerator, QrScene};

#[derive(Debug, Parser)]
#[command(about = "QR decoders side by side on generated invoice title images")]
struct Args {
    /// Scenes to read (screenshot, screen-photo, paper, small, several); all of them when none.
    #[arg(long = "set")]
    sets: Vec<String>,
    #[arg(long, default_value_t = 0)]
    from: u64,
    #[arg(long, default_value_t = 100)]
    count: u64,
    /// Fonts for the generator (scripts/fetch-fonts.sh).
    #[arg(long)]
    fonts: Option<PathBuf>,
    /// Print figures only, never a seed.
    #[arg(long)]
    held_out: bool,
    /// Also write the images, and `expected.json` naming each one's invoice title text, here.
    #[arg(long)]
    write: Option<PathBuf>,
}

type Decoder = fn(&[u8]) -> Vec<String>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let generator = CardGenerator::new(
        &args
            .fonts
            .clone()
            .unwrap_or_else(CardGenerator::default_fonts_dir),
    )?;
    let scenes: Vec<QrScene> = if args.sets.is_empty() {
        QrScene::ALL.to_vec()
    } else {
        args.sets
            .iter()
            .map(|name| QrScene::from_name(name).ok_or(format!("no scene {name}")))
            .collect::<Result<_, _>>()?
    };
    let decoders: [(&str, Decoder); 2] = [("ocrgate", ocrgate_texts), ("rqrr", rqrr_texts)];
    let mut expected = serde_json::Map::new();
    println!(
        "{:<13} {:>6}  {}",
        "set",
        "images",
        decoders
            .map(|(name, _)| format!("{name:>9} {:>7} {:>7}", "p50", "p95"))
            .join("  ")
    );
    for scene in scenes {
        let images: Vec<_> = (args.from..args.from + args.count)
            .map(|seed| generator.qr_image(scene, seed))
            .collect();
        if let Some(dir) = &args.write {
            let dir = dir.join(scene.name());
            std::fs::create_dir_all(&dir)?;
            for image in &images {
                let name = format!("{}-{}", scene.name(), image.seed);
                std::fs::write(dir.join(&name), &image.bytes)?;
                expected.insert(
                    format!("{}/{name}", scene.name()),
                    image.text.clone().into(),
                );
            }
        }
        let mut row = format!("{:<13} {:>6}", scene.name(), images.len());
        for (name, decode) in decoders {
            let mut latency = Histogram::<u64>::new(3)?;
            let mut read = 0;
            for image in &images {
                let started = Instant::now();
                let texts = decode(&image.bytes);
                latency.record(started.elapsed().as_micros() as u64)?;
                if texts.contains(&image.text) {
                    read += 1;
                } else if !args.held_out {
                    eprintln!(
                        "{name} missed {} seed {} ({} found)",
                        scene,
                        image.seed,
                        texts.len()
                    );
                }
            }
            row += &format!(
                "  {:>8.1}% {:>5}ms {:>5}ms",
                100.0 * f64::from(read) / images.len() as f64,
                latency.value_at_quantile(0.5) / 1000,
                latency.value_at_quantile(0.95) / 1000
            );
        }
        println!("{row}");
    }
    if let Some(dir) = &args.write {
        std::fs::write(
            dir.join("expected.json"),
            serde_json::to_vec_pretty(&expected)?,
        )?;
    }
    Ok(())
}

fn ocrgate_texts(bytes: &[u8]) -> Vec<String> {
    ocrgate::qr::texts(bytes, ocrgate::qr::MAX_PIXELS).unwrap_or_default()
}

fn rqrr_texts(bytes: &[u8]) -> Vec<String> {
    let Ok(image) = image::load_from_memory(bytes) else {
        return Vec::new();
    };
    let mut prepared = rqrr::PreparedImage::prepare(image.to_luma8());
    prepared
        .detect_grids()
        .into_iter()
        .filter_map(|grid| grid.decode().ok().map(|(_, text)| text))
        .collect()
}
