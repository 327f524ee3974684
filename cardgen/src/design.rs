//! The design mode: cards drawn from how real cards are designed, not from what any reader
//! finds hard. Each card takes a background (gradients, a photo, a dark or a pastel face), some of
//! the patterns printers put on cards (guilloche lines and rosettes, speckle and glitter, a
//! holographic patch, brand marks anywhere, whatever network the number is), a way of printing
//! the number (embossed metal, foil, tone-on-tone, flat), a layout (the front held level, a
//! portrait front with the number in two to four lines, the back with the number small under
//! the signature panel), and sometimes a hand holding it or a plastic sleeve over it; then it is
//! photographed as the hard mode photographs cards.

use ab_glyph::{FontVec, PxScale};
use image::{GrayImage, Luma, Rgb, RgbImage};
use imageproc::{
    drawing::{draw_filled_circle_mut, draw_filled_rect_mut, draw_text_mut, text_size},
    rect::Rect,
};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64;

use super::{
    Card, CardGenerator, HARD_NUMBER_FONTS, NUMBER_FONTS, Shot, WILD_NUMBER_FONTS, inked_box,
    legibility::digit_boxes, metal_emboss, on_photo, random_colour,
};

/// How the design mode photographs its cards: between the hard and the wild mode, in frames of
/// any shape (portrait cards need them), in every font the generator has.
const DESIGN: Shot = Shot {
    seeds: 0x4445_5349_474e_4544,
    fonts: 0..NUMBER_FONTS.len() + HARD_NUMBER_FONTS.len() + WILD_NUMBER_FONTS.len(),
    size: 0.0..0.0, // each layout sizes its own number
    x: 0..0,
    y: 0..0,
    frame_width: 800..=1400,
    other_frames: true,
    card_share: 0.50..0.85,
    turn: 12.0,
    upside_down: 0.05,
    pull: 0.07,
    light: 0.75..1.1,
    colour_cast: true,
    blur: 0.4..1.4,
    shake: 0.2,
    noise: 3.0..10.0,
    quality: 35..80,
};

/// Card networks' marks, printed wherever the design puts them, whatever the number's network.
const BRANDS: &[&str] = &[
    "VISA",
    "UnionPay",
    "Mastercard",
    "JCB",
    "AMERICAN EXPRESS",
    "DEBIT",
    "PLATINUM",
    "WORLD ELITE",
    "QuickPass",
    "Signature",
];

/// The small print of a card's back.
const BACK_PRINT: &[&str] = &[
    "AUTHORIZED SIGNATURE",
    "NOT VALID UNLESS SIGNED",
    "CUSTOMER SERVICE 95588",
    "THIS CARD IS PROPERTY OF THE ISSUING BANK",
    "IF FOUND PLEASE RETURN TO ANY BRANCH",
    "www.bank.example",
];

/// Skin tones of the hand that holds a card.
const SKIN: &[[u8; 3]] = &[
    [241, 194, 167],
    [224, 172, 138],
    [198, 134, 103],
    [161, 102, 72],
    [110, 72, 50],
];

/// Which side of the card is shown, and which way up it was designed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// The front, held level: the number in one line across the middle.
    Front,
    /// A front designed upright: the number in two to four lines.
    Portrait,
    /// The back: the number small, under the signature panel.
    Back,
}

impl Layout {
    fn name(self) -> &'static str {
        match self {
            Self::Front => "front",
            Self::Portrait => "portrait",
            Self::Back => "back",
        }
    }
}

/// Where the number was printed on the face: its box, to keep hands and marks off it.
#[derive(Clone, Copy)]
struct Span {
    x: i32,
    y: i32,
    width: i32,
    height: i32,
}

impl Span {
    fn overlaps(&self, x: i32, y: i32, width: i32, height: i32) -> bool {
        x < self.x + self.width
            && self.x < x + width
            && y < self.y + self.height
            && self.y < y + height
    }
}

impl CardGenerator {
    /// Design card `seed`: a card as banks design them (see the module's documentation),
    /// photographed by hand. [`Card::features`] names what the design drew.
    pub fn design_card(&self, seed: u64) -> Card {
        let mut rng = Pcg64::seed_from_u64(seed ^ DESIGN.seeds);
        let (grouping, number, (font, number_font)) = self.number(&mut rng, &DESIGN);
        let mut features = Vec::new();

        let layout = match rng.random_range(0..10) {
            0..=5 => Layout::Front,
            6 | 7 => Layout::Portrait,
            _ => Layout::Back,
        };
        features.push(layout.name());
        let (width, height) = match layout {
            Layout::Portrait => (540, 856),
            Layout::Front | Layout::Back => (856, 540),
        };
        let mut face = background(&mut rng, width, height, &mut features);
        if rng.random_bool(0.45) {
            guilloche(&mut rng, &mut face);
            features.push("guilloche");
        }
        if rng.random_bool(0.25) {
            rosette(&mut rng, &mut face);
            features.push("rosette");
        }
        if rng.random_bool(0.3) {
            speckle(&mut rng, &mut face);
            features.push("speckle");
        }

        // The number's lines and where they go.
        let groups = grouping.groups(&number);
        let (lines, size, x, y) = match layout {
            Layout::Portrait => {
                let lines = rng.random_range(2..=groups.len().min(4));
                let per_line = groups.len().div_ceil(lines);
                let lines: Vec<String> = groups
                    .chunks(per_line)
                    .map(|chunk| chunk.join("  "))
                    .collect();
                let size = rng.random_range(40.0..60.0);
                let top = rng.random_range(380..820 - (lines.len() as i32) * (size as i32 * 3 / 2));
                (lines, size, rng.random_range(40..90), top)
            }
            Layout::Back => {
                let size = rng.random_range(24.0..36.0);
                let y = rng.random_range(250..420);
                (vec![groups.join(" ")], size, rng.random_range(40..300), y)
            }
            Layout::Front => {
                let size = rng.random_range(38.0..58.0);
                let y = rng.random_range(250..330);
                (vec![groups.join("  ")], size, rng.random_range(35..90), y)
            }
        };
        match layout {
            Layout::Back => back_of_card(self, &mut rng, &mut face),
            Layout::Front | Layout::Portrait => {
                front_of_card(self, &mut rng, &mut face, layout == Layout::Portrait);
            }
        }
        let room = (width as f32 - x as f32 - 30.0).max(100.0);
        let scale = lines
            .iter()
            .map(|line| text_size(PxScale::from(size), number_font, line).0 as f32)
            .fold(PxScale::from(size), |scale, line_width| {
                if line_width > room {
                    PxScale {
                        x: scale.x.min(size * room / line_width),
                        y: size,
                    }
                } else {
                    scale
                }
            });
        let line_gap = (size * rng.random_range(1.25..1.6)) as i32;
        let span = Span {
            x,
            y,
            width: room as i32,
            height: line_gap * (lines.len() as i32 - 1) + size as i32,
        };
        let ink = ink(&mut rng, &face, span, layout == Layout::Back);
        features.push(ink.name());
        let mut blank = self.legibility.then(|| face.clone());
        let mut number_lines = Vec::new();
        let mut digits = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let line_y = y + line_gap * i as i32;
            number_lines.extend(
                inked_box(x, line_y, scale, number_font, line)
                    .map(|corners| (corners, line.clone())),
            );
            digits.extend(digit_boxes(x, line_y, scale, number_font, line));
            print_number(
                &mut rng,
                &mut face,
                ink,
                x,
                line_y,
                scale,
                number_font,
                line,
            );
        }

        // What lies over the number lies over its blank twin alike.
        let mut over = |rng: &mut Pcg64, draw: &dyn Fn(&mut Pcg64, &mut RgbImage)| {
            if let Some(blank) = &mut blank {
                draw(&mut rng.clone(), blank);
            }
            draw(rng, &mut face);
        };
        if rng.random_bool(0.2) {
            over(&mut rng, &|rng, face| hologram(rng, face, span));
            features.push("hologram");
        }
        if rng.random_bool(0.6) {
            over(&mut rng, &|rng, face| brands(self, rng, face, span));
            features.push("brands");
        }
        match rng.random_range(0..10) {
            0..=1 => {
                over(&mut rng, &|rng, face| hand(rng, face, span));
                features.push("hand");
            }
            2 => {
                over(&mut rng, &sleeve);
                features.push("sleeve");
            }
            _ => {}
        }

        let (photo, placed, legibility) =
            self.photographed(&mut rng, &face, blank, &digits, &DESIGN);
        Card {
            seed,
            number,
            grouping,
            font: font.clone(),
            hard: true,
            expiry: (0, 0),
            features,
            number_lines: on_photo(placed, number_lines),
            legibility,
            jpeg: photo,
        }
    }
}

/// The face's ground: a gradient of two or three colours, a radial glow, a photo-like wash of
/// colour, a dark face or a pastel one.
fn background(
    rng: &mut Pcg64,
    width: u32,
    height: u32,
    features: &mut Vec<&'static str>,
) -> RgbImage {
    match rng.random_range(0..5) {
        0 => {
            features.push("gradient");
            let stops: Vec<Rgb<u8>> = (0..rng.random_range(2..4))
                .map(|_| random_colour(rng, 20..230))
                .collect();
            let angle = rng.random_range(0.0f32..std::f32::consts::PI);
            let (dx, dy) = (angle.cos(), angle.sin());
            let span = width as f32 * dx.abs() + height as f32 * dy.abs();
            RgbImage::from_fn(width, height, |x, y| {
                let along = (x as f32 * dx.abs() + y as f32 * dy.abs()) / span;
                blend_stops(&stops, along)
            })
        }
        1 => {
            features.push("radial");
            let (inner, outer) = (random_colour(rng, 60..240), random_colour(rng, 10..160));
            let centre = (
                rng.random_range(0.0..width as f32),
                rng.random_range(0.0..height as f32),
            );
            let reach = width.max(height) as f32 * rng.random_range(0.6..1.2);
            RgbImage::from_fn(width, height, |x, y| {
                let d = ((x as f32 - centre.0).powi(2) + (y as f32 - centre.1).powi(2)).sqrt();
                mix(inner, outer, (d / reach).min(1.0))
            })
        }
        2 => {
            features.push("photo");
            photo_wash(rng, width, height)
        }
        3 => {
            features.push("dark");
            let ground = random_colour(rng, 8..60);
            let texture = rng.random_range(4.0f32..14.0);
            RgbImage::from_fn(width, height, |x, y| {
                let grain = ((x as f32 * 0.7).sin() * (y as f32 * 0.9).cos()) * texture;
                Rgb(ground
                    .0
                    .map(|c| (f32::from(c) + grain).clamp(0.0, 255.0) as u8))
            })
        }
        _ => {
            features.push("pastel");
            let (from, to) = (random_colour(rng, 170..250), random_colour(rng, 170..250));
            RgbImage::from_fn(width, height, |x, y| {
                mix(from, to, (x + y) as f32 / (width + height) as f32)
            })
        }
    }
}

/// Colours blended smoothly over a coarse grid and a finer one: hills, clouds, a sunset.
fn photo_wash(rng: &mut Pcg64, width: u32, height: u32) -> RgbImage {
    let octaves: Vec<(u32, u32, Vec<Rgb<u8>>, f32)> = [(4, 3, 1.0f32), (11, 7, 0.35)]
        .iter()
        .map(|&(columns, rows, weight)| {
            let cells = (0..(columns + 1) * (rows + 1))
                .map(|_| random_colour(rng, 10..250))
                .collect();
            (columns, rows, cells, weight)
        })
        .collect();
    RgbImage::from_fn(width, height, |x, y| {
        let mut total = [0.0f32; 3];
        let mut weights = 0.0;
        for (columns, rows, cells, weight) in &octaves {
            let gx = x as f32 / width as f32 * *columns as f32;
            let gy = y as f32 / height as f32 * *rows as f32;
            let (cx, cy) = (gx.floor() as u32, gy.floor() as u32);
            let smooth = |t: f32| t * t * (3.0 - 2.0 * t);
            let (tx, ty) = (smooth(gx.fract()), smooth(gy.fract()));
            let at =
                |i: u32, j: u32| cells[((j.min(*rows)) * (columns + 1) + i.min(*columns)) as usize];
            let top = mix(at(cx, cy), at(cx + 1, cy), tx);
            let bottom = mix(at(cx, cy + 1), at(cx + 1, cy + 1), tx);
            let colour = mix(top, bottom, ty);
            for (sum, c) in total.iter_mut().zip(colour.0) {
                *sum += f32::from(c) * weight;
            }
            weights += weight;
        }
        Rgb(total.map(|sum| (sum / weights) as u8))
    })
}

/// Families of fine wavy lines across the face, as on banknotes and many cards.
fn guilloche(rng: &mut Pcg64, face: &mut RgbImage) {
    let (width, height) = (face.width() as f32, face.height() as f32);
    let colour = random_colour(rng, 40..250);
    let alpha = rng.random_range(0.25..0.7);
    let lines = rng.random_range(6..30);
    let start = rng.random_range(0.0..height * 0.8);
    let spacing = rng.random_range(3.0..14.0);
    let amplitude = rng.random_range(5.0..40.0);
    let wavelength = rng.random_range(60.0..300.0);
    let drift = rng.random_range(0.05..0.6);
    let thickness = rng.random_range(0.6..1.8);
    for line in 0..lines {
        let base = start + line as f32 * spacing;
        let phase = line as f32 * drift;
        let mut x = 0.0;
        while x < width {
            let y = base + amplitude * (x / wavelength * std::f32::consts::TAU + phase).sin();
            dab(face, x, y, thickness, colour, alpha);
            x += 0.5;
        }
    }
}

/// Loops around a centre, each a little turned from the last: a rosette.
fn rosette(rng: &mut Pcg64, face: &mut RgbImage) {
    let centre = (
        rng.random_range(0.0..face.width() as f32),
        rng.random_range(0.0..face.height() as f32),
    );
    let colour = random_colour(rng, 40..250);
    let alpha = rng.random_range(0.25..0.6);
    let radius = rng.random_range(80.0..260.0);
    let petals = rng.random_range(5..14) as f32;
    let depth = rng.random_range(0.1..0.4);
    for loop_ in 0..rng.random_range(8..24) {
        let turn = loop_ as f32 * 0.13;
        let steps = (radius * 8.0) as usize;
        for step in 0..steps {
            let theta = step as f32 / steps as f32 * std::f32::consts::TAU;
            let r = radius * (1.0 - depth + depth * (petals * theta + turn).sin());
            dab(
                face,
                centre.0 + r * theta.cos(),
                centre.1 + r * theta.sin(),
                0.8,
                colour,
                alpha,
            );
        }
    }
}

/// Fine dots of a few colours over the whole face: speckle, or glitter when they are bright.
fn speckle(rng: &mut Pcg64, face: &mut RgbImage) {
    let palette: Vec<Rgb<u8>> = (0..rng.random_range(2..6))
        .map(|_| random_colour(rng, 0..255))
        .collect();
    let density = rng.random_range(0.01..0.06);
    let dots = (face.width() as f32 * face.height() as f32 * density) as usize;
    let alpha = rng.random_range(0.4..0.9);
    for _ in 0..dots {
        let colour = palette[rng.random_range(0..palette.len())];
        let (x, y) = (
            rng.random_range(0.0..face.width() as f32),
            rng.random_range(0.0..face.height() as f32),
        );
        dab(face, x, y, rng.random_range(0.5..1.6), colour, alpha);
    }
}

/// The print of a card's front: the chip (upright on a portrait card), the bank's name and
/// sometimes a holder's name.
fn front_of_card(generator: &CardGenerator, rng: &mut Pcg64, face: &mut RgbImage, portrait: bool) {
    let chip = if portrait {
        Rect::at(rng.random_range(60..140), rng.random_range(140..240)).of_size(76, 100)
    } else {
        Rect::at(rng.random_range(60..110), rng.random_range(130..180)).of_size(100, 76)
    };
    draw_filled_rect_mut(face, chip, Rgb([212, 175, 90]));
    let label = label_colour(face, 60, 50);
    let bank = super::BANK_NAMES[rng.random_range(0..super::BANK_NAMES.len())];
    let size = if portrait { 28.0 } else { 36.0 };
    draw_text_mut(
        face,
        label,
        50,
        40,
        PxScale::from(size),
        &generator.label_font,
        bank,
    );
    if !portrait && rng.random_bool(0.5) {
        let holder = super::HOLDERS[rng.random_range(0..super::HOLDERS.len())];
        let y = face.height() as i32 - 70;
        draw_text_mut(
            face,
            label,
            50,
            y,
            PxScale::from(26.0),
            &generator.label_font,
            holder,
        );
    }
}

/// The back: the magnetic stripe, the signature panel and small print.
fn back_of_card(generator: &CardGenerator, rng: &mut Pcg64, face: &mut RgbImage) {
    let stripe_top = rng.random_range(30..60);
    draw_filled_rect_mut(
        face,
        Rect::at(0, stripe_top).of_size(face.width(), 90),
        Rgb([18, 18, 20]),
    );
    let panel = Rect::at(40, stripe_top + 120).of_size(rng.random_range(420..560), 56);
    draw_filled_rect_mut(face, panel, Rgb([235, 232, 222]));
    let code = format!("{:03}", rng.random_range(0..1000));
    let ink = Rgb([30, 30, 30]);
    draw_text_mut(
        face,
        ink,
        panel.left() + panel.width() as i32 + 12,
        panel.top() + 14,
        PxScale::from(26.0),
        &generator.label_font,
        &code,
    );
    let label = label_colour(face, 40, 480);
    for (i, line) in BACK_PRINT.iter().enumerate() {
        if rng.random_bool(0.5) {
            let y = 470 + (i as i32 % 3) * 18;
            let x = 40 + (i as i32 / 3) * 400;
            draw_text_mut(
                face,
                label,
                x,
                y,
                PxScale::from(14.0),
                &generator.label_font,
                line,
            );
        }
    }
}

/// How the number is printed.
#[derive(Clone, Copy)]
enum Ink {
    /// Pressed into the card and foiled.
    Embossed,
    /// Flat foil with a sheen that runs along the number.
    Foil(Rgb<u8>),
    /// The background's own hue, lighter or darker: lavender on violet.
    ToneOnTone(Rgb<u8>),
    /// A plain colour that stands out.
    Flat(Rgb<u8>),
}

impl Ink {
    fn name(self) -> &'static str {
        match self {
            Self::Embossed => "embossed",
            Self::Foil(_) => "foil",
            Self::ToneOnTone(_) => "tone_on_tone",
            Self::Flat(_) => "flat",
        }
    }
}

/// How to print the number on `span` of `face`: apart from the span's mean colour by enough for a
/// person to read it on an even ground. On an uneven one (a gradient, a photo, a shape under the
/// number) part of it can be as light as what lies under it, and fade there (`BENCHMARKS.md`,
/// *Misses looked at digit by digit*). A back's number is printed flat or tone-on-tone, never
/// embossed or foiled.
fn ink(rng: &mut Pcg64, face: &RgbImage, span: Span, back: bool) -> Ink {
    let ground = mean_colour(face, span);
    let lightness = luma(ground);
    match rng.random_range(0..if back { 2 } else { 4 }) {
        0 => Ink::Flat(contrasting(ground)),
        1 => {
            // Lighter on a dark ground, darker on a light one, by enough for a person to read.
            let towards = if lightness < 128.0 {
                Rgb([255; 3])
            } else {
                Rgb([0; 3])
            };
            let mut share = rng.random_range(0.3..0.55);
            let mut colour = mix(ground, towards, share);
            while (luma(colour) - lightness).abs() < 45.0 && share < 0.95 {
                share += 0.05;
                colour = mix(ground, towards, share);
            }
            Ink::ToneOnTone(colour)
        }
        2 => {
            // A foil that stands out from the ground: gold, silver, rose or black.
            let metals = [
                Rgb([212, 175, 95]),
                Rgb([200, 200, 208]),
                Rgb([205, 150, 140]),
                Rgb([40, 40, 44]),
            ];
            let apart = |metal: &Rgb<u8>| (luma(*metal) - lightness).abs();
            let legible: Vec<Rgb<u8>> = metals.into_iter().filter(|m| apart(m) >= 60.0).collect();
            Ink::Foil(if legible.is_empty() {
                contrasting(ground)
            } else {
                legible[rng.random_range(0..legible.len())]
            })
        }
        _ => Ink::Embossed,
    }
}

#[allow(
    clippy::too_many_arguments,
    reason = "one line of print and how to draw it"
)]
fn print_number(
    rng: &mut Pcg64,
    face: &mut RgbImage,
    ink: Ink,
    x: i32,
    y: i32,
    scale: PxScale,
    font: &FontVec,
    line: &str,
) {
    match ink {
        Ink::Embossed => metal_emboss(rng, face, x, y, scale, font, line),
        Ink::Flat(colour) | Ink::ToneOnTone(colour) => {
            draw_text_mut(face, colour, x, y, scale, font, line);
        }
        Ink::Foil(metal) => {
            let mut mask = GrayImage::new(face.width(), face.height());
            draw_text_mut(&mut mask, Luma([255]), x, y, scale, font, line);
            let period = rng.random_range(60.0f32..240.0);
            let phase = rng.random_range(0.0f32..std::f32::consts::TAU);
            for (px, py, pixel) in face.enumerate_pixels_mut() {
                let cover = f32::from(mask.get_pixel(px, py).0[0]) / 255.0;
                if cover == 0.0 {
                    continue;
                }
                let sheen = 0.8 + 0.35 * ((px as f32 + py as f32 * 0.4) / period + phase).sin();
                for (c, m) in pixel.0.iter_mut().zip(metal.0) {
                    let lit = (f32::from(m) * sheen).min(255.0);
                    *c = (f32::from(*c) * (1.0 - cover) + lit * cover) as u8;
                }
            }
        }
    }
}

/// A rainbow patch with a sheen: the hologram of many card fronts, beside the number's end or
/// in a corner.
fn hologram(rng: &mut Pcg64, face: &mut RgbImage, span: Span) {
    let (w, h) = (rng.random_range(90..170), rng.random_range(60..110));
    let (fw, fh) = (face.width() as i32, face.height() as i32);
    let spots = [
        (fw - w - 30, 30),
        (fw - w - 30, fh - h - 30),
        (fw - w - 20, (span.y + span.height + 10).min(fh - h)),
    ];
    let (left, top) = spots[rng.random_range(0..spots.len())];
    let tilt = rng.random_range(0.0f32..6.0);
    for y in top.max(0)..(top + h).min(fh) {
        for x in left.max(0)..(left + w).min(fw) {
            let (u, v) = ((x - left) as f32 / w as f32, (y - top) as f32 / h as f32);
            let inside = ((u - 0.5) / 0.5).powi(2) + ((v - 0.5) / 0.5).powi(2) <= 1.0;
            if !inside {
                continue;
            }
            let hue = (u * tilt + v * 2.0 + (u * 23.0).sin() * 0.1).fract();
            let colour = hue_colour(hue);
            let pixel = face.get_pixel_mut(x as u32, y as u32);
            *pixel = mix(*pixel, colour, 0.8);
        }
    }
}

/// Network marks and card tiers, anywhere but over the number.
fn brands(generator: &CardGenerator, rng: &mut Pcg64, face: &mut RgbImage, span: Span) {
    for _ in 0..rng.random_range(1..4) {
        let brand = BRANDS[rng.random_range(0..BRANDS.len())];
        let size = rng.random_range(22.0..60.0);
        let font = if rng.random_bool(0.5) {
            &generator.label_font
        } else {
            &generator.number_font(rng, 0..NUMBER_FONTS.len()).1
        };
        let (w, h) = text_size(PxScale::from(size), font, brand);
        let (w, h) = (w as i32, h as i32);
        for _ in 0..8 {
            let x = rng.random_range(0..(face.width() as i32 - w).max(1));
            let y = rng.random_range(0..(face.height() as i32 - h).max(1));
            if span.overlaps(x - 4, y - 4, w + 8, h + 8) {
                continue;
            }
            let colour = if rng.random_bool(0.5) {
                contrasting(mean_colour(
                    face,
                    Span {
                        x,
                        y,
                        width: w,
                        height: h,
                    },
                ))
            } else {
                random_colour(rng, 0..255)
            };
            draw_text_mut(face, colour, x, y, PxScale::from(size), font, brand);
            break;
        }
    }
}

/// Fingers and a thumb over the card's edges, off the number.
fn hand(rng: &mut Pcg64, face: &mut RgbImage, span: Span) {
    let skin = Rgb(SKIN[rng.random_range(0..SKIN.len())]);
    let (fw, fh) = (face.width() as f32, face.height() as f32);
    for _ in 0..rng.random_range(1..4) {
        let width = rng.random_range(40.0..70.0);
        let reach = rng.random_range(60.0..150.0);
        // From one of the edges, inwards.
        let (start, direction) = match rng.random_range(0..4) {
            0 => ((rng.random_range(0.0..fw), fh + 10.0), (0.0, -1.0)),
            1 => ((rng.random_range(0.0..fw), -10.0), (0.0, 1.0)),
            2 => ((-10.0, rng.random_range(0.0..fh)), (1.0, 0.0)),
            _ => ((fw + 10.0, rng.random_range(0.0..fh)), (-1.0, 0.0)),
        };
        let end = (start.0 + direction.0 * reach, start.1 + direction.1 * reach);
        let (lo_x, hi_x) = (start.0.min(end.0) - width, start.0.max(end.0) + width);
        let (lo_y, hi_y) = (start.1.min(end.1) - width, start.1.max(end.1) + width);
        if span.overlaps(
            lo_x as i32,
            lo_y as i32,
            (hi_x - lo_x) as i32,
            (hi_y - lo_y) as i32,
        ) {
            continue;
        }
        let steps = (reach / 4.0) as usize;
        for step in 0..=steps {
            let t = step as f32 / steps as f32;
            let centre = (
                (start.0 + (end.0 - start.0) * t) as i32,
                (start.1 + (end.1 - start.1) * t) as i32,
            );
            let shade = 1.0 - 0.12 * t;
            let colour = Rgb(skin.0.map(|c| (f32::from(c) * shade) as u8));
            draw_filled_circle_mut(face, centre, (width / 2.0) as i32, colour);
        }
        // The nail.
        let nail = (
            (end.0 - direction.0 * width * 0.3) as i32,
            (end.1 - direction.1 * width * 0.3) as i32,
        );
        let pale = mix(skin, Rgb([250, 225, 220]), 0.5);
        draw_filled_circle_mut(face, nail, (width / 4.0) as i32, pale);
    }
}

/// A clear plastic sleeve: a faint haze, a glossy streak, and the sleeve's edge.
fn sleeve(rng: &mut Pcg64, face: &mut RgbImage) {
    let haze = rng.random_range(0.08..0.2);
    let tint = mix(Rgb([255; 3]), random_colour(rng, 150..255), 0.3);
    let streak_at = rng.random_range(0.0..face.width() as f32);
    let streak_width = rng.random_range(20.0..70.0);
    let slope = rng.random_range(-0.8f32..0.8);
    let edge = rng.random_range(10..60) as u32;
    for (x, y, pixel) in face.enumerate_pixels_mut() {
        let offset = x as f32 - streak_at - slope * y as f32;
        let gloss = 0.45 * (-(offset / streak_width).powi(2)).exp();
        let mut colour = mix(*pixel, tint, haze);
        colour = mix(colour, Rgb([255; 3]), gloss);
        if y == edge || y == edge + 1 {
            colour = mix(colour, Rgb([255; 3]), 0.5);
        }
        *pixel = colour;
    }
}

/// Paints a soft round dot of `radius` at (`x`, `y`).
fn dab(face: &mut RgbImage, x: f32, y: f32, radius: f32, colour: Rgb<u8>, alpha: f32) {
    let reach = radius.ceil() as i32;
    for dy in -reach..=reach {
        for dx in -reach..=reach {
            let (px, py) = (x.round() as i32 + dx, y.round() as i32 + dy);
            if px < 0 || py < 0 || px >= face.width() as i32 || py >= face.height() as i32 {
                continue;
            }
            let d = ((px as f32 - x).powi(2) + (py as f32 - y).powi(2)).sqrt();
            let cover = (radius + 0.5 - d).clamp(0.0, 1.0) * alpha;
            if cover > 0.0 {
                let pixel = face.get_pixel_mut(px as u32, py as u32);
                *pixel = mix(*pixel, colour, cover);
            }
        }
    }
}

/// `from` moved `share` (0 to 1) of the way to `to`.
fn mix(from: Rgb<u8>, to: Rgb<u8>, share: f32) -> Rgb<u8> {
    Rgb(std::array::from_fn(|c| {
        (f32::from(from.0[c]) * (1.0 - share) + f32::from(to.0[c]) * share) as u8
    }))
}

fn blend_stops(stops: &[Rgb<u8>], along: f32) -> Rgb<u8> {
    let scaled = along.clamp(0.0, 1.0) * (stops.len() - 1) as f32;
    let i = (scaled.floor() as usize).min(stops.len() - 2);
    mix(stops[i], stops[i + 1], scaled - i as f32)
}

fn luma(colour: Rgb<u8>) -> f32 {
    let [r, g, b] = colour.0.map(f32::from);
    0.299 * r + 0.587 * g + 0.114 * b
}

/// Near-white on a dark ground, near-black on a light one.
fn contrasting(ground: Rgb<u8>) -> Rgb<u8> {
    if luma(ground) < 128.0 {
        Rgb([240, 240, 235])
    } else {
        Rgb([25, 25, 30])
    }
}

/// A label's colour where it goes: light on dark, dark on light.
fn label_colour(face: &RgbImage, x: i32, y: i32) -> Rgb<u8> {
    contrasting(mean_colour(
        face,
        Span {
            x,
            y,
            width: 200,
            height: 30,
        },
    ))
}

/// The mean colour of the face within `span`.
fn mean_colour(face: &RgbImage, span: Span) -> Rgb<u8> {
    let mut sum = [0u64; 3];
    let mut count = 0u64;
    let (x0, y0) = (span.x.max(0) as u32, span.y.max(0) as u32);
    let x1 = ((span.x + span.width).max(0) as u32).min(face.width());
    let y1 = ((span.y + span.height).max(0) as u32).min(face.height());
    for y in (y0..y1).step_by(3) {
        for x in (x0..x1).step_by(3) {
            for (total, &c) in sum.iter_mut().zip(&face.get_pixel(x, y).0) {
                *total += u64::from(c);
            }
            count += 1;
        }
    }
    Rgb(sum.map(|total| (total / count.max(1)) as u8))
}

/// A fully saturated colour of `hue` (0 to 1).
fn hue_colour(hue: f32) -> Rgb<u8> {
    let h = hue.rem_euclid(1.0) * 6.0;
    let x = 1.0 - (h % 2.0 - 1.0).abs();
    let (r, g, b) = match h as u32 {
        0 => (1.0, x, 0.0),
        1 => (x, 1.0, 0.0),
        2 => (0.0, 1.0, x),
        3 => (0.0, x, 1.0),
        4 => (x, 0.0, 1.0),
        _ => (1.0, 0.0, x),
    };
    Rgb([r, g, b].map(|v: f32| (55.0 + v * 200.0) as u8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tone_on_tone_ink_stays_legible() {
        let mut rng = Pcg64::seed_from_u64(3);
        for shade in [20u8, 90, 128, 170, 240] {
            let face = RgbImage::from_pixel(200, 100, Rgb([shade, shade / 2, shade]));
            let span = Span {
                x: 0,
                y: 0,
                width: 200,
                height: 100,
            };
            for _ in 0..20 {
                if let Ink::ToneOnTone(colour) = ink(&mut rng, &face, span, false) {
                    let ground = mean_colour(&face, span);
                    assert!((luma(colour) - luma(ground)).abs() >= 40.0, "{shade}");
                }
            }
        }
    }
}
