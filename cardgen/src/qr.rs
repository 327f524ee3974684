//! Invoice title QR codes as users show them, for the gateway's QR decoding: a screenshot of the
//! "my invoice titles" page, a photo of a phone's screen, a print on paper, the code small in a
//! large frame, and several codes in one image of which one is the invoice title's. The scenes
//! were fixed from how such codes reach a service before any decoder ran on them.

use std::fmt;

use ab_glyph::PxScale;
use image::{ImageFormat, Rgb, RgbImage, imageops};
use imageproc::{
    drawing::{draw_filled_rect_mut, draw_text_mut, text_size},
    geometric_transformations::Projection,
    noise::gaussian_noise,
    rect::Rect,
};
use qrcode::{EcLevel, QrCode};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64;

use crate::{CardGenerator, jpeg, random_colour, warp_onto};

/// How the code reaches the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QrScene {
    /// A phone's screenshot of the page (720-1170 pixels wide), as a PNG, or as a JPEG shrunk by
    /// a chat app.
    Screenshot,
    /// A camera's photo of a phone showing the page: the screen turned up to 25° and in
    /// perspective, moiré from the screen's pixel grid, glare, blur and noise.
    ScreenPhoto,
    /// The code printed on paper beside the title, photographed on a table.
    Paper,
    /// The code 80-160 pixels across in a frame up to 3,000 pixels wide.
    Small,
    /// Two to four codes on one poster or screen, one of them the invoice title's.
    Several,
}

impl QrScene {
    pub const ALL: [Self; 5] = [
        Self::Screenshot,
        Self::ScreenPhoto,
        Self::Paper,
        Self::Small,
        Self::Several,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Screenshot => "screenshot",
            Self::ScreenPhoto => "screen-photo",
            Self::Paper => "paper",
            Self::Small => "small",
            Self::Several => "several",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|scene| scene.name() == name)
    }

    /// Seeds of one scene draw other images than the same seeds of another.
    fn seeds(self) -> u64 {
        0x51_0000_0000 + self as u64
    }
}

impl fmt::Display for QrScene {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A generated image and what it holds.
pub struct QrImage {
    pub seed: u64,
    pub scene: QrScene,
    /// The text of the code that matters: the invoice title's, or the one given.
    pub text: String,
    /// The texts of the other codes in the image.
    pub others: Vec<String>,
    /// The image file, a PNG or a JPEG.
    pub bytes: Vec<u8>,
}

impl fmt::Debug for QrImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QrImage")
            .field("seed", &self.seed)
            .field("scene", &self.scene)
            .field("others", &self.others.len())
            .field("bytes", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

/// The text of a WeChat invoice title code: the page that lists the user's titles, with the key
/// that lets a merchant's app read them.
pub fn invoice_title_text(seed: u64) -> String {
    let mut rng = Pcg64::seed_from_u64(seed ^ 0x5ca1_ab1e);
    let len = rng.random_range(32..48);
    format!(
        "https://mp.weixin.qq.com/intp/invoice/usertitlewxa?action=list_auth&invoice_key={}",
        token(&mut rng, len)
    )
}

/// The text of another code found beside invoice titles: a payment, a website, a Wi-Fi login, a
/// mini program.
pub fn other_code_text(seed: u64) -> String {
    let mut rng = Pcg64::seed_from_u64(seed ^ 0x07e5_c0de);
    match rng.random_range(0..4) {
        0 => format!("wxp://f2f0{}", token(&mut rng, 28)),
        1 => format!(
            "https://shop.example.com/menu?table={}",
            rng.random_range(1..60)
        ),
        2 => format!(
            "WIFI:S:Guest-{};T:WPA;P:{};;",
            rng.random_range(100..999),
            token(&mut rng, 12)
        ),
        _ => {
            let len = rng.random_range(16..28);
            format!("https://mp.weixin.qq.com/a/~{}", token(&mut rng, len))
        }
    }
}

fn token(rng: &mut Pcg64, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (0..len)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

impl CardGenerator {
    /// Image `seed` of `scene`, holding an invoice title code: the same seed gives the same image.
    pub fn qr_image(&self, scene: QrScene, seed: u64) -> QrImage {
        self.qr_image_of(scene, seed, &invoice_title_text(seed))
    }

    /// Image `seed` of `scene` whose main code holds `text`.
    pub fn qr_image_of(&self, scene: QrScene, seed: u64, text: &str) -> QrImage {
        let mut rng = Pcg64::seed_from_u64(seed ^ scene.seeds());
        let mut others = Vec::new();
        let bytes = match scene {
            QrScene::Screenshot => {
                let shot = self.screenshot(&mut rng, text);
                if rng.random_bool(0.5) {
                    png(&shot)
                } else {
                    // Sent through a chat app: shrunk and recompressed.
                    let width = rng.random_range(540..=shot.width().min(1080));
                    let height = shot.height() * width / shot.width();
                    let shrunk =
                        imageops::resize(&shot, width, height, imageops::FilterType::Triangle);
                    jpeg(&shrunk, rng.random_range(60..90))
                }
            }
            QrScene::ScreenPhoto => {
                let shot = self.screenshot(&mut rng, text);
                jpeg(
                    &self.screen_photo(&mut rng, &shot),
                    rng.random_range(55..90),
                )
            }
            QrScene::Paper => jpeg(&self.paper(&mut rng, text), rng.random_range(55..90)),
            QrScene::Small => jpeg(&self.small(&mut rng, text), rng.random_range(65..92)),
            QrScene::Several => {
                others = (0..rng.random_range(1..4))
                    .map(|i| other_code_text(seed.wrapping_mul(7).wrapping_add(i)))
                    .collect();
                jpeg(
                    &self.several(&mut rng, text, &others),
                    rng.random_range(60..92),
                )
            }
        };
        QrImage {
            seed,
            scene,
            text: text.to_owned(),
            others,
            bytes,
        }
    }

    /// The "my invoice titles" page as a phone shows it: a title bar, the company's name and tax
    /// number, the code, and what to do with it.
    fn screenshot(&self, rng: &mut Pcg64, text: &str) -> RgbImage {
        let width = [720u32, 750, 828, 1080, 1170][rng.random_range(0..5)];
        let height = width * rng.random_range(195..217) / 100;
        let grey = Rgb([237, 237, 237]);
        let mut page = RgbImage::from_pixel(width, height, grey);
        let unit = width as f32 / 375.0;
        let dark = Rgb([25, 25, 25]);
        let muted = Rgb([128, 128, 128]);
        self.line(
            &mut page,
            18.0 * unit,
            6.0 * unit,
            13.0 * unit,
            dark,
            "9:41",
        );
        self.line(
            &mut page,
            130.0 * unit,
            50.0 * unit,
            17.0 * unit,
            dark,
            "Invoice title",
        );
        let panel_top = (100.0 * unit) as i32;
        let panel = Rect::at((16.0 * unit) as i32, panel_top)
            .of_size(width - (32.0 * unit) as u32, (height as f32 * 0.62) as u32);
        draw_filled_rect_mut(&mut page, panel, Rgb([255, 255, 255]));
        let company = COMPANIES[rng.random_range(0..COMPANIES.len())];
        self.line(
            &mut page,
            36.0 * unit,
            124.0 * unit,
            18.0 * unit,
            dark,
            company,
        );
        let tax = format!("Tax number 91440300{}", token(rng, 10).to_uppercase());
        self.line(
            &mut page,
            36.0 * unit,
            154.0 * unit,
            13.0 * unit,
            muted,
            &tax,
        );

        let code = qr(text, rng);
        let side = (width as f32 * rng.random_range(0.5..0.68)) as u32;
        let module = (side / code.width() as u32).max(2);
        let drawn = render(&code, module, 0);
        let x = (width - drawn.width()) / 2;
        let y = (200.0 * unit) as u32;
        imageops::overlay(&mut page, &drawn, i64::from(x), i64::from(y));
        let below = (y + drawn.height()) as f32 + 24.0 * unit;
        self.line(
            &mut page,
            60.0 * unit,
            below,
            13.0 * unit,
            muted,
            "Show this code to the merchant to fill in your invoice",
        );
        page
    }

    /// `screen` on a phone, photographed: bezel, moiré, turned, in perspective, glare, blur.
    fn screen_photo(&self, rng: &mut Pcg64, screen: &RgbImage) -> RgbImage {
        // Moiré: the camera samples the screen's pixel grid a little off its own.
        let period = rng.random_range(2.5f32..7.0);
        let direction = rng.random_range(0.0f32..std::f32::consts::PI);
        let depth = rng.random_range(0.04f32..0.18);
        let (dx, dy) = (direction.cos() / period, direction.sin() / period);
        let mut lit = screen.clone();
        for (x, y, pixel) in lit.enumerate_pixels_mut() {
            let wave = 1.0
                - depth
                    * (0.5 + 0.5 * (std::f32::consts::TAU * (x as f32 * dx + y as f32 * dy)).sin());
            for c in &mut pixel.0 {
                *c = (f32::from(*c) * wave) as u8;
            }
        }
        let bezel = (screen.width() / 20).max(8);
        let mut phone = RgbImage::from_pixel(
            screen.width() + 2 * bezel,
            screen.height() + 2 * bezel,
            Rgb([12, 12, 14]),
        );
        imageops::overlay(&mut phone, &lit, i64::from(bezel), i64::from(bezel));

        let (width, height) =
            [(1280u32, 960u32), (1600, 1200), (1080, 1440), (1920, 1080)][rng.random_range(0..4)];
        let mut photo = RgbImage::from_pixel(width, height, random_colour(rng, 40..200));
        self.clutter(rng, &mut photo);
        let share = rng.random_range(0.55f32..0.9);
        let scale = (share * height as f32 / phone.height() as f32)
            .min(0.9 * width as f32 / phone.width() as f32);
        place(rng, &mut photo, &phone, scale, 25.0, 0.08);
        glare(rng, &mut photo, 0.2..0.6);
        developed(rng, &photo, 0.4..1.8, 2.0..7.0)
    }

    /// The code printed on paper beside the title, on a table.
    fn paper(&self, rng: &mut Pcg64, text: &str) -> RgbImage {
        let code = qr(text, rng);
        let module = rng.random_range(4..9);
        let drawn = render(&code, module, 4);
        let sheet_width = drawn.width() * 2 + 80;
        let mut sheet =
            RgbImage::from_pixel(sheet_width, drawn.height() + 120, Rgb([246, 244, 236]));
        imageops::overlay(&mut sheet, &drawn, 20, 60);
        let ink = Rgb([30, 30, 40]);
        let company = COMPANIES[rng.random_range(0..COMPANIES.len())];
        self.line(&mut sheet, 30.0, 16.0, 28.0, ink, "Invoice title");
        let right = (drawn.width() + 40) as f32;
        self.line(&mut sheet, right, 80.0, 22.0, ink, company);
        self.line(
            &mut sheet,
            right,
            120.0,
            18.0,
            ink,
            "Scan to fill in the invoice",
        );

        let (width, height) = (rng.random_range(1000..1700), rng.random_range(750..1250));
        let mut photo = RgbImage::from_pixel(width, height, random_colour(rng, 50..210));
        self.clutter(rng, &mut photo);
        let scale = rng.random_range(0.5f32..0.85) * width as f32 / sheet.width() as f32;
        let scale = scale.min(0.85 * height as f32 / sheet.height() as f32);
        place(rng, &mut photo, &sheet, scale, 12.0, 0.05);
        glare(rng, &mut photo, 0.0..0.35);
        developed(rng, &photo, 0.3..1.5, 2.0..8.0)
    }

    /// A large frame of a counter with the code, 80-160 pixels across, somewhere in it.
    fn small(&self, rng: &mut Pcg64, text: &str) -> RgbImage {
        let width = rng.random_range(1600..3000);
        let height = width * 3 / 4;
        let mut photo = RgbImage::from_pixel(width, height, random_colour(rng, 60..220));
        self.clutter(rng, &mut photo);
        let code = qr(text, rng);
        let drawn = render(&code, 6, 4);
        let across = rng.random_range(80.0f32..160.0);
        let scale = across / (6 * code.width()) as f32;
        place(rng, &mut photo, &drawn, scale, 10.0, 0.03);
        developed(rng, &photo, 0.2..0.9, 1.0..5.0)
    }

    /// A poster or screen with the invoice title's code among `others`, side by side.
    fn several(&self, rng: &mut Pcg64, text: &str, others: &[String]) -> RgbImage {
        let mut texts: Vec<&str> = others.iter().map(String::as_str).collect();
        texts.insert(rng.random_range(0..=texts.len()), text);
        let module = rng.random_range(4..8);
        let drawn: Vec<RgbImage> = texts
            .iter()
            .map(|text| render(&qr(text, rng), module, 4))
            .collect();
        let cell = drawn.iter().map(RgbImage::width).max().unwrap_or(0) + 40;
        let columns = if texts.len() > 2 {
            2
        } else {
            texts.len() as u32
        };
        let rows = (texts.len() as u32).div_ceil(columns);
        let mut poster = RgbImage::from_pixel(
            cell * columns + 40,
            (cell + 50) * rows + 90,
            Rgb([250, 250, 250]),
        );
        let ink = Rgb([40, 40, 40]);
        self.line(&mut poster, 30.0, 20.0, 34.0, ink, "Pay, order, invoice");
        for (i, code) in drawn.iter().enumerate() {
            let (column, row) = (i as u32 % columns, i as u32 / columns);
            let (x, y) = (40 + column * cell, 90 + row * (cell + 50));
            imageops::overlay(&mut poster, code, i64::from(x), i64::from(y));
            let label = ["Invoice title", "Pay", "Menu", "Wi-Fi"][rng.random_range(0..4)];
            self.line(
                &mut poster,
                x as f32 + 10.0,
                (y + code.height()) as f32 + 6.0,
                24.0,
                ink,
                label,
            );
        }
        let width = rng.random_range(1200..2000);
        let height = width * 3 / 4;
        let mut photo = RgbImage::from_pixel(width, height, random_colour(rng, 60..200));
        let scale = (rng.random_range(0.6f32..0.9) * width as f32 / poster.width() as f32)
            .min(0.9 * height as f32 / poster.height() as f32);
        place(rng, &mut photo, &poster, scale, 10.0, 0.04);
        developed(rng, &photo, 0.2..1.2, 1.0..5.0)
    }

    /// One line of text, `size` pixels high, its top left at (`x`, `y`).
    fn line(&self, image: &mut RgbImage, x: f32, y: f32, size: f32, ink: Rgb<u8>, text: &str) {
        let scale = PxScale::from(size);
        let (width, _) = text_size(scale, &self.label_font, text);
        if x as u32 + width < image.width() {
            draw_text_mut(
                image,
                ink,
                x as i32,
                y as i32,
                scale,
                &self.label_font,
                text,
            );
        }
    }
}

/// The names on the generated titles.
const COMPANIES: &[&str] = &[
    "Shenzhen Tencent Computer Systems Co., Ltd.",
    "Hangzhou Westlake Tea Trading Co., Ltd.",
    "Zhang San",
    "Beijing Bluesky Software Ltd.",
    "Guangzhou Pearl River Logistics Co., Ltd.",
    "Li Si",
];

/// `text` as a QR code at the error correction levels such pages use.
fn qr(text: &str, rng: &mut Pcg64) -> QrCode {
    let level = [EcLevel::L, EcLevel::M, EcLevel::Q][rng.random_range(0..3)];
    // Any text here is at most a few hundred bytes, which every level holds.
    QrCode::with_error_correction_level(text, level)
        .or_else(|_| QrCode::new(text))
        .unwrap_or_else(|err| unreachable!("a short text always fits a QR code: {err}"))
}

/// `code` drawn black on white, `module` pixels a module, with `quiet` modules of margin.
fn render(code: &QrCode, module: u32, quiet: u32) -> RgbImage {
    let modules = code.width() as u32;
    let colours = code.to_colors();
    let side = (modules + 2 * quiet) * module;
    RgbImage::from_fn(side, side, |x, y| {
        let (mx, my) = (x / module, y / module);
        let dark = mx >= quiet
            && my >= quiet
            && mx < quiet + modules
            && my < quiet + modules
            && colours[((my - quiet) * modules + mx - quiet) as usize] == qrcode::Color::Dark;
        if dark {
            Rgb([0, 0, 0])
        } else {
            Rgb([255, 255, 255])
        }
    })
}

/// Lays `item`, scaled by `scale`, on `photo` near its middle: turned up to `turn` degrees, each
/// corner pulled by up to `pull` of its width.
fn place(rng: &mut Pcg64, photo: &mut RgbImage, item: &RgbImage, scale: f32, turn: f32, pull: f32) {
    let (width, height) = (photo.width() as f32, photo.height() as f32);
    let (w, h) = (item.width() as f32 * scale, item.height() as f32 * scale);
    let angle = rng.random_range(-turn..turn).to_radians();
    let room_x = ((width - w) / 2.0 * 0.6).max(0.0);
    let room_y = ((height - h) / 2.0 * 0.6).max(0.0);
    let centre = (
        width / 2.0 + rng.random_range(-room_x..=room_x),
        height / 2.0 + rng.random_range(-room_y..=room_y),
    );
    let pulled = w * pull;
    let (cos, sin) = (angle.cos(), angle.sin());
    let mut corner = |dx: f32, dy: f32| {
        let (dx, dy) = (
            dx + rng.random_range(-pulled..=pulled),
            dy + rng.random_range(-pulled..=pulled),
        );
        (
            centre.0 + dx * cos - dy * sin,
            centre.1 + dx * sin + dy * cos,
        )
    };
    let to = [
        corner(-w / 2.0, -h / 2.0),
        corner(w / 2.0, -h / 2.0),
        corner(w / 2.0, h / 2.0),
        corner(-w / 2.0, h / 2.0),
    ];
    let (iw, ih) = (item.width() as f32, item.height() as f32);
    let from = [(0.0, 0.0), (iw, 0.0), (iw, ih), (0.0, ih)];
    if let Some(projection) = Projection::from_control_points(from, to) {
        warp_onto(photo, item, projection);
    }
}

/// `photo` as the camera saves it: blurred by a σ drawn from `blur`, with noise of a σ drawn from
/// `noise`.
fn developed(
    rng: &mut Pcg64,
    photo: &RgbImage,
    blur: std::ops::Range<f32>,
    noise: std::ops::Range<f64>,
) -> RgbImage {
    let photo = imageops::blur(photo, rng.random_range(blur));
    gaussian_noise(
        &photo,
        0.0,
        rng.random_range(noise),
        rng.random_range(0..u64::MAX),
    )
}

/// One or two soft bright spots, of a strength drawn from `strength`.
fn glare(rng: &mut Pcg64, photo: &mut RgbImage, strength: std::ops::Range<f32>) {
    if strength.is_empty() {
        return;
    }
    let (width, height) = (photo.width() as f32, photo.height() as f32);
    let spots: Vec<(f32, f32, f32, f32)> = (0..rng.random_range(1..3))
        .map(|_| {
            (
                rng.random_range(0.15..0.85) * width,
                rng.random_range(0.15..0.85) * height,
                rng.random_range(0.04..0.15) * width,
                rng.random_range(strength.clone()),
            )
        })
        .collect();
    for (x, y, pixel) in photo.enumerate_pixels_mut() {
        let glare = spots
            .iter()
            .map(|&(cx, cy, radius, strength)| {
                let d2 = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)) / (radius * radius);
                strength * (-d2 / 2.0).exp()
            })
            .fold(0.0f32, f32::max);
        for c in &mut pixel.0 {
            *c = (f32::from(*c) + (255.0 - f32::from(*c)) * glare) as u8;
        }
    }
}

fn png(image: &RgbImage) -> Vec<u8> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    // Encoding an in-memory RGB image into a Vec cannot fail.
    if let Err(err) = image.write_to(&mut bytes, ImageFormat::Png) {
        unreachable!("PNG encoding into memory failed: {err}");
    }
    bytes.into_inner()
}
