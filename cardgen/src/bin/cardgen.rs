//! Writes synthetic card photos to look at or to read with other engines:
//! `cargo run -p ocrgate-cardgen -- [--hard | --wild | --design] OUT_DIR [COUNT] [FIRST_SEED]`.
//! Each file is named `<seed>-<number>.jpg`; `--hard` draws the hard mode's photos, `--wild` the
//! wild mode's, `--design` the design mode's. `--qr SCENE` (screenshot, screen-photo, paper, small,
//! several) writes invoice title QR code images instead, named `<seed>.png` or `<seed>.jpg`.

use std::{path::PathBuf, process::ExitCode};

use ocrgate_cardgen::{CardGenerator, QrScene};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1).peekable();
    let mode = args
        .next_if(|arg| ["--hard", "--wild", "--design", "--qr"].contains(&arg.as_str()))
        .unwrap_or_default();
    let scene = if mode == "--qr" {
        match args.next().as_deref().and_then(QrScene::from_name) {
            Some(scene) => Some(scene),
            None => {
                eprintln!("--qr takes a scene: screenshot, screen-photo, paper, small or several");
                return ExitCode::from(2);
            }
        }
    } else {
        None
    };
    let Some(out) = args.next().map(PathBuf::from) else {
        eprintln!(
            "usage: cardgen [--hard | --wild | --design | --qr SCENE] OUT_DIR [COUNT] [FIRST_SEED]"
        );
        return ExitCode::from(2);
    };
    let count: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(10);
    let first: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    let generator = match CardGenerator::new(&CardGenerator::default_fonts_dir()) {
        Ok(generator) => generator,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(err) = std::fs::create_dir_all(&out) {
        eprintln!("cannot create {}: {err}", out.display());
        return ExitCode::FAILURE;
    }
    for seed in first..first + count {
        if let Some(scene) = scene {
            let image = generator.qr_image(scene, seed);
            let extension = if image.bytes.starts_with(b"\x89PNG") {
                "png"
            } else {
                "jpg"
            };
            let path = out.join(format!("{seed}.{extension}"));
            if let Err(err) = std::fs::write(&path, &image.bytes) {
                eprintln!("cannot write {}: {err}", path.display());
                return ExitCode::FAILURE;
            }
            println!("{} {} codes", path.display(), 1 + image.others.len());
            continue;
        }
        let card = match mode.as_str() {
            "--hard" => generator.hard_card(seed),
            "--wild" => generator.wild_card(seed),
            "--design" => generator.design_card(seed),
            _ => generator.card(seed),
        };
        let path = out.join(format!("{seed}-{}.jpg", card.number));
        if let Err(err) = std::fs::write(&path, &card.jpeg) {
            eprintln!("cannot write {}: {err}", path.display());
            return ExitCode::FAILURE;
        }
        println!(
            "{} {:?} {} hard={} {}",
            path.display(),
            card.grouping,
            card.font,
            card.hard,
            card.features.join(",")
        );
    }
    ExitCode::SUCCESS
}
