//! Synthetic bank card photos whose numbers are known, to test and measure OCR providers.
//!
//! [`CardGenerator::card`] renders card `seed` deterministically: a card-like face (gradient,
//! shapes, chip, bank name, expiry, holder), the number in 4-4-4-4, 4-4-4-4-3 or 6-13 groups with
//! embossed shading in one of several fonts, then the card on a table photographed a little off
//! (rotation, perspective), with blur, noise and JPEG artefacts. About one card in eight is a hard
//! case: low contrast, more blur, a smaller number or a stronger tilt.
//!
//! The fonts are Debian's (`scripts/fetch-fonts.sh` unpacks them into `target/fonts`).

use std::{
    fmt,
    path::{Path, PathBuf},
};

use ab_glyph::{FontVec, PxScale};
use image::{ImageBuffer, Rgb, RgbImage, codecs::jpeg::JpegEncoder, imageops};
use imageproc::{
    drawing::{draw_filled_circle_mut, draw_filled_rect_mut, draw_text_mut, text_size},
    geometric_transformations::{Border, Interpolation, Projection, warp},
    noise::gaussian_noise,
    rect::Rect,
};
use rand::{Rng, RngExt, SeedableRng};
use rand_pcg::Pcg64;

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
/// The font of the smaller print: bank name, expiry, holder.
const LABEL_FONT: &str = "DejaVuSans.ttf";

/// Issuer prefixes of common Chinese and international cards.
const PREFIXES: &[&str] = &[
    "622202", "621700", "622848", "621226", "622588", "436742", "625807", "402674", "518710",
    "620522", "623668", "356833", "622609", "601382",
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
}

impl Grouping {
    fn digits(self) -> usize {
        match self {
            Self::Four16 => 16,
            Self::Four19 | Self::SixThirteen => 19,
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
        }
    }
}

/// A rendered card and what is on it.
pub struct Card {
    pub seed: u64,
    /// The number printed on the card, digits only.
    pub number: String,
    pub grouping: Grouping,
    pub font: &'static str,
    /// Whether this is one of the deliberately hard cases.
    pub hard: bool,
    /// The photo, as a JPEG file.
    pub jpeg: Vec<u8>,
}

impl fmt::Debug for Card {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Card")
            .field("seed", &self.seed)
            .field("number", &self.number)
            .field("grouping", &self.grouping)
            .field("font", &self.font)
            .field("hard", &self.hard)
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
    number_fonts: Vec<(&'static str, FontVec)>,
    label_font: FontVec,
}

impl CardGenerator {
    /// The directory `scripts/fetch-fonts.sh` fills by default, or `CARDGEN_FONTS_DIR`.
    pub fn default_fonts_dir() -> PathBuf {
        std::env::var_os("CARDGEN_FONTS_DIR").map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fonts"),
            PathBuf::from,
        )
    }

    /// Loads the fonts from `dir`.
    pub fn new(dir: &Path) -> Result<Self, FontError> {
        let load = |name: &str| {
            let path = dir.join(name);
            let bytes = std::fs::read(&path).map_err(|err| {
                FontError(format!(
                    "cannot read {}: {err} (run scripts/fetch-fonts.sh)",
                    path.display()
                ))
            })?;
            FontVec::try_from_vec(bytes)
                .map_err(|err| FontError(format!("{} is not a font: {err}", path.display())))
        };
        Ok(Self {
            number_fonts: NUMBER_FONTS
                .iter()
                .map(|&name| Ok((name, load(name)?)))
                .collect::<Result<_, FontError>>()?,
            label_font: load(LABEL_FONT)?,
        })
    }

    /// Card number `seed`: the same seed gives the same card.
    pub fn card(&self, seed: u64) -> Card {
        let mut rng = Pcg64::seed_from_u64(seed);
        let grouping =
            [Grouping::Four16, Grouping::Four19, Grouping::SixThirteen][rng.random_range(0..3)];
        let number = luhn_number(&mut rng, grouping.digits());
        let (font, number_font) = &self.number_fonts[rng.random_range(0..self.number_fonts.len())];
        let hard = rng.random_bool(0.125);

        let mut face = self.face(&mut rng);
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
        emboss(&mut face, ink, x, y, scale, number_font, &text);

        let photo = self.photograph(&mut rng, &face, hard);
        let quality = rng.random_range(if hard { 35..60 } else { 55..92 });
        Card {
            seed,
            number,
            grouping,
            font,
            hard,
            jpeg: jpeg(&photo, quality),
        }
    }

    /// A photo of a card-like object with print but no card number: a loyalty card.
    pub fn non_card(&self, seed: u64) -> Vec<u8> {
        let mut rng = Pcg64::seed_from_u64(seed);
        let mut face = self.face(&mut rng);
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
        let photo = self.photograph(&mut rng, &face, false);
        jpeg(&photo, 85)
    }

    /// The card's face, 856×540 (85.6 × 54 mm at 10 px/mm), without its number.
    fn face(&self, rng: &mut Pcg64) -> RgbImage {
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
        let expiry = format!(
            "VALID THRU {:02}/{:02}",
            rng.random_range(1..13),
            rng.random_range(26..36)
        );
        draw_text_mut(
            &mut face,
            label,
            300,
            400,
            PxScale::from(22.0),
            &self.label_font,
            &expiry,
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
        face
    }

    /// The face lying on a table, photographed from a little off: tilt, perspective, blur, noise.
    fn photograph(&self, rng: &mut Pcg64, face: &RgbImage, hard: bool) -> RgbImage {
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
        let photo = if sigma > 0.3 {
            imageops::blur(&photo, sigma)
        } else {
            photo
        };
        gaussian_noise(&photo, 0.0, rng.random_range(2.0..8.0), rng.next_u64())
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

/// A random number of `digits` digits with a common issuer prefix and a valid Luhn check digit.
/// The check digit is computed here, not with ocrgate's own Luhn code: the generator is the oracle
/// the gateway is tested against, so it shares none of its code.
fn luhn_number(rng: &mut Pcg64, digits: usize) -> String {
    let mut number = PREFIXES[rng.random_range(0..PREFIXES.len())].to_owned();
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
    fn numbers_have_their_grouping_length_and_pass_luhn() {
        let mut rng = Pcg64::seed_from_u64(7);
        for digits in [16, 19] {
            let number = luhn_number(&mut rng, digits);
            assert_eq!(number.len(), digits);
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
