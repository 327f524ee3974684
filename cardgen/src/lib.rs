//! Synthetic bank card photos whose numbers are known, to test and measure OCR providers.
//!
//! [`CardGenerator::card`] renders card `seed` deterministically: a card-like face (gradient,
//! shapes, chip, bank name, expiry, holder), the number in 4-4-4-4, 4-4-4-4-3 or 6-13 groups with
//! embossed shading in one of several fonts, then the card on a table photographed a little off
//! (rotation, perspective), with blur, noise and JPEG artefacts. About one card in eight is a hard
//! case: low contrast, more blur, a smaller number or a stronger tilt.
//! [`CardGenerator::hard_card`] photographs cards as phones do, among clutter;
//! [`CardGenerator::wild_card`] draws such photos from wider ranges, in fonts no other mode uses,
//! to measure a reader on what it was not tuned on.
//!
//! [`CardGenerator::design_card`] draws cards as banks design them (guilloche, speckle,
//! holograms, tone-on-tone and foil print, brand marks anywhere, portrait fronts and backs, a
//! hand or a sleeve), a distribution no reader was tuned on.
//!
//! Every card says where its number is in the photo ([`Card::number_lines`]): what a detector of
//! card numbers should find, for measuring one or training one. A generator
//! [`CardGenerator::measuring_legibility`] also says how plainly it stands there
//! ([`Card::legibility`]): whether a person may read it at all.
//!
//! The fonts are Debian's (`scripts/fetch-fonts.sh` unpacks them into `target/fonts`).

use std::{
    fmt,
    path::{Path, PathBuf},
};

use ab_glyph::{FontVec, PxScale};
use image::{GrayImage, ImageBuffer, Luma, Rgb, RgbImage, codecs::jpeg::JpegEncoder, imageops};
use imageproc::{
    drawing::{draw_filled_circle_mut, draw_filled_rect_mut, draw_text_mut, text_size},
    geometric_transformations::{Border, Interpolation, Projection, warp, warp_into},
    noise::gaussian_noise,
    rect::Rect,
};
use rand::{Rng, RngExt, SeedableRng};
use rand_pcg::Pcg64;

mod design;
mod legibility;
mod qr;

pub use legibility::Legibility;
use legibility::Taken;
pub use qr::{QrImage, QrScene, invoice_title_text, other_code_text};

/// The fonts numbers are drawn in: OCR-A (close to the embossed Farrington font of real cards),
/// monospaced and proportional faces.
const NUMBER_FONTS: &[&str] = &[
    "OCRA.ttf",
    "OCRABold.ttf",
    "DejaVuSansMono-Bold.ttf",
    "LiberationMono-Bold.ttf",
    "FreeMonoBold.ttf",
    "LiberationSans-Bold.ttf",
    "FreeSansBold.ttf",
    "DejaVuSans-Bold.ttf",
];
/// More faces the hard mode also draws numbers in: monospaced, sans, condensed and serif.
const HARD_NUMBER_FONTS: &[&str] = &[
    "Hack-Bold.ttf",
    "Cousine-Bold.ttf",
    "Arimo-Bold.ttf",
    "Go-Mono-Bold.ttf",
    "NotoSansMono-Bold.ttf",
    "Roboto-Bold.ttf",
    "RobotoCondensed-Bold.ttf",
    "JetBrainsMono-Bold.ttf",
    "Lato-Bold.ttf",
    "Tinos-Bold.ttf",
];
/// The wild mode's faces, none of which the other modes draw: monospaced, humanist, rounded,
/// condensed and serif faces from other type families.
const WILD_NUMBER_FONTS: &[&str] = &[
    "B612Mono-Bold.otf",
    "B612-Bold.otf",
    "FiraCode-Bold.ttf",
    "mononoki-Bold.ttf",
    "OpenSans-Bold.ttf",
    "OpenSans-CondBold.ttf",
    "Quicksand-Bold.ttf",
    "Carlito-Bold.ttf",
    "Oxygen-Sans-Bold.ttf",
    "OxygenMono-Regular.ttf",
    "NimbusMonoPS-Bold.otf",
    "NimbusSans-Bold.otf",
    "NimbusSansNarrow-Bold.otf",
    "C059-Bold.otf",
    "FantasqueSansMono-Bold.otf",
    "LeagueSpartan-Bold.otf",
    "Cantarell-Bold.otf",
    "Inconsolata.otf",
];
/// The font of the smaller print: bank name, expiry, holder.
const LABEL_FONT: &str = "DejaVuSans.ttf";

/// How a mode photographs its cards on a table: the ranges each of its photos is drawn from.
struct Shot {
    /// What the mode's seeds are mixed with, so that its cards are no other mode's.
    seeds: u64,
    /// Which of the generator's number fonts it draws in.
    fonts: std::ops::Range<usize>,
    /// The number's height on the 856×540 face, and where it starts.
    size: std::ops::Range<f32>,
    x: std::ops::Range<i32>,
    y: std::ops::Range<i32>,
    frame_width: std::ops::RangeInclusive<u32>,
    /// Whether frames may also be 16:9 or held upright (3:4), not only 4:3; the turned card is
    /// then kept inside the frame.
    other_frames: bool,
    /// The card's width as a share of the frame's.
    card_share: std::ops::Range<f32>,
    /// The largest turn, either way, in degrees.
    turn: f32,
    /// How often the card lies upside down.
    upside_down: f64,
    /// How far each corner may be pulled, as a share of the card's width.
    pull: f32,
    /// The overall light, and whether it may have a warm or cold cast.
    light: std::ops::Range<f32>,
    colour_cast: bool,
    /// Focus blur σ, and how often the hand moved (a streak 3-8 pixels long).
    blur: std::ops::Range<f32>,
    shake: f64,
    noise: std::ops::Range<f64>,
    quality: std::ops::Range<u8>,
}

/// The hard mode: a card of 60-85% of the frame, turned up to 10°.
const HARD: Shot = Shot {
    seeds: 0x4841_5244_4341_5244,
    fonts: 0..NUMBER_FONTS.len() + HARD_NUMBER_FONTS.len(),
    size: 40.0..58.0,
    x: 40..70,
    y: 270..320,
    frame_width: 800..=1280,
    other_frames: false,
    card_share: 0.60..0.85,
    turn: 10.0,
    upside_down: 0.0,
    pull: 0.06,
    light: 0.85..1.1,
    colour_cast: false,
    blur: 0.4..1.3,
    shake: 0.0,
    noise: 3.0..9.0,
    quality: 35..76,
};

/// The wild mode: photos drawn wider than the hard mode's, in fonts no other mode uses, to
/// measure a reader on what it was not tuned on.
const WILD: Shot = Shot {
    seeds: 0x5749_4c44_5749_4c44,
    fonts: NUMBER_FONTS.len() + HARD_NUMBER_FONTS.len()
        ..NUMBER_FONTS.len() + HARD_NUMBER_FONTS.len() + WILD_NUMBER_FONTS.len(),
    size: 30.0..58.0,
    x: 30..110,
    y: 240..330,
    frame_width: 800..=1600,
    other_frames: true,
    card_share: 0.45..0.90,
    turn: 25.0,
    upside_down: 0.1,
    pull: 0.09,
    light: 0.6..1.15,
    colour_cast: true,
    blur: 0.4..1.8,
    shake: 0.4,
    noise: 3.0..12.0,
    quality: 30..76,
};
/// Unrelated print on the table; `#` becomes a number. Dates, phones and amounts, never a run of
/// 16 digits.
const CLUTTER_LINES: &[&str] = &[
    "TOTAL  128.#0",
    "TEL 021-6888 12#",
    "2026-11-# 14:32",
    "ORDER 2024112#0123",
    "THANK YOU",
    "WIFI 8888 66#",
    "TABLE #  GUESTS 2",
    "RMB #.50",
    "INVOICE NO 0440#1",
    "MEETING 10:#",
];

/// Issuer prefixes of common Chinese and international cards, and the length of the numbers their
/// banks issue under them (as `data/bin-table.tsv` has it): a number is drawn only under a prefix
/// whose cards are that long, as on a real card. (No card of this generator has 18 digits, so
/// 620522 is only ever replaced; it keeps its place so that the same seed draws the same number.)
const PREFIXES: &[(&str, usize)] = &[
    ("622202", 19),
    ("621700", 19),
    ("622848", 19),
    ("621226", 19),
    ("622588", 16),
    ("436742", 19),
    ("625807", 16),
    ("402674", 16),
    ("518710", 16),
    ("620522", 18),
    ("623668", 19),
    ("356833", 16),
    ("622609", 16),
    ("601382", 19),
];
const BANK_NAMES: &[&str] = &[
    "CHINA MERCHANTS BANK",
    "BANK OF CHINA",
    "ICBC",
    "CHINA CONSTRUCTION BANK",
    "AGRICULTURAL BANK",
    "BANK OF COMMUNICATIONS",
    "PING AN BANK",
];
const HOLDERS: &[&str] = &["ZHANG WEI", "LI NA", "WANG FANG", "LIU YANG", "CHEN JING"];

/// How the digits of a number are grouped on the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    /// 16 digits: 4-4-4-4.
    Four16,
    /// 19 digits: 4-4-4-4-3.
    Four19,
    /// 19 digits: 6-13, as many UnionPay debit cards.
    SixThirteen,
    /// 19 digits: 4-4-4-7.
    FourSeven,
}

impl Grouping {
    fn digits(self) -> usize {
        match self {
            Self::Four16 => 16,
            Self::Four19 | Self::SixThirteen | Self::FourSeven => 19,
        }
    }

    fn groups(self, number: &str) -> Vec<&str> {
        match self {
            Self::Four16 | Self::Four19 => number
                .as_bytes()
                .chunks(4)
                .filter_map(|chunk| std::str::from_utf8(chunk).ok())
                .collect(),
            Self::SixThirteen => vec![&number[..6], &number[6..]],
            Self::FourSeven => vec![&number[..4], &number[4..8], &number[8..12], &number[12..]],
        }
    }
}

/// A line of a card's number in its photo: the four corners of the box its digits cover, in
/// pixels, in the order the line reads (top left, top right, bottom right, bottom left as the
/// digits stand), so that the line of a card photographed upside down starts at the photo's
/// bottom right.
pub type Quad = [(f32, f32); 4];

/// A line of a card's number as the photo shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct NumberLine {
    /// Where it is.
    pub corners: Quad,
    /// What it says, as printed: its digits, groups apart.
    pub text: String,
}

impl NumberLine {
    /// Its digits, without the spaces between groups.
    pub fn digits(&self) -> String {
        self.text.chars().filter(char::is_ascii_digit).collect()
    }
}

/// A rendered card and what is on it.
pub struct Card {
    pub seed: u64,
    /// The number printed on the card, digits only.
    pub number: String,
    pub grouping: Grouping,
    pub font: String,
    /// Whether this is one of the deliberately hard cases (every card of the hard mode is).
    pub hard: bool,
    /// The expiry printed after VALID THRU: month 1-12, two-digit year; `(0, 0)` when none is.
    pub expiry: (u32, u32),
    /// What the design mode drew on it (layout, background, patterns, ink, hand or sleeve);
    /// empty for the other modes.
    pub features: Vec<&'static str>,
    /// Where the number is in the photo: its lines, in the order they read (one, but two to four
    /// on a portrait card). What a detector of card numbers should find.
    pub number_lines: Vec<NumberLine>,
    /// How plainly the number stands in the photo, when the generator measures it
    /// ([`CardGenerator::measuring_legibility`]).
    pub legibility: Option<Legibility>,
    /// The photo, as a JPEG file.
    pub jpeg: Vec<u8>,
}

impl Card {
    /// Where the number is, in ICDAR 2015's form: a row a line, its corners in pixels in the
    /// order it reads, then its text as printed (`x1,y1,x2,y2,x3,y3,x4,y4,6228  4845`).
    pub fn positions(&self) -> String {
        self.number_lines
            .iter()
            .map(|line| {
                let corners: Vec<String> = line
                    .corners
                    .iter()
                    .flat_map(|&(x, y)| [x, y])
                    .map(|at| at.round().to_string())
                    .collect();
                format!("{},{}\n", corners.join(","), line.text)
            })
            .collect()
    }
}

impl fmt::Debug for Card {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Card")
            .field("seed", &self.seed)
            .field("number", &self.number)
            .field("grouping", &self.grouping)
            .field("font", &self.font)
            .field("hard", &self.hard)
            .field("expiry", &self.expiry)
            .field("features", &self.features)
            .field("number_lines", &self.number_lines)
            .field("legibility", &self.legibility)
            .field("jpeg_len", &self.jpeg.len())
            .finish()
    }
}

#[derive(Debug)]
pub struct FontError(String);

impl fmt::Display for FontError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FontError {}

/// Renders synthetic card photos.
pub struct CardGenerator {
    /// The standard mode's fonts, then the hard mode's additions, then the wild mode's own; or a
    /// folder's fonts ([`Self::with_number_fonts`]).
    number_fonts: Vec<(String, FontVec)>,
    /// Whether `number_fonts` are a folder's, which every mode draws from whole.
    folder_fonts: bool,
    label_font: FontVec,
    /// Whether each photo is drawn again without its number, to measure its legibility.
    legibility: bool,
}

impl CardGenerator {
    /// The directory `scripts/fetch-fonts.sh` fills by default, or `CARDGEN_FONTS_DIR`.
    pub fn default_fonts_dir() -> PathBuf {
        std::env::var_os("CARDGEN_FONTS_DIR").map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fonts"),
            PathBuf::from,
        )
    }

    /// Loads the fonts from `dir`, which `scripts/fetch-fonts.sh` fills.
    pub fn new(dir: &Path) -> Result<Self, FontError> {
        let load = |name: &str| {
            load_font(&dir.join(name)).map_err(|FontError(message)| {
                FontError(format!("{message} (run scripts/fetch-fonts.sh)"))
            })
        };
        Ok(Self {
            number_fonts: NUMBER_FONTS
                .iter()
                .chain(HARD_NUMBER_FONTS)
                .chain(WILD_NUMBER_FONTS)
                .map(|&name| Ok((name.to_owned(), load(name)?)))
                .collect::<Result<_, FontError>>()?,
            folder_fonts: false,
            label_font: load(LABEL_FONT)?,
            legibility: false,
        })
    }

    /// The same generator, measuring how plainly each card's number stands in its photo
    /// ([`Card::legibility`]): each photo is drawn a second time without its number, which
    /// takes about as long again.
    #[must_use]
    pub fn measuring_legibility(self) -> Self {
        Self {
            legibility: true,
            ..self
        }
    }

    /// The same generator, drawing every mode's numbers in the fonts of `dir` (each `.ttf` and
    /// `.otf` file in it) instead of its own: cards in faces no reader was made or tuned with
    /// (`scripts/fetch-fonts.sh --held-out`).
    pub fn with_number_fonts(self, dir: &Path) -> Result<Self, FontError> {
        let unreadable = |err| FontError(format!("cannot read {}: {err}", dir.display()));
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(unreadable)? {
            let path = entry.map_err(unreadable)?.path();
            if path
                .extension()
                .is_some_and(|extension| extension == "ttf" || extension == "otf")
            {
                paths.push(path);
            }
        }
        // In name order, so that a seed draws the same font from the same folder.
        paths.sort();
        if paths.is_empty() {
            return Err(FontError(format!(
                "{} holds no .ttf or .otf font",
                dir.display()
            )));
        }
        let number_fonts = paths
            .iter()
            .map(|path| {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                Ok((name.into_owned(), load_font(path)?))
            })
            .collect::<Result<_, FontError>>()?;
        Ok(Self {
            number_fonts,
            folder_fonts: true,
            ..self
        })
    }

    /// A number's font, of a mode's `fonts`, or of the folder's, every one of which every mode
    /// draws in.
    fn number_font(&self, rng: &mut Pcg64, fonts: std::ops::Range<usize>) -> &(String, FontVec) {
        let fonts = if self.folder_fonts {
            0..self.number_fonts.len()
        } else {
            fonts
        };
        &self.number_fonts[rng.random_range(fonts)]
    }

    /// Card number `seed`: the same seed gives the same card.
    pub fn card(&self, seed: u64) -> Card {
        let mut rng = Pcg64::seed_from_u64(seed);
        let grouping =
            [Grouping::Four16, Grouping::Four19, Grouping::SixThirteen][rng.random_range(0..3)];
        let number = luhn_number(&mut rng, grouping.digits());
        let (font, number_font) = self.number_font(&mut rng, 0..NUMBER_FONTS.len());
        let hard = rng.random_bool(0.125);

        let (mut face, expiry) = self.face(&mut rng);
        let size = if hard {
            rng.random_range(34.0..44.0)
        } else {
            rng.random_range(44.0..60.0)
        };
        let text = grouping.groups(&number).join("  ");
        let scale = PxScale::from(size);
        let (text_width, _) = text_size(scale, number_font, &text);
        // Wider fonts are squeezed so the number fits the card, as on real cards.
        let scale = if text_width > 760 {
            PxScale {
                x: size * 760.0 / text_width as f32,
                y: size,
            }
        } else {
            scale
        };
        let x = rng.random_range(40..70);
        let y = rng.random_range(270..320);
        let ink = if hard {
            shade(&face, x, y, 40)
        } else {
            [
                Rgb([235, 235, 225]),
                Rgb([30, 30, 30]),
                Rgb([220, 190, 110]),
                Rgb([200, 200, 205]),
            ][rng.random_range(0..4)]
        };
        let blank = self.legibility.then(|| face.clone());
        emboss(&mut face, ink, x, y, scale, number_font, &text);
        let digits = legibility::digit_boxes(x, y, scale, number_font, &text);
        let line = inked_box(x, y, scale, number_font, &text).map(|corners| (corners, text));

        let blank_rng = rng.clone();
        let (photo, placed, taken) = self.photograph(&mut rng, &face, hard);
        let quality = rng.random_range(if hard { 35..60 } else { 55..92 });
        let legibility = blank.and_then(|blank| {
            let (blank, ..) = self.photograph(&mut blank_rng.clone(), &blank, hard);
            legibility::measure(&photo, &blank, Some(placed), &digits, taken, quality)
        });
        Card {
            seed,
            number,
            grouping,
            font: font.clone(),
            hard,
            expiry,
            features: Vec::new(),
            number_lines: on_photo(Some(placed), line),
            legibility,
            jpeg: jpeg(&photo, quality),
        }
    }

    /// Hard card `seed`, as phones photograph cards: the card at 60-85% of a 800-1280 pixel wide
    /// frame, in perspective, on a cluttered table with unrelated print, under uneven light with
    /// glare, its number embossed in metal, flat and faint, or plain, in any of 18 fonts and the
    /// groupings banks use (4-4-4-4, 4-4-4-4-3, 6-13, 4-4-4-7), at JPEG quality 35-75. Its seeds
    /// draw other cards than [`Self::card`]'s.
    pub fn hard_card(&self, seed: u64) -> Card {
        self.phone_card(seed, &HARD)
    }

    /// Wild card `seed`: a hard card drawn from wider ranges, in 18 fonts of other families that
    /// neither other mode uses, so that a reader tuned on the other modes can be measured on
    /// photos it has never seen: the number 30-58 pixels high anywhere along the face's middle;
    /// the card at 45-90% of a 800-1600 pixel frame of 4:3, 16:9 or held upright, turned up to
    /// 25° and one time in ten upside down, its corners pulled further; dimmer light with a
    /// colour cast, more blur, a shaken hand four times in ten, more noise, JPEG quality 30-75.
    pub fn wild_card(&self, seed: u64) -> Card {
        self.phone_card(seed, &WILD)
    }

    /// The number of a card `shot` takes, in one of the groupings banks use, and the font it is
    /// printed in (its name, and the font).
    fn number(&self, rng: &mut Pcg64, shot: &Shot) -> (Grouping, String, &(String, FontVec)) {
        let grouping = [
            Grouping::Four16,
            Grouping::Four19,
            Grouping::SixThirteen,
            Grouping::FourSeven,
        ][rng.random_range(0..4)];
        let number = luhn_number(rng, grouping.digits());
        let font = self.number_font(rng, shot.fonts.clone());
        (grouping, number, font)
    }

    fn phone_card(&self, seed: u64, shot: &Shot) -> Card {
        let mut rng = Pcg64::seed_from_u64(seed ^ shot.seeds);
        let (grouping, number, (font, number_font)) = self.number(&mut rng, shot);
        let (mut face, expiry) = self.face(&mut rng);

        let size = rng.random_range(shot.size.clone());
        let text = grouping.groups(&number).join("  ");
        let scale = PxScale::from(size);
        let (text_width, _) = text_size(scale, number_font, &text);
        let room = rng.random_range(700.0..770.0);
        let scale = if text_width as f32 > room {
            PxScale {
                x: size * room / text_width as f32,
                y: size,
            }
        } else {
            scale
        };
        let x = rng.random_range(shot.x.clone());
        let y = rng.random_range(shot.y.clone());
        let blank = self.legibility.then(|| face.clone());
        match rng.random_range(0..4) {
            0 | 1 => metal_emboss(&mut rng, &mut face, x, y, scale, number_font, &text),
            2 => {
                // Flat print close to the card's own colour.
                let ink = shade(&face, x, y, rng.random_range(28..45));
                draw_text_mut(&mut face, ink, x, y, scale, number_font, &text);
            }
            _ => {
                let ink = [Rgb([25, 25, 30]), Rgb([240, 240, 235])][rng.random_range(0..2)];
                draw_text_mut(&mut face, ink, x, y, scale, number_font, &text);
            }
        }
        let digits = legibility::digit_boxes(x, y, scale, number_font, &text);
        let line = inked_box(x, y, scale, number_font, &text).map(|corners| (corners, text));

        let (photo, placed, legibility) = self.photographed(&mut rng, &face, blank, &digits, shot);
        Card {
            seed,
            number,
            grouping,
            font: font.clone(),
            hard: true,
            expiry,
            features: Vec::new(),
            number_lines: on_photo(placed, line),
            legibility,
            jpeg: photo,
        }
    }

    /// `face` photographed as `shot` says ([`Self::scene`]) and saved as a JPEG; where the face's
    /// points are in the photo; and, when `blank` is the face as it was before `digits` were
    /// printed on it, their legibility.
    fn photographed(
        &self,
        rng: &mut Pcg64,
        face: &RgbImage,
        blank: Option<RgbImage>,
        digits: &[Quad],
        shot: &Shot,
    ) -> (Vec<u8>, Option<Projection>, Option<Legibility>) {
        let blank_rng = rng.clone();
        let (photo, placed, taken) = self.scene(rng, face, shot);
        let quality = rng.random_range(shot.quality.clone());
        let legibility = blank.and_then(|blank| {
            let (blank, ..) = self.scene(&mut blank_rng.clone(), &blank, shot);
            legibility::measure(&photo, &blank, placed, digits, taken, quality)
        });
        (jpeg(&photo, quality), placed, legibility)
    }

    /// `face` lying among clutter on a table and photographed by hand as `shot` says: perspective,
    /// uneven light, glare, blur and sensor noise; where the face's points are in the photo
    /// (`None` in the degenerate case of a face not drawn); and how the photo was taken.
    fn scene(
        &self,
        rng: &mut Pcg64,
        face: &RgbImage,
        shot: &Shot,
    ) -> (RgbImage, Option<Projection>, Taken) {
        let width = rng.random_range(shot.frame_width.clone());
        let height = if shot.other_frames {
            [width * 3 / 4, width * 9 / 16, width * 4 / 3][rng.random_range(0..3)]
        } else {
            width * 3 / 4
        };
        let table = random_colour(rng, 50..200);
        let mut photo = RgbImage::from_fn(width, height, |x, y| {
            // Wood-like grain: faint stripes.
            let grain = ((f64::from(y) / 9.0 + f64::from(x) / 140.0).sin() * 10.0) as i16;
            Rgb(table.0.map(|c| (i16::from(c) + grain).clamp(0, 255) as u8))
        });
        self.clutter(rng, &mut photo);

        // The card's corners: a share of the frame wide, turned, each corner pulled a little.
        let mut card_width = width as f32 * rng.random_range(shot.card_share.clone());
        let tall = |card_width: f32| card_width * face.height() as f32 / face.width() as f32;
        let mut angle = rng.random_range(-shot.turn..shot.turn).to_radians();
        if shot.upside_down > 0.0 && rng.random_bool(shot.upside_down) {
            angle += std::f32::consts::PI;
        }
        let (mut margin_x, mut margin_y) = (
            (width as f32 - card_width) / 2.0,
            ((height as f32 - tall(card_width)) / 2.0).max(0.0),
        );
        if shot.other_frames {
            // Shrunk to keep the turned card, its corners pulled, within 95% of any frame, and
            // moved only within it.
            let (sin, cos) = (angle.sin().abs(), angle.cos().abs());
            let extent = |card_width: f32| {
                let pulled = 2.0 * shot.pull * card_width;
                (
                    card_width * cos + tall(card_width) * sin + pulled,
                    card_width * sin + tall(card_width) * cos + pulled,
                )
            };
            let (across, down) = extent(card_width);
            card_width *= (0.95 * width as f32 / across)
                .min(0.95 * height as f32 / down)
                .min(1.0);
            let (across, down) = extent(card_width);
            (margin_x, margin_y) = ((width as f32 - across) / 2.0, (height as f32 - down) / 2.0);
        }
        let card_height = tall(card_width);
        let centre = (
            width as f32 / 2.0 + rng.random_range(-margin_x * 0.6..=margin_x * 0.6),
            height as f32 / 2.0 + rng.random_range(-margin_y * 0.6..=margin_y * 0.6),
        );
        let pull = card_width * shot.pull;
        let (cos, sin) = (angle.cos(), angle.sin());
        let corner = |rng: &mut Pcg64, dx: f32, dy: f32| {
            let (dx, dy) = (
                dx + rng.random_range(-pull..pull),
                dy + rng.random_range(-pull..pull),
            );
            (
                centre.0 + dx * cos - dy * sin,
                centre.1 + dx * sin + dy * cos,
            )
        };
        let (hw, hh) = (card_width / 2.0, card_height / 2.0);
        let to = [
            corner(rng, -hw, -hh),
            corner(rng, hw, -hh),
            corner(rng, hw, hh),
            corner(rng, -hw, hh),
        ];
        let (fw, fh) = (face.width() as f32, face.height() as f32);
        let from = [(0.0, 0.0), (fw, 0.0), (fw, fh), (0.0, fh)];
        let placed = Projection::from_control_points(from, to);
        if let Some(projection) = placed {
            warp_onto(&mut photo, face, projection);
        }

        // Uneven light: brighter towards one side, darker in the corners, and glare.
        let (gx, gy) = (
            rng.random_range(-0.35f32..0.35),
            rng.random_range(-0.35f32..0.35),
        );
        let base = rng.random_range(shot.light.clone());
        let cast: [f32; 3] = if shot.colour_cast {
            let warmth = rng.random_range(-0.12f32..0.12);
            [1.0 + warmth, 1.0, 1.0 - warmth]
        } else {
            [1.0; 3]
        };
        let glares: Vec<(f32, f32, f32, f32)> = (0..rng.random_range(1..4))
            .map(|_| {
                (
                    rng.random_range(0.1..0.9) * width as f32,
                    rng.random_range(0.1..0.9) * height as f32,
                    rng.random_range(0.03..0.12) * width as f32,
                    rng.random_range(0.3..0.7),
                )
            })
            .collect();
        let (w, h) = (width as f32, height as f32);
        for (x, y, pixel) in photo.enumerate_pixels_mut() {
            let (u, v) = (x as f32 / w - 0.5, y as f32 / h - 0.5);
            let light = (base + gx * u + gy * v - 0.5 * (u * u + v * v)).max(0.3);
            let glare = glares
                .iter()
                .map(|&(cx, cy, radius, strength)| {
                    let d2 =
                        ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)) / (radius * radius);
                    strength * (-d2 / 2.0).exp()
                })
                .fold(0.0f32, f32::max);
            for (c, cast) in pixel.0.iter_mut().zip(cast) {
                let lit = (f32::from(*c) * light * cast).min(255.0);
                *c = (lit + (255.0 - lit) * glare) as u8;
            }
        }

        let focus = rng.random_range(shot.blur.clone());
        let mut photo = imageops::blur(&photo, focus);
        let mut streak = 0.0;
        if shot.shake > 0.0 && rng.random_bool(shot.shake) {
            streak = rng.random_range(3.0f32..8.0);
            let direction = rng.random_range(0.0f32..std::f32::consts::PI);
            photo = streaked(&photo, streak, direction);
        }
        let noise = rng.random_range(shot.noise.clone());
        let photo = gaussian_noise(&photo, 0.0, noise, rng.next_u64());
        let taken = Taken {
            focus,
            streak,
            noise,
        };
        (photo, placed, taken)
    }

    /// Paper on the table with unrelated print: receipts, notes, a price tag.
    fn clutter(&self, rng: &mut Pcg64, photo: &mut RgbImage) {
        let (width, height) = (photo.width() as i32, photo.height() as i32);
        for _ in 0..rng.random_range(3..7) {
            let paper = random_colour(rng, 170..250);
            let (w, h) = (rng.random_range(120..420), rng.random_range(80..300));
            let (x, y) = (
                rng.random_range(-w / 2..width - w / 2),
                rng.random_range(-h / 2..height - h / 2),
            );
            draw_filled_rect_mut(photo, Rect::at(x, y).of_size(w as u32, h as u32), paper);
            let ink = random_colour(rng, 10..90);
            let size = rng.random_range(14.0..30.0);
            let mut line_y = y + 8;
            while line_y + (size as i32) < y + h {
                let line = CLUTTER_LINES[rng.random_range(0..CLUTTER_LINES.len())];
                let line = line.replace('#', &rng.random_range(10..100).to_string());
                draw_text_mut(
                    photo,
                    ink,
                    x + 8,
                    line_y,
                    PxScale::from(size),
                    &self.label_font,
                    &line,
                );
                line_y += size as i32 + rng.random_range(4..12);
            }
        }
    }

    /// A photo of a card-like object with print but no card number: a loyalty card.
    pub fn non_card(&self, seed: u64) -> Vec<u8> {
        let mut rng = Pcg64::seed_from_u64(seed);
        let (mut face, _) = self.face(&mut rng);
        let white = Rgb([240, 240, 240]);
        draw_text_mut(
            &mut face,
            white,
            60,
            280,
            PxScale::from(44.0),
            &self.label_font,
            "MEMBER  GOLD  2030",
        );
        draw_text_mut(
            &mut face,
            white,
            60,
            350,
            PxScale::from(30.0),
            &self.label_font,
            "TEL 95588",
        );
        let (photo, ..) = self.photograph(&mut rng, &face, false);
        jpeg(&photo, 85)
    }

    /// The card's face, 856×540 (85.6 × 54 mm at 10 px/mm), without its number, and the expiry
    /// printed on it.
    fn face(&self, rng: &mut Pcg64) -> (RgbImage, (u32, u32)) {
        let from = random_colour(rng, 20..200);
        let to = random_colour(rng, 20..200);
        let mut face = ImageBuffer::from_fn(856, 540, |x, y| {
            let t = (x + y) as f32 / (856 + 540) as f32;
            Rgb(std::array::from_fn(|c| {
                (f32::from(from.0[c]) * (1.0 - t) + f32::from(to.0[c]) * t) as u8
            }))
        });
        for _ in 0..rng.random_range(1..4) {
            let colour = random_colour(rng, 40..230);
            let centre = (rng.random_range(0..856), rng.random_range(0..540));
            draw_filled_circle_mut(&mut face, centre, rng.random_range(60..260), colour);
        }
        // The chip.
        draw_filled_rect_mut(
            &mut face,
            Rect::at(80, 150).of_size(100, 76),
            Rgb([212, 175, 90]),
        );
        let label = Rgb([245, 245, 240]);
        let bank = BANK_NAMES[rng.random_range(0..BANK_NAMES.len())];
        draw_text_mut(
            &mut face,
            label,
            60,
            50,
            PxScale::from(36.0),
            &self.label_font,
            bank,
        );
        let expiry = (rng.random_range(1..13), rng.random_range(26..36));
        draw_text_mut(
            &mut face,
            label,
            300,
            400,
            PxScale::from(22.0),
            &self.label_font,
            &format!("VALID THRU {:02}/{:02}", expiry.0, expiry.1),
        );
        let holder = HOLDERS[rng.random_range(0..HOLDERS.len())];
        draw_text_mut(
            &mut face,
            label,
            60,
            460,
            PxScale::from(28.0),
            &self.label_font,
            holder,
        );
        (face, expiry)
    }

    /// The face lying on a table, photographed from a little off: tilt, perspective, blur, noise;
    /// where the face's points are in the photo; and how it was taken.
    fn photograph(
        &self,
        rng: &mut Pcg64,
        face: &RgbImage,
        hard: bool,
    ) -> (RgbImage, Projection, Taken) {
        let (width, height) = (1000u32, 700u32);
        let table = random_colour(rng, 60..220);
        let mut photo = RgbImage::from_pixel(width, height, table);
        let (left, top) = (72i64, 80i64);
        imageops::overlay(&mut photo, face, left, top);

        let tilt = if hard { 7.0f32 } else { 3.0 };
        let angle = rng.random_range(-tilt..tilt).to_radians();
        let jitter = |rng: &mut Pcg64| rng.random_range(-25.0f32..25.0);
        let (l, t) = (left as f32, top as f32);
        let (r, b) = (l + face.width() as f32, t + face.height() as f32);
        let corners = [(l, t), (r, t), (r, b), (l, b)];
        let moved = corners.map(|(x, y)| (x + jitter(rng), y + jitter(rng)));
        let centre = (width as f32 / 2.0, height as f32 / 2.0);
        let rotation = Projection::translate(centre.0, centre.1)
            * Projection::rotate(angle)
            * Projection::translate(-centre.0, -centre.1);
        let projection = Projection::from_control_points(corners, moved)
            .map_or(rotation, |perspective| rotation * perspective);
        let photo = warp(
            &photo,
            projection,
            Interpolation::Bilinear,
            Border::Constant(table),
        );

        let sigma = if hard {
            rng.random_range(1.0..1.8)
        } else {
            rng.random_range(0.0..1.0)
        };
        let (photo, focus) = if sigma > 0.3 {
            (imageops::blur(&photo, sigma), sigma)
        } else {
            (photo, 0.0)
        };
        let noise = rng.random_range(2.0..8.0);
        let photo = gaussian_noise(&photo, 0.0, noise, rng.next_u64());
        let taken = Taken {
            focus,
            streak: 0.0,
            noise,
        };
        (photo, projection * Projection::translate(l, t), taken)
    }
}

/// `jpeg` (a card photo) as a phone camera saves it: enlarged to `width` pixels wide, with sensor
/// grain, at JPEG quality 95: a photo of several megabytes. Grain `sigma` sets the size.
pub fn phone_photo(jpeg: &[u8], width: u32, sigma: f64, seed: u64) -> Vec<u8> {
    let Ok(photo) = image::load_from_memory(jpeg) else {
        return jpeg.to_vec();
    };
    let height = (u64::from(width) * u64::from(photo.height()) / u64::from(photo.width())) as u32;
    let photo = imageops::resize(
        &photo.to_rgb8(),
        width,
        height,
        imageops::FilterType::Triangle,
    );
    self::jpeg(&gaussian_noise(&photo, 0.0, sigma, seed), 95)
}

/// `jpeg` with an EXIF segment (APP1) holding only an orientation, as a phone writes it when it
/// stores a portrait shot's pixels sideways: 6 means "rotate 90° clockwise to view", 8 "rotate
/// 90° counter-clockwise", 3 "rotate 180°".
///
/// # Panics
/// When `jpeg` does not start with a JPEG's start-of-image marker.
pub fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    assert!(jpeg.starts_with(&[0xFF, 0xD8]), "not a JPEG");
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"MM\0\x2a\0\0\0\x08"); // big-endian TIFF, first IFD at offset 8
    tiff.extend_from_slice(&1u16.to_be_bytes()); // one entry
    tiff.extend_from_slice(&0x0112u16.to_be_bytes()); // tag: Orientation
    tiff.extend_from_slice(&3u16.to_be_bytes()); // type: SHORT
    tiff.extend_from_slice(&1u32.to_be_bytes()); // one value
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0]); // the rest of the 4-byte value field
    tiff.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    let mut segment = b"Exif\0\0".to_vec();
    segment.extend_from_slice(&tiff);
    let length = u16::try_from(segment.len() + 2).unwrap_or(u16::MAX);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(&segment);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// The font file at `path`.
fn load_font(path: &Path) -> Result<FontVec, FontError> {
    let bytes = std::fs::read(path)
        .map_err(|err| FontError(format!("cannot read {}: {err}", path.display())))?;
    FontVec::try_from_vec(bytes)
        .map_err(|err| FontError(format!("{} is not a font: {err}", path.display())))
}

/// A random number of `digits` digits under the prefix of an issuer whose cards have that many,
/// with a valid Luhn check digit.
/// The check digit is computed here, not with ocrgate's own Luhn code: the generator is the oracle
/// the gateway is tested against, so it shares none of its code.
fn luhn_number(rng: &mut Pcg64, digits: usize) -> String {
    let drawn = rng.random_range(0..PREFIXES.len());
    let mut number = match PREFIXES[drawn] {
        (prefix, length) if length == digits => prefix,
        // A prefix whose bank issues numbers of another length gives way to one of a bank that
        // issues this one, so that a seed whose prefix was drawn at its own length keeps the
        // number, and the card, it drew when any prefix was drawn at any length.
        _ => {
            let issued: Vec<&str> = PREFIXES
                .iter()
                .filter(|&&(_, length)| length == digits)
                .map(|&(prefix, _)| prefix)
                .collect();
            issued[drawn % issued.len()]
        }
    }
    .to_owned();
    while number.len() < digits - 1 {
        number.push(char::from(b'0' + rng.random_range(0..10u8)));
    }
    let sum: u32 = number
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    number.push(char::from(b'0' + ((10 - sum % 10) % 10) as u8));
    number
}

/// The box the glyphs of `text` cover when drawn at (`x`, `y`) as `draw_text_mut` draws it, its
/// corners clockwise from the top left; `None` for text without ink.
fn inked_box(x: i32, y: i32, scale: PxScale, font: &FontVec, text: &str) -> Option<Quad> {
    let (width, height) = text_size(scale, font, text);
    // Glyphs may reach past the layout's box: drawn with a line's height of room around it.
    let room = height;
    let mut mask = GrayImage::new(width + 2 * room, height + 2 * room);
    draw_text_mut(
        &mut mask,
        Luma([255]),
        room as i32,
        room as i32,
        scale,
        font,
        text,
    );
    let (mut left, mut top, mut right, mut bottom) = (u32::MAX, u32::MAX, 0, 0);
    for (px, py, _) in mask.enumerate_pixels().filter(|(_, _, ink)| ink.0[0] > 0) {
        (left, top) = (left.min(px), top.min(py));
        (right, bottom) = (right.max(px + 1), bottom.max(py + 1));
    }
    if left > right {
        return None;
    }
    let at =
        |edge: u32, origin: i32| (i64::from(edge) - i64::from(room) + i64::from(origin)) as f32;
    let (left, right) = (at(left, x), at(right, x));
    let (top, bottom) = (at(top, y), at(bottom, y));
    Some([(left, top), (right, top), (right, bottom), (left, bottom)])
}

/// `lines`, each its box on a face and its text, where `placed` put the face in the photo; none
/// when it was not.
fn on_photo(
    placed: Option<Projection>,
    lines: impl IntoIterator<Item = (Quad, String)>,
) -> Vec<NumberLine> {
    let Some(placed) = placed else {
        return Vec::new();
    };
    lines
        .into_iter()
        .map(|(on_face, text)| NumberLine {
            corners: on_face.map(|corner| placed * corner),
            text,
        })
        .collect()
}

/// Raised print: a dark shadow below right, a highlight above left, then the face colour.
fn emboss(
    face: &mut RgbImage,
    ink: Rgb<u8>,
    x: i32,
    y: i32,
    scale: PxScale,
    font: &FontVec,
    text: &str,
) {
    draw_text_mut(face, Rgb([20, 20, 20]), x + 2, y + 2, scale, font, text);
    draw_text_mut(face, Rgb([250, 250, 250]), x - 1, y - 1, scale, font, text);
    draw_text_mut(face, ink, x, y, scale, font, text);
}

/// Digits pressed into the card and foiled in silver or gold: a metal sheen down each glyph,
/// a lit upper edge and a shadow below.
fn metal_emboss(
    rng: &mut Pcg64,
    face: &mut RgbImage,
    x: i32,
    y: i32,
    scale: PxScale,
    font: &FontVec,
    text: &str,
) {
    let mut mask = GrayImage::new(face.width(), face.height());
    draw_text_mut(&mut mask, Luma([255]), x, y, scale, font, text);
    let metal: [Rgb<u8>; 3] = [
        Rgb([205, 205, 212]),
        Rgb([218, 186, 112]),
        Rgb([170, 172, 178]),
    ];
    let metal = metal[rng.random_range(0..3)];
    let depth = rng.random_range(1..4);
    let coverage = |px: i64, py: i64| -> f32 {
        if px < 0 || py < 0 || px >= i64::from(mask.width()) || py >= i64::from(mask.height()) {
            return 0.0;
        }
        f32::from(mask.get_pixel(px as u32, py as u32).0[0]) / 255.0
    };
    let top = y as f32 + scale.y * 0.15;
    let band = scale.y * 0.85;
    for (px, py, pixel) in face.enumerate_pixels_mut() {
        let (px, py) = (i64::from(px), i64::from(py));
        let shadow = coverage(px - depth, py - depth);
        let light = coverage(px + 1, py + 1);
        let body = coverage(px, py);
        if shadow + light + body == 0.0 {
            continue;
        }
        // Sheen: bright near the glyph's top third, darker towards its foot.
        let t = ((py as f32 - top) / band).clamp(0.0, 1.0);
        let sheen = 1.25 - 0.6 * (t - 0.3).abs() * 2.0;
        for c in 0..3 {
            let mut value = f32::from(pixel.0[c]);
            value *= 1.0 - 0.55 * shadow * (1.0 - body);
            value += (255.0 - value) * 0.6 * light * (1.0 - body);
            value = value * (1.0 - body) + (f32::from(metal.0[c]) * sheen).min(255.0) * body;
            pixel.0[c] = value.clamp(0.0, 255.0) as u8;
        }
    }
}

/// `image` as a shaking hand takes it: each pixel the mean of a streak `length` pixels long in
/// `direction` (radians) through it.
fn streaked(image: &RgbImage, length: f32, direction: f32) -> RgbImage {
    let steps = length.ceil().max(1.0) as i32;
    let (dy, dx) = direction.sin_cos();
    let offsets: Vec<(i64, i64)> = (0..=steps)
        .map(|i| {
            let t = length * (i as f32 / steps as f32 - 0.5);
            ((t * dx).round() as i64, (t * dy).round() as i64)
        })
        .collect();
    let (width, height) = (i64::from(image.width()), i64::from(image.height()));
    RgbImage::from_fn(image.width(), image.height(), |x, y| {
        let mut sum = [0u32; 3];
        for &(ox, oy) in &offsets {
            let px = (i64::from(x) + ox).clamp(0, width - 1) as u32;
            let py = (i64::from(y) + oy).clamp(0, height - 1) as u32;
            for (total, &c) in sum.iter_mut().zip(&image.get_pixel(px, py).0) {
                *total += u32::from(c);
            }
        }
        Rgb(sum.map(|total| (total / offsets.len() as u32) as u8))
    })
}

/// A colour `delta` away from the background at (`x`, `y`): low-contrast print.
fn shade(face: &RgbImage, x: i32, y: i32, delta: u8) -> Rgb<u8> {
    let background = face.get_pixel(x.max(0) as u32, y.max(0) as u32);
    let brightness: u32 = background.0.iter().map(|&c| u32::from(c)).sum::<u32>() / 3;
    Rgb(background.0.map(|c| {
        if brightness > 128 {
            c.saturating_sub(delta * 2)
        } else {
            c.saturating_add(delta * 2)
        }
    }))
}

/// Draws `item` onto `photo` through `projection`, its edges blended where they cover part of a
/// pixel.
fn warp_onto(photo: &mut RgbImage, item: &RgbImage, projection: Projection) {
    let opaque = image::RgbaImage::from_fn(item.width(), item.height(), |x, y| {
        let Rgb([r, g, b]) = *item.get_pixel(x, y);
        image::Rgba([r, g, b, 255])
    });
    let mut placed = image::RgbaImage::new(photo.width(), photo.height());
    warp_into(
        &opaque,
        projection,
        Interpolation::Bilinear,
        Border::Constant(image::Rgba([0, 0, 0, 0])),
        &mut placed,
    );
    for (pixel, over) in photo.pixels_mut().zip(placed.pixels()) {
        let alpha = f32::from(over.0[3]) / 255.0;
        for c in 0..3 {
            pixel.0[c] =
                (f32::from(pixel.0[c]) * (1.0 - alpha) + f32::from(over.0[c]) * alpha) as u8;
        }
    }
}

fn random_colour(rng: &mut Pcg64, range: std::ops::Range<u8>) -> Rgb<u8> {
    Rgb(std::array::from_fn(|_| rng.random_range(range.clone())))
}

fn jpeg(image: &RgbImage, quality: u8) -> Vec<u8> {
    let mut bytes = Vec::new();
    // Encoding an in-memory RGB image into a Vec cannot fail.
    if let Err(err) = image.write_with_encoder(JpegEncoder::new_with_quality(&mut bytes, quality)) {
        unreachable!("JPEG encoding into memory failed: {err}");
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folders_fonts_are_every_modes_number_fonts() {
        let fonts = CardGenerator::default_fonts_dir();
        let folder = tempfile::tempdir().expect("a temporary folder");
        for face in ["Inconsolata.otf", "Go-Mono-Bold.ttf"] {
            std::fs::copy(fonts.join(face), folder.path().join(face))
                .expect("the generator's fonts: run scripts/fetch-fonts.sh");
        }
        std::fs::write(folder.path().join("README.txt"), "not a font").expect("a file");
        let generator = CardGenerator::new(&fonts)
            .and_then(|generator| generator.with_number_fonts(folder.path()))
            .expect("fonts");
        let drawn: std::collections::BTreeSet<String> = (0..8)
            .flat_map(|seed| {
                [
                    generator.card(seed),
                    generator.hard_card(seed),
                    generator.wild_card(seed),
                    generator.design_card(seed),
                ]
            })
            .map(|card| card.font)
            .collect();
        // Inconsolata is the wild mode's only, Go Mono the hard mode's: both now in every mode.
        assert_eq!(
            drawn,
            ["Go-Mono-Bold.ttf", "Inconsolata.otf"]
                .map(String::from)
                .into()
        );
    }

    #[test]
    fn a_cards_number_lines_are_its_digits_in_order_and_lie_in_the_photo() {
        let generator = CardGenerator::new(&CardGenerator::default_fonts_dir()).expect("fonts");
        let mut portraits = 0;
        for seed in 0..12 {
            for card in [
                generator.card(seed),
                generator.hard_card(seed),
                generator.wild_card(seed),
                generator.design_card(seed),
            ] {
                let digits: String = card.number_lines.iter().map(NumberLine::digits).collect();
                assert_eq!(digits, card.number, "{card:?}");
                portraits += usize::from(card.number_lines.len() > 1);

                let photo = image::load_from_memory(&card.jpeg).expect("a JPEG");
                let (width, height) = (photo.width() as f32, photo.height() as f32);
                for line in &card.number_lines {
                    let [top_left, top_right, _, bottom_left] = line.corners;
                    assert!(
                        line.corners
                            .iter()
                            .all(|&(x, y)| (0.0..width).contains(&x) && (0.0..height).contains(&y)),
                        "{card:?}"
                    );
                    // A line of print: far longer than it is high.
                    let side =
                        |(ax, ay): (f32, f32), (bx, by): (f32, f32)| (bx - ax).hypot(by - ay);
                    let length = side(top_left, top_right);
                    assert!(length > 2.0 * side(top_left, bottom_left), "{card:?}");
                }
            }
        }
        assert!(portraits > 0, "design cards 0-11 include portrait ones");
    }

    #[test]
    fn positions_give_each_line_its_corners_in_reading_order_then_its_text() {
        let generator = CardGenerator::new(&CardGenerator::default_fonts_dir()).expect("fonts");
        let (mut lines, mut portraits) = (0, 0);
        for seed in 0..12 {
            for card in [generator.wild_card(seed), generator.design_card(seed)] {
                let positions = card.positions();
                let rows: Vec<&str> = positions.lines().collect();
                assert_eq!(rows.len(), card.number_lines.len(), "{positions}");
                for (row, line) in rows.iter().zip(&card.number_lines) {
                    let fields: Vec<&str> = row.splitn(9, ',').collect();
                    let corners: Vec<f32> = fields[..8]
                        .iter()
                        .map(|at| at.parse().expect("a pixel"))
                        .collect();
                    let wanted: Vec<f32> = line
                        .corners
                        .iter()
                        .flat_map(|&(x, y)| [x.round(), y.round()])
                        .collect();
                    assert_eq!(corners, wanted, "{row}");
                    // The text as printed: its groups apart.
                    assert_eq!(fields[8], line.text, "{row}");
                    lines += usize::from(line.text.contains(' '));
                }
                portraits += usize::from(rows.len() > 1);
            }
        }
        assert!(
            lines > 0 && portraits > 0,
            "lines of several groups, and portrait cards"
        );
    }

    #[test]
    fn the_line_of_a_card_photographed_upside_down_reads_from_the_photos_right() {
        let generator = CardGenerator::new(&CardGenerator::default_fonts_dir()).expect("fonts");
        // Wild card 1 lies upside down (the mode turns one card in ten over), card 1 does not.
        let (turned, level) = (generator.wild_card(1), generator.card(1));
        let ([turned], [level]) = (&turned.number_lines[..], &level.number_lines[..]) else {
            panic!("one line each")
        };
        let runs_right = |line: &NumberLine| line.corners[1].0 > line.corners[0].0;
        let falls = |line: &NumberLine| line.corners[3].1 > line.corners[0].1;
        assert!(runs_right(level) && falls(level), "{level:?}");
        assert!(!runs_right(turned) && !falls(turned), "{turned:?}");
    }

    #[test]
    fn a_folder_without_fonts_is_refused() {
        let folder = tempfile::tempdir().expect("a temporary folder");
        std::fs::write(folder.path().join("README.txt"), "not a font").expect("a file");
        let refused = CardGenerator::new(&CardGenerator::default_fonts_dir())
            .expect("fonts")
            .with_number_fonts(folder.path())
            .err()
            .map(|err| err.to_string());
        assert!(
            refused
                .as_deref()
                .is_some_and(|err| err.ends_with("holds no .ttf or .otf font")),
            "{refused:?}"
        );
    }

    #[test]
    fn numbers_have_their_grouping_length_their_issuers_length_and_pass_luhn() {
        let mut rng = Pcg64::seed_from_u64(7);
        for digits in [16, 19].repeat(50) {
            let number = luhn_number(&mut rng, digits);
            assert_eq!(number.len(), digits);
            let issued = PREFIXES
                .iter()
                .find(|(prefix, _)| number.starts_with(prefix))
                .map(|&(_, length)| length);
            assert_eq!(
                issued,
                Some(digits),
                "{number}: its prefix's cards are that long"
            );
            let sum: u32 = number
                .bytes()
                .rev()
                .enumerate()
                .map(|(i, b)| {
                    let d = u32::from(b - b'0') * if i % 2 == 1 { 2 } else { 1 };
                    d / 10 + d % 10
                })
                .sum();
            assert_eq!(sum % 10, 0, "{number}");
        }
    }

    #[test]
    fn a_shaken_hand_streaks_a_point_along_its_direction_only() {
        let mut point = RgbImage::new(21, 21);
        point.put_pixel(10, 10, Rgb([255; 3]));
        let streak = streaked(&point, 6.0, 0.0);
        let lit = |x, y| streak.get_pixel(x, y).0[0] > 0;
        // Seven samples, from 3 left of the point to 3 right of it, each a seventh of its light.
        assert!((7..=13).all(|x| lit(x, 10)));
        assert!(!lit(6, 10) && !lit(14, 10));
        assert!(!lit(10, 9) && !lit(10, 11));
        assert_eq!(streak.get_pixel(10, 10).0[0], 255 / 7);
    }

    #[test]
    fn six_thirteen_groups_split_after_the_prefix() {
        let number = "6222020200112345678";
        assert_eq!(
            Grouping::SixThirteen.groups(number),
            ["622202", "0200112345678"]
        );
        assert_eq!(
            Grouping::Four19.groups(number),
            ["6222", "0202", "0011", "2345", "678"]
        );
    }
}
