//! Writes synthetic card photos to look at or to read with other engines:
//! `cargo run -p ocrgate-cardgen -- [--hard | --wild | --design] OUT_DIR [COUNT] [FIRST_SEED]`.
//! Each file is named `<seed>-<number>.jpg`; `--hard` draws the hard mode's photos, `--wild` the
//! wild mode's, `--design` the design mode's. `--qr SCENE` writes invoice title QR code images
//! instead, named `<seed>.png` or `<seed>.jpg` (`--help` lists the scenes). `--number-fonts DIR`
//! draws the numbers in a folder's fonts instead of the mode's own. `--positions` writes where
//! each photo's number is beside it, as `<seed>-<number>.txt` in ICDAR 2015's form.

use std::{path::PathBuf, process::ExitCode};

use clap::{
    ArgGroup, Parser,
    builder::{PossibleValuesParser, TypedValueParser},
};
use ocrgate_cardgen::{CardGenerator, QrScene};

/// Writes synthetic card photos, named `<seed>-<number>.jpg`, or invoice title QR code images,
/// named `<seed>.png` or `<seed>.jpg`.
#[derive(Debug, Parser)]
#[command(group(ArgGroup::new("mode").args(["hard", "wild", "design", "qr"])))]
struct Args {
    /// The hard mode's photos: perspective, clutter, glare, embossing, low JPEG quality.
    #[arg(long)]
    hard: bool,
    /// The wild mode's photos: hard ones drawn wider, in fonts the other modes never use.
    #[arg(long)]
    wild: bool,
    /// The design mode's photos: cards as banks design them.
    #[arg(long)]
    design: bool,
    /// Invoice title QR codes instead, in this scene.
    #[arg(
        long,
        value_name = "SCENE",
        value_parser = PossibleValuesParser::new(QrScene::ALL.map(QrScene::name)).try_map(scene)
    )]
    qr: Option<QrScene>,
    /// Draw the numbers in the fonts of this folder (each `.ttf` and `.otf` in it) instead of the
    /// mode's own (`scripts/fetch-fonts.sh --held-out` fills `target/fonts-held-out`).
    #[arg(long, value_name = "DIR")]
    number_fonts: Option<PathBuf>,
    /// Also write where each photo's number is, as `<seed>-<number>.txt` in ICDAR 2015's form:
    /// a line of the number a row, its corners in pixels in the order it reads, then its text as
    /// printed, groups apart (`x1,y1,x2,y2,x3,y3,x4,y4,6228  4845`).
    #[arg(long, conflicts_with = "qr")]
    positions: bool,
    /// Where to write them.
    out: PathBuf,
    /// How many.
    #[arg(default_value_t = 10)]
    count: u64,
    /// The first one's seed.
    #[arg(default_value_t = 0)]
    first_seed: u64,
}

fn scene(name: String) -> Result<QrScene, String> {
    QrScene::from_name(&name).ok_or_else(|| format!("no scene is called `{name}`"))
}

fn main() -> ExitCode {
    let Args {
        hard,
        wild,
        design,
        qr: scene,
        number_fonts,
        positions,
        out,
        count,
        first_seed: first,
    } = Args::parse();
    let generator = CardGenerator::new(&CardGenerator::default_fonts_dir()).and_then(|generator| {
        match &number_fonts {
            Some(dir) => generator.with_number_fonts(dir),
            None => Ok(generator),
        }
    });
    let generator = match generator {
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
        let card = if hard {
            generator.hard_card(seed)
        } else if wild {
            generator.wild_card(seed)
        } else if design {
            generator.design_card(seed)
        } else {
            generator.card(seed)
        };
        let path = out.join(format!("{seed}-{}.jpg", card.number));
        if let Err(err) = std::fs::write(&path, &card.jpeg) {
            eprintln!("cannot write {}: {err}", path.display());
            return ExitCode::FAILURE;
        }
        if positions {
            let path = path.with_extension("txt");
            if let Err(err) = std::fs::write(&path, card.positions()) {
                eprintln!("cannot write {}: {err}", path.display());
                return ExitCode::FAILURE;
            }
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
