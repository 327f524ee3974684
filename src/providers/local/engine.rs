//! PaddleOCR's PP-OCR text detection (DB) and recognition (CTC) on ONNX Runtime: the PP-OCRv6
//! small models, which keep PP-OCRv4's inputs and outputs, their weights trained on to find card
//! numbers' lines and to read them (`data/card-detector.onnx`, `scripts/card-detector/`;
//! `data/card-recogniser.onnx`, `scripts/card-recogniser/`).
//!
//! Pre- and post-processing follow PaddleOCR's own: pixels scaled to `[-1, 1]` in BGR order, a
//! probability map thresholded at 0.3 whose regions are kept when their mean probability reaches
//! 0.5 and grown by `area × 1.6 / perimeter`, line crops resized to 48 pixels high, greedy CTC
//! decoding with the dictionary the recognition model carries in its metadata.
//!
//! Each region's second moments give the band its text runs along (centre, angle, length and
//! thickness), as PaddleOCR's rotated boxes do: a line turned a few degrees, as on a card held
//! off square, is cut out along its own direction and handed to the recogniser level, without the
//! print above and below it that an axis-aligned box of the same line takes in. Each line also
//! keeps its axis-aligned box, and each reading estimates how far its text is turned overall, so
//! that a caller may turn the image upright and read it again.
//!
//! A line with digits read with doubt is shown to PaddleOCR's text direction classifier; when it
//! takes the line more likely upside down than not, the line is read turned over too, and the
//! reading the recogniser is surer of is kept: a card photographed from its far side, among
//! clutter that is not.
//!
//! A line read as a group of digits is read a second time by ocrgate's own recogniser of card
//! numbers' lines ([`CARD_DIGITS_MODEL`]), which knows nothing but digits and spaces; the picker
//! weighs that reading where PaddleOCR's settles nothing.

use std::path::Path;

use image::{
    GrayImage, Luma, Rgb, RgbImage,
    imageops::{self, FilterType},
};
use imageproc::{
    geometric_transformations::{Border, Interpolation, warp_into_with},
    region_labelling::{Connectivity, connected_components},
};
use ort::{
    environment::Environment,
    session::{
        Session,
        builder::{GraphOptimizationLevel, SessionBuilder},
    },
    value::TensorRef,
};

/// How the engine looks at an image.
#[derive(Debug, Clone, Copy)]
pub struct Look {
    /// The longer side of the image the detector sees. Detection time grows with its square.
    pub detection_side: u32,
    /// How much wider than its aspect a line is given to the recogniser. Narrow digits get more
    /// of its steps, so a repeated digit (`00`) is not read as one; each step costs time.
    pub line_stretch: f32,
    /// The colour channel seen alone, in grey, by the detector and the recogniser; `None`, the
    /// image in colour. Print as light as its ground but of another hue stands out in one of them.
    pub channel: Option<Channel>,
}

/// One of an image's colour channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Red,
    Green,
    Blue,
}

impl Channel {
    pub const ALL: [Self; 3] = [Self::Red, Self::Green, Self::Blue];
}

impl Look {
    /// `image` (the detector's input, or a line cut out) as this look sees it: in colour, or its
    /// channel alone in grey. Only what is read is changed, never a copy of the whole image.
    fn seen(self, mut image: RgbImage) -> RgbImage {
        if let Some(channel) = self.channel {
            for pixel in image.pixels_mut() {
                *pixel = Rgb([pixel.0[channel as usize]; 3]);
            }
        }
        image
    }
}

/// A first look: card numbers stay several pixels high at this size.
pub const FIRST_LOOK: Look = Look {
    detection_side: 512,
    line_stretch: 1.0,
    channel: None,
};
/// Pixels of the probability map above this are text.
const TEXT_THRESHOLD: f32 = 0.3;
/// A region whose mean probability is below this is dropped.
const BOX_THRESHOLD: f32 = 0.5;
/// How far a region is grown, as PaddleOCR's `unclip_ratio`: the DB model predicts shrunk text.
const UNCLIP_RATIO: f32 = 1.6;
/// Height of the line images the recogniser reads.
const LINE_HEIGHT: u32 = 48;
/// ocrgate's own recogniser of card numbers' lines, in the binary: a small CTC network that reads
/// digits and spaces only, trained on synthetic lines of digits in many fonts, inks, patterns and
/// lights and on lines the reader cut from the generator's photos (`scripts/card-digits/`). Its
/// input is a 1×3×32×W line image in RGB order scaled to `[-1, 1]`, W a multiple of 4; its output
/// the probabilities of the blank, the ten digits and space at each of W/4 steps.
const CARD_DIGITS_MODEL: &[u8] = include_bytes!("../../../data/card-digits.onnx");
/// Height of the line images [`CARD_DIGITS_MODEL`] reads.
const CARD_DIGITS_HEIGHT: u32 = 32;
/// Longer line images are squeezed to this width: 19 digits in four groups take some 600.
const CARD_DIGITS_MAX_WIDTH: u32 = 1024;
/// [`CARD_DIGITS_MODEL`]'s classes: the CTC blank, the ten digits, space.
const CARD_DIGITS_CHARSET: [&str; 12] = ["", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", " "];
/// The index of each digit, `0` to `9`, among [`CARD_DIGITS_CHARSET`].
const CARD_DIGITS_INDICES: [usize; 10] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
/// Narrower line images are padded to this width, as in PaddleOCR's inference.
const MIN_LINE_WIDTH: u32 = 64;
/// Longer lines are squeezed to this width; card numbers are far shorter.
const MAX_LINE_WIDTH: u32 = 1600;
/// Most lines read in one image: a card face has a dozen or two.
const MAX_LINES: usize = 48;
/// A line turned further than this (45°) runs nearer up and down than across: it is not a card
/// held off square (an image stored sideways says so in its EXIF orientation, which decoding
/// honours), and it is read in its axis-aligned box. Up to it, a line is cut out along its
/// direction, however far a hand or the perspective turned it.
const MAX_LINE_TILT: f64 = std::f64::consts::FRAC_PI_4;
/// A region this many times longer than thick has a direction worth following.
const DIRECTED: f64 = 2.0;
/// A line with digits whose least certain character was read with less probability than this is
/// shown to the direction classifier; one read with more is the right way up.
const DOUBTFUL_LINE: f32 = 0.8;
/// Digits a line must read as to be shown to the direction classifier: upside down, a card's
/// other print does not matter, and its number's groups still read as some digits.
const TURNED_DIGITS: usize = 2;
/// Digits a line must read as, and nothing else but spaces, to be read by [`CARD_DIGITS_MODEL`]
/// too: a group of a card number.
const GROUP_DIGITS: usize = 4;
/// The direction classifier's input: lines resized to 48 pixels high, padded or squeezed to 192
/// wide, as in PaddleOCR.
const DIRECTION_WIDTH: u32 = 192;
/// The classifier's probability of "upside down" above which a line is read turned over too. Lower
/// than PaddleOCR's `cls_thresh` (0.9): digits look much alike either way up, so the classifier is
/// seldom sure of a number's line, and the recogniser's certainty decides between the readings.
const UPSIDE_DOWN: f32 = 0.5;
/// How much surer, in mean probability, a line's reading turned over must be to be kept: `0908`
/// reads `8060` turned over, about as surely, and a number's digits would be turned round.
const TURNED_MARGIN: f32 = 0.1;
/// Lines this many line heights apart or closer are neighbours, which way up they were read tells
/// which way up the other is: a number's groups are a space apart, its lines a line apart.
const NEIGHBOURS: f32 = 1.5;

/// Where a line of text is in the original image, in pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Bounds {
    pub fn center_y(&self) -> f32 {
        self.y as f32 + self.height as f32 / 2.0
    }

    /// Whether `other` lies wholly within it.
    pub fn contains(self, other: Self) -> bool {
        other.x >= self.x
            && other.y >= self.y
            && other.x + other.width <= self.x + self.width
            && other.y + other.height <= self.y + self.height
    }

    /// The smallest box holding both.
    pub fn union(self, other: Self) -> Self {
        let (x, y) = (self.x.min(other.x), self.y.min(other.y));
        let right = (self.x + self.width).max(other.x + other.width);
        let bottom = (self.y + self.height).max(other.y + other.height);
        Self {
            x,
            y,
            width: right - x,
            height: bottom - y,
        }
    }
}

/// What one reading found: its lines, top to bottom, and how far they are turned.
#[derive(Debug, Clone, Default)]
pub struct Reading {
    pub lines: Vec<TextLine>,
    /// The lines' angle in radians, clockwise as the image shows it (y grows downwards), from the
    /// long regions of the probability map; `None` without any.
    pub skew: Option<f32>,
}

/// The band a line of text runs along, in the original image's pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Strip {
    pub centre: (f32, f32),
    /// Radians, clockwise as the image shows it (y grows downwards); 0 for a level line.
    pub angle: f32,
    pub length: f32,
    /// The height of the text, across the band.
    pub thickness: f32,
}

impl Strip {
    /// The level band that fills `bounds`.
    pub fn level(bounds: Bounds) -> Self {
        Self {
            centre: (
                bounds.x as f32 + bounds.width as f32 / 2.0,
                bounds.center_y(),
            ),
            angle: 0.0,
            length: bounds.width as f32,
            thickness: bounds.height as f32,
        }
    }

    /// The band through the box `corners` (in the order its text reads), `grow` times as thick
    /// as the box and longer by as much, and whether its text runs right to left across the
    /// image (the band is then read turned over).
    pub fn through(corners: [(f32, f32); 4], grow: f32) -> (Self, bool) {
        let [top_left, top_right, bottom_right, bottom_left] = corners;
        let mean = |a: f32, b: f32, c: f32, d: f32| (a + b + c + d) / 4.0;
        let centre = (
            mean(top_left.0, top_right.0, bottom_right.0, bottom_left.0),
            mean(top_left.1, top_right.1, bottom_right.1, bottom_left.1),
        );
        let across = (
            (top_right.0 - top_left.0 + bottom_right.0 - bottom_left.0) / 2.0,
            (top_right.1 - top_left.1 + bottom_right.1 - bottom_left.1) / 2.0,
        );
        let side = |(ax, ay): (f32, f32), (bx, by): (f32, f32)| (bx - ax).hypot(by - ay);
        let thickness = (side(top_left, bottom_left) + side(top_right, bottom_right)) / 2.0;
        let angle = across.1.atan2(across.0);
        let upside_down = angle.abs() > std::f32::consts::FRAC_PI_2;
        let angle = if upside_down {
            angle - std::f32::consts::PI.copysign(angle)
        } else {
            angle
        };
        let strip = Self {
            centre,
            angle,
            length: across.0.hypot(across.1) + (grow - 1.0) * thickness,
            thickness: grow * thickness,
        };
        (strip, upside_down)
    }

    /// How far down the band runs per pixel to the right.
    pub fn slope(&self) -> f32 {
        self.angle.tan()
    }

    /// Whether `other` lies on this band's line of text: the two centres are less apart across the
    /// longer band than half the thicker one is thick. For level bands, whether their rows
    /// overlap by more than half the thinner one's thickness.
    fn on_one_line(&self, other: &Self) -> bool {
        let along = if self.length >= other.length {
            self
        } else {
            other
        };
        let (sin, cos) = along.angle.sin_cos();
        let (dx, dy) = (
            other.centre.0 - self.centre.0,
            other.centre.1 - self.centre.1,
        );
        let across = (dy * cos - dx * sin).abs();
        2.0 * across < self.thickness.max(other.thickness)
    }

    /// The part of the band whose centre line lies within `bounds`' columns: the band of a box
    /// cut apart from its neighbour.
    fn within(self, bounds: Bounds) -> Self {
        let cos = self.angle.cos();
        let half = self.length / 2.0 * cos;
        let left = (self.centre.0 - half).max(bounds.x as f32);
        let right = (self.centre.0 + half).min((bounds.x + bounds.width) as f32);
        if right <= left {
            return Self::level(bounds);
        }
        let x = (left + right) / 2.0;
        Self {
            centre: (x, self.centre.1 + (x - self.centre.0) * self.slope()),
            length: (right - left) / cos,
            ..self
        }
    }

    /// The axis-aligned box around the band, cut to an image of `size`; `None` when none of the
    /// band is in it.
    fn bounds(&self, size: (u32, u32)) -> Option<Bounds> {
        let (sin, cos) = self.angle.sin_cos();
        let half_width = (self.length * cos.abs() + self.thickness * sin.abs()) / 2.0;
        let half_height = (self.length * sin.abs() + self.thickness * cos.abs()) / 2.0;
        let (width, height) = (size.0 as f32, size.1 as f32);
        let left = (self.centre.0 - half_width).max(0.0).floor();
        let top = (self.centre.1 - half_height).max(0.0).floor();
        let right = (self.centre.0 + half_width).min(width).ceil();
        let bottom = (self.centre.1 + half_height).min(height).ceil();
        (right > left && bottom > top).then_some(Bounds {
            x: left as u32,
            y: top as u32,
            width: (right - left) as u32,
            height: (bottom - top) as u32,
        })
    }

    /// Whether the band drops so little over its length that its axis-aligned box reads as well.
    fn is_level(&self) -> bool {
        self.length * self.angle.sin().abs() < self.thickness / 4.0
    }
}

/// A line found and not yet read: its box and its band.
type Detected = (Bounds, Strip);

/// A detected line and what the recogniser read in it.
#[derive(Debug, Clone)]
pub struct TextLine {
    /// The axis-aligned box around the line.
    pub bounds: Bounds,
    pub strip: Strip,
    pub glyphs: Vec<Glyph>,
    /// Whether it was read turned over: its text runs right to left across the image.
    pub upside_down: bool,
    /// For a line read as a group of digits: what [`CARD_DIGITS_MODEL`] reads in it, the same
    /// way up. For a line read with other marks that are nearly as likely digits (a `6` read as
    /// `b`): the recogniser's reading of it as digits.
    pub digits_read: Option<Vec<Glyph>>,
}

impl TextLine {
    /// The line as found in an image of which the one it was read in is the part at `(x, y)`.
    pub fn moved(mut self, x: u32, y: u32) -> Self {
        self.bounds.x += x;
        self.bounds.y += y;
        self.strip.centre.0 += x as f32;
        self.strip.centre.1 += y as f32;
        self
    }
}

/// One character read, and how sure the recogniser was of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Glyph {
    pub text: String,
    /// Its probability where the recogniser was surest of it.
    pub confidence: f32,
    /// For a digit: the next likeliest digit there, and its probability.
    pub runner_up: Option<(char, f32)>,
}

impl Glyph {
    /// Whether it is one digit.
    pub fn is_digit(&self) -> bool {
        self.text.len() == 1 && self.text.as_bytes()[0].is_ascii_digit()
    }
}

/// The two models of one inference slot. ONNX Runtime sessions run one call at a time, so the
/// provider keeps one engine per concurrent recognition.
pub struct Engine {
    detector: Session,
    recognizer: Session,
    /// PaddleOCR's text direction classifier: whether a line is upright or upside down.
    direction: Session,
    /// Index `i` of the recogniser's output is `charset[i]`; 0 is the CTC blank.
    charset: Vec<String>,
    /// The output index of each digit, `0` to `9`.
    digits: [usize; 10],
    /// The output index of the blank, each digit and space, as [`CARD_DIGITS_CHARSET`] orders them.
    numeric: [usize; 12],
    /// ocrgate's own recogniser of card numbers' lines ([`CARD_DIGITS_MODEL`]), and its classes.
    card_digits: Session,
    card_digits_charset: Vec<String>,
}

impl Engine {
    /// Loads the detection, recognition and direction models, and ocrgate's own recogniser of
    /// card numbers' lines, each session using `threads` threads.
    pub fn load(
        environment: &Environment,
        detection_model: &Path,
        recognition_model: &Path,
        direction_model: &Path,
        threads: usize,
    ) -> ort::Result<Self> {
        let builder = || -> ort::Result<SessionBuilder> {
            Ok(Session::builder(environment)?
                .with_optimization_level(GraphOptimizationLevel::Level3)?
                .with_intra_threads(threads)?
                .with_inter_threads(1)?
                // Idle threads spinning for work would eat the cores the server needs.
                .with_intra_op_spinning(false)?)
        };
        let session = |model: &Path| builder()?.commit_from_file(model);
        let detector = session(detection_model)?;
        let card_digits = builder()?.commit_from_memory(CARD_DIGITS_MODEL)?;
        let recognizer = session(recognition_model)?;
        let direction = session(direction_model)?;
        let dictionary = recognizer.metadata()?.custom("character").ok_or_else(|| {
            ort::Error::new("the recognition model has no `character` dictionary in its metadata")
        })?;
        // PaddleOCR's layout: the blank first, then the dictionary a character a line, then space.
        let charset: Vec<String> = std::iter::once(String::new())
            .chain(dictionary.lines().map(str::to_owned))
            .chain(std::iter::once(" ".to_owned()))
            .collect();
        let mut digits = [0; 10];
        for (digit, index) in digits.iter_mut().enumerate() {
            *index = charset
                .iter()
                .position(|c| *c == digit.to_string())
                .ok_or_else(|| {
                    ort::Error::new("the recognition model's dictionary lacks a digit")
                })?;
        }
        let space = charset.len() - 1;
        let numeric = std::array::from_fn(|class| match class {
            0 => 0,
            11 => space,
            digit => digits[digit - 1],
        });
        Ok(Self {
            detector,
            recognizer,
            direction,
            charset,
            digits,
            numeric,
            card_digits,
            card_digits_charset: CARD_DIGITS_CHARSET.map(str::to_owned).to_vec(),
        })
    }

    /// Finds the lines of text in `image` and reads each, top to bottom, as `look` says. `stop` is
    /// asked before each line: once it says so, the lines read so far are dropped and `None` is
    /// returned.
    pub fn read(
        &mut self,
        image: &RgbImage,
        look: Look,
        stop: impl Fn() -> bool,
    ) -> ort::Result<Option<Reading>> {
        let (mut boxes, skew) = self.detect(image, look)?;
        if boxes.len() > MAX_LINES {
            // A page dense with text would cost seconds; a card's number is among its tallest lines.
            boxes.sort_by(|(_, a), (_, b)| b.thickness.total_cmp(&a.thickness));
            boxes.truncate(MAX_LINES);
            boxes.sort_by(|(a, _), (b, _)| {
                a.center_y().total_cmp(&b.center_y()).then(a.x.cmp(&b.x))
            });
        }
        let mut lines = Vec::new();
        for (bounds, strip) in boxes {
            if stop() {
                return Ok(None);
            }
            // The line the way up it is read: turned over when that reading is kept.
            let mut line = look.seen(line_image(image, bounds, strip));
            let mut read = self.recognize(&line, look.line_stretch)?;
            let mut upside_down = false;
            if may_be_turned(&read.glyphs) && self.upside_down(&line)? {
                let turned_line = imageops::rotate180(&line);
                let turned = self.recognize(&turned_line, look.line_stretch)?;
                if surer_turned_over(&read.glyphs, &turned.glyphs) {
                    (line, read, upside_down) = (turned_line, turned, true);
                }
            }
            if read
                .glyphs
                .iter()
                .any(|glyph| !glyph.text.trim().is_empty())
            {
                let digits_read = self.second_reading(&line, &read)?;
                lines.push(TextLine {
                    bounds,
                    strip,
                    glyphs: read.glyphs,
                    upside_down,
                    digits_read,
                });
            }
        }
        // A card lies one way up. A line with digits read upright without doubt (and so never
        // shown to the classifier) whose neighbours with digits were mostly read turned over is
        // read turned over too, and taken so unless its upright reading is clearly surer.
        let among_turned: Vec<usize> = (0..lines.len())
            .filter(|&at| !lines[at].upside_down && mostly_turned_over_near(&lines, at))
            .collect();
        for at in among_turned {
            if stop() {
                return Ok(None);
            }
            let line = &mut lines[at];
            let turned =
                imageops::rotate180(&look.seen(line_image(image, line.bounds, line.strip)));
            let turned_read = self.recognize(&turned, look.line_stretch)?;
            if !surer_turned_over(&turned_read.glyphs, &line.glyphs) {
                line.digits_read = self.second_reading(&turned, &turned_read)?;
                (line.glyphs, line.upside_down) = (turned_read.glyphs, true);
            }
        }
        Ok(Some(Reading { lines, skew }))
    }

    /// Reads the band `strip` in `image` as the whole row of a card's number, turned over when
    /// `upside_down`, without detecting it first: by the recogniser, and by
    /// [`CARD_DIGITS_MODEL`] whatever the recogniser reads (a row holds more than a group of
    /// digits: the number's groups, and print beside them). `None` when the band is outside the
    /// image.
    pub fn read_row(
        &mut self,
        image: &RgbImage,
        strip: Strip,
        upside_down: bool,
    ) -> ort::Result<Option<TextLine>> {
        let Some(bounds) = strip.bounds(image.dimensions()) else {
            return Ok(None);
        };
        let mut line = line_image(image, bounds, strip);
        if upside_down {
            line = imageops::rotate180(&line);
        }
        Ok(Some(TextLine {
            bounds,
            strip,
            glyphs: self.recognize(&line, 1.0)?.glyphs,
            upside_down,
            digits_read: Some(self.read_digits(&line)?),
        }))
    }

    /// The lines of text in `image`, each as its box and its band, top to bottom, and the skew.
    fn detect(
        &mut self,
        image: &RgbImage,
        look: Look,
    ) -> ort::Result<(Vec<Detected>, Option<f32>)> {
        let (width, height) = image.dimensions();
        let scale = look.detection_side as f32 / width.max(height) as f32;
        // The DB network downsamples by 32.
        let fit = |side: u32| (((side as f32 * scale) / 32.0).round() as u32).max(1) * 32;
        let (input_width, input_height) = (fit(width), fit(height));
        let resized = look.seen(shrink(image, input_width, input_height));
        let input = to_tensor(&resized);
        let shape = [1, 3, input_height as usize, input_width as usize];
        let outputs = self
            .detector
            .run(ort::inputs![TensorRef::from_array_view((shape, &*input))?])?;
        let (_, probabilities) = outputs[0].try_extract_tensor::<f32>()?;

        let mask = GrayImage::from_fn(input_width, input_height, |x, y| {
            let p = probabilities[(y * input_width + x) as usize];
            Luma([u8::from(p > TEXT_THRESHOLD)])
        });
        let labels = connected_components(&mask, Connectivity::Eight, Luma([0]));
        let mut regions: Vec<Region> = Vec::new();
        for (x, y, label) in labels.enumerate_pixels() {
            let label = label.0[0] as usize;
            if label == 0 {
                continue;
            }
            if regions.len() < label {
                regions.resize(label, Region::default());
            }
            regions[label - 1].add(x, y, probabilities[(y * input_width + x) as usize]);
        }

        let (sx, sy) = (
            width as f32 / input_width as f32,
            height as f32 / input_height as f32,
        );
        let text: Vec<&Region> = regions
            .iter()
            .filter(|region| region.pixels >= 3 && region.mean() >= BOX_THRESHOLD)
            .collect();
        let skew = skew(&text);
        let mut boxes: Vec<Detected> = text
            .iter()
            .filter_map(|region| {
                let bounds = region.unclipped(sx, sy, width, height)?;
                Some((bounds, region.strip(sx, sy)))
            })
            .collect();
        separate_neighbours(&mut boxes);
        for (bounds, strip) in &mut boxes {
            *strip = strip.within(*bounds);
        }
        boxes.sort_by(|(a, _), (b, _)| a.center_y().total_cmp(&b.center_y()).then(a.x.cmp(&b.x)));
        Ok((boxes, skew))
    }

    /// Whether the direction classifier takes `line` more likely upside down than not.
    fn upside_down(&mut self, line: &RgbImage) -> ort::Result<bool> {
        let (shape, input) = line_tensor(line, 1.0, DIRECTION_WIDTH, DIRECTION_WIDTH);
        let outputs = self
            .direction
            .run(ort::inputs![TensorRef::from_array_view((shape, &*input))?])?;
        let (_, scores) = outputs[0].try_extract_tensor::<f32>()?;
        // Labels "0" and "180", as softmax probabilities.
        Ok(scores.get(1).is_some_and(|&turned| turned > UPSIDE_DOWN))
    }

    /// [`TextLine::digits_read`] for `line`, which the recogniser read as `read`: what
    /// [`CARD_DIGITS_MODEL`] reads in it when that was a group of digits; the recogniser's own
    /// reading of it as digits when that is nearly as likely as the marks it read.
    fn second_reading(
        &mut self,
        line: &RgbImage,
        read: &Recognized,
    ) -> ort::Result<Option<Vec<Glyph>>> {
        if a_group_of_digits(&read.glyphs) {
            self.read_digits(line).map(Some)
        } else {
            Ok(read.as_digits.clone())
        }
    }

    /// What [`CARD_DIGITS_MODEL`] reads in `line`: digits and spaces, decoded as the
    /// recogniser's output is.
    fn read_digits(&mut self, line: &RgbImage) -> ort::Result<Vec<Glyph>> {
        let (shape, input) = card_digits_tensor(line);
        let outputs = self
            .card_digits
            .run(ort::inputs![TensorRef::from_array_view((shape, &*input))?])?;
        let (_, scores) = outputs[0].try_extract_tensor::<f32>()?;
        Ok(ctc_greedy(
            scores,
            self.card_digits_charset.len(),
            &self.card_digits_charset,
            &CARD_DIGITS_INDICES,
        ))
    }

    /// What the recogniser reads in `line`, and how it reads it as digits.
    fn recognize(&mut self, line: &RgbImage, stretch: f32) -> ort::Result<Recognized> {
        let (shape, input) = line_tensor(line, stretch, MAX_LINE_WIDTH, MIN_LINE_WIDTH);
        let outputs = self
            .recognizer
            .run(ort::inputs![TensorRef::from_array_view((shape, &*input))?])?;
        let (shape, scores) = outputs[0].try_extract_tensor::<f32>()?;
        let classes = shape.last().copied().unwrap_or(0).max(1) as usize;
        let glyphs = ctc_greedy(scores, classes, &self.charset, &self.digits);
        let as_digits = if only_digits(&glyphs) {
            None
        } else {
            read_as_digits(scores, classes, &self.numeric, &self.card_digits_charset)
        };
        Ok(Recognized { glyphs, as_digits })
    }
}

/// Whether `glyphs` read as a group of a card number: digits and spaces only, at least
/// [`GROUP_DIGITS`] digits. Such lines are read by [`CARD_DIGITS_MODEL`] too.
fn a_group_of_digits(glyphs: &[Glyph]) -> bool {
    digits(glyphs) >= GROUP_DIGITS && only_digits(glyphs)
}

/// Whether `glyphs` are digits and spaces, nothing else.
fn only_digits(glyphs: &[Glyph]) -> bool {
    glyphs
        .iter()
        .all(|glyph| glyph.is_digit() || glyph.text.trim().is_empty())
}

/// `line` as a 1×3×32×W tensor for [`CARD_DIGITS_MODEL`]: resized to `CARD_DIGITS_HEIGHT` high
/// as its aspect says, at most `CARD_DIGITS_MAX_WIDTH` wide, its last column repeated up to a
/// multiple of 4, in RGB order.
fn card_digits_tensor(line: &RgbImage) -> ([usize; 4], Vec<f32>) {
    let (width, height) = line.dimensions();
    let scaled = (width as f32 * CARD_DIGITS_HEIGHT as f32 / height.max(1) as f32).round() as u32;
    let scaled = scaled.clamp(4, CARD_DIGITS_MAX_WIDTH);
    let resized = imageops::resize(line, scaled, CARD_DIGITS_HEIGHT, FilterType::Triangle);
    let padded = scaled.next_multiple_of(4);
    let plane = (CARD_DIGITS_HEIGHT * padded) as usize;
    let mut input = vec![0.0f32; 3 * plane];
    for y in 0..CARD_DIGITS_HEIGHT {
        for x in 0..padded {
            let pixel = resized.get_pixel(x.min(scaled - 1), y);
            let at = (y * padded + x) as usize;
            for (channel, &value) in pixel.0.iter().enumerate() {
                input[channel * plane + at] = f32::from(value) / 127.5 - 1.0;
            }
        }
    }
    ([1, 3, CARD_DIGITS_HEIGHT as usize, padded as usize], input)
}

/// `line` as a 1×3×48×W tensor for the recogniser or the classifier: resized to `LINE_HEIGHT`
/// high and `stretch` times as wide as its aspect says, at most `max_width`, then padded with
/// zeros to at least `min_width`, as PaddleOCR pads.
fn line_tensor(
    line: &RgbImage,
    stretch: f32,
    max_width: u32,
    min_width: u32,
) -> ([usize; 4], Vec<f32>) {
    let (width, height) = line.dimensions();
    let scaled = (width as f32 * LINE_HEIGHT as f32 / height as f32 * stretch).ceil() as u32;
    let scaled = scaled.clamp(1, max_width);
    let resized = imageops::resize(line, scaled, LINE_HEIGHT, FilterType::Triangle);
    let padded_width = scaled.max(min_width);
    let mut input = vec![0.0f32; 3 * (LINE_HEIGHT * padded_width) as usize];
    write_planes(&resized, &mut input, padded_width);
    ([1, 3, LINE_HEIGHT as usize, padded_width as usize], input)
}

/// Whether `glyphs`, read from a line the right way up, may be a group of a card number turned
/// over: digits of a number upside down are mostly read as digits still (0, 1, 8, 6 and 9 are
/// alike either way), some with doubt.
fn may_be_turned(glyphs: &[Glyph]) -> bool {
    digits(glyphs) >= TURNED_DIGITS
        && glyphs
            .iter()
            .any(|glyph| !glyph.text.trim().is_empty() && glyph.confidence < DOUBTFUL_LINE)
}

/// How many digits `glyphs` read.
fn digits(glyphs: &[Glyph]) -> usize {
    glyphs.iter().filter(|glyph| glyph.is_digit()).count()
}

/// Whether `lines[at]` reads as digits and more than half the other lines near it that do were
/// taken turned over.
fn mostly_turned_over_near(lines: &[TextLine], at: usize) -> bool {
    let with_digits = |line: &TextLine| digits(&line.glyphs) >= TURNED_DIGITS;
    let line = &lines[at];
    if !with_digits(line) {
        return false;
    }
    let (turned, all) = lines
        .iter()
        .enumerate()
        .filter(|&(other, near)| {
            other != at && with_digits(near) && close(line.bounds, near.bounds)
        })
        .fold((0, 0), |(turned, all), (_, near)| {
            (turned + usize::from(near.upside_down), all + 1)
        });
    2 * turned > all
}

/// Whether two lines are no further apart, across or down, than `NEIGHBOURS` times the taller's
/// height: a number's groups and lines, not the print around the card.
fn close(a: Bounds, b: Bounds) -> bool {
    let gap = |a0: u32, a_len: u32, b0: u32, b_len: u32| {
        b0.saturating_sub(a0 + a_len)
            .max(a0.saturating_sub(b0 + b_len))
    };
    let across = gap(a.x, a.width, b.x, b.width);
    let down = gap(a.y, a.height, b.y, b.height);
    across.max(down) as f32 <= NEIGHBOURS * a.height.max(b.height) as f32
}

/// Whether a line read as `turned` turned over is to be trusted over its reading `upright`.
fn surer_turned_over(upright: &[Glyph], turned: &[Glyph]) -> bool {
    mean_certainty(turned) > mean_certainty(upright) + TURNED_MARGIN
}

/// The mean probability of the characters read (0 for none).
fn mean_certainty(glyphs: &[Glyph]) -> f32 {
    let read: Vec<f32> = glyphs
        .iter()
        .filter(|glyph| !glyph.text.trim().is_empty())
        .map(|glyph| glyph.confidence)
        .collect();
    read.iter().sum::<f32>() / read.len().max(1) as f32
}

/// `image` resized to `width`×`height` with a triangle filter. A photo more than twice that size
/// is first averaged down to twice it: the filter's cost grows with the source's pixels (1.2 s for
/// 11 megapixels here), the averaging's barely.
fn shrink(image: &RgbImage, width: u32, height: u32) -> RgbImage {
    if image.width() > 2 * width && image.height() > 2 * height {
        let halfway = imageops::thumbnail(image, 2 * width, 2 * height);
        return imageops::resize(&halfway, width, height, FilterType::Triangle);
    }
    imageops::resize(image, width, height, FilterType::Triangle)
}

/// Pixels of one connected region of the probability map, and their first and second moments.
#[derive(Debug, Clone, Copy)]
struct Region {
    min_x: u32,
    min_y: u32,
    max_x: u32,
    max_y: u32,
    pixels: u32,
    probability: f32,
    /// Sums of x, y, x², y² and xy over the pixels.
    moments: [f64; 5],
}

/// A region this many times longer than thick is a line of text whose angle is worth counting.
const ELONGATED: f64 = 3.0;

/// The angle of the text that matters: that of the long region with the most pixels. A card's
/// number is its largest print, and the print around the card (receipts, notes) need not be
/// turned as the card is, so a median over every line would follow the clutter.
fn skew(regions: &[&Region]) -> Option<f32> {
    regions
        .iter()
        .filter_map(|region| region.orientation().map(|angle| (angle, region.pixels)))
        .max_by_key(|(_, pixels)| *pixels)
        .map(|(angle, _)| angle as f32)
}

impl Default for Region {
    fn default() -> Self {
        Self {
            min_x: u32::MAX,
            min_y: u32::MAX,
            max_x: 0,
            max_y: 0,
            pixels: 0,
            probability: 0.0,
            moments: [0.0; 5],
        }
    }
}

impl Region {
    fn add(&mut self, x: u32, y: u32, probability: f32) {
        self.min_x = self.min_x.min(x);
        self.min_y = self.min_y.min(y);
        self.max_x = self.max_x.max(x);
        self.max_y = self.max_y.max(y);
        self.pixels += 1;
        self.probability += probability;
        let (x, y) = (f64::from(x), f64::from(y));
        for (sum, term) in self.moments.iter_mut().zip([x, y, x * x, y * y, x * y]) {
            *sum += term;
        }
    }

    /// The angle of the region's long axis in radians, clockwise as the image shows it, when it
    /// is clearly longer than thick.
    fn orientation(&self) -> Option<f64> {
        let axes = self.axes();
        (axes.long > ELONGATED * ELONGATED * axes.short.max(0.25)).then_some(axes.angle)
    }

    /// The centre of the region's pixels, and the variances along its long and short axes.
    fn axes(&self) -> Axes {
        let n = f64::from(self.pixels);
        let [mx, my, sxx, syy, sxy] = self.moments.map(|sum| sum / n);
        let (vxx, vyy, vxy) = (sxx - mx * mx, syy - my * my, sxy - mx * my);
        let spread = ((vxx - vyy).powi(2) + 4.0 * vxy * vxy).sqrt();
        Axes {
            centre: (mx, my),
            angle: 0.5 * (2.0 * vxy).atan2(vxx - vyy),
            long: (vxx + vyy + spread) / 2.0,
            short: ((vxx + vyy - spread) / 2.0).max(0.0),
        }
    }

    /// The band the region's text runs along, grown as `unclipped` grows its box, scaled to the
    /// original image. A filled band `l` long has a variance of `l² / 12` along it, so the
    /// variances give its length and thickness. A region without a clear direction, or turned
    /// further than a card held off square, is taken as level.
    fn strip(&self, sx: f32, sy: f32) -> Strip {
        let axes = self.axes();
        let directed = axes.long > DIRECTED * DIRECTED * axes.short.max(0.25)
            && axes.angle.abs() <= MAX_LINE_TILT;
        let area = f64::from(self.pixels);
        let (angle, length) = if directed {
            (axes.angle, (12.0 * axes.long).sqrt())
        } else {
            (0.0, f64::from(self.max_x - self.min_x + 1))
        };
        let thickness = area / length;
        let grow = unclip_distance(area, length);
        // Mask pixel `x` covers the original's `[x·sx, (x + 1)·sx)`.
        let (cx, cy) = axes.centre;
        Strip {
            centre: ((cx + 0.5) as f32 * sx, (cy + 0.5) as f32 * sy),
            angle: angle as f32,
            length: (length + 2.0 * grow) as f32 * sx,
            thickness: (thickness + 2.0 * grow) as f32 * sy,
        }
    }

    fn mean(&self) -> f32 {
        self.probability / self.pixels as f32
    }

    /// The region's box grown as DB's unclip does, scaled to the original image and clipped to it.
    ///
    /// DB grows a text polygon by `area × ratio / perimeter`. The region's pixels are its area; a
    /// line's length is about its box's width, so its thickness is about `area / width` however
    /// tilted the line is (the box's height would overstate it).
    fn unclipped(&self, sx: f32, sy: f32, width: u32, height: u32) -> Option<Bounds> {
        let grow = unclip_distance(
            f64::from(self.pixels),
            f64::from(self.max_x - self.min_x + 1),
        ) as f32;
        let x0 = ((self.min_x as f32 - grow) * sx).max(0.0) as u32;
        let y0 = ((self.min_y as f32 - grow) * sy).max(0.0) as u32;
        let x1 = (((self.max_x as f32 + 1.0 + grow) * sx).ceil() as u32).min(width);
        let y1 = (((self.max_y as f32 + 1.0 + grow) * sy).ceil() as u32).min(height);
        (x1 > x0 + 3 && y1 > y0 + 3).then(|| Bounds {
            x: x0,
            y: y0,
            width: x1 - x0,
            height: y1 - y0,
        })
    }
}

/// How far DB's unclip grows a text region of `area` pixels and `length` long: by `area × ratio /
/// perimeter`, its thickness being `area / length`.
fn unclip_distance(area: f64, length: f64) -> f64 {
    let thickness = area / length;
    area * f64::from(UNCLIP_RATIO) / (2.0 * (length + thickness))
}

/// A region's centre, the angle of its long axis, and its variances along and across it.
struct Axes {
    centre: (f64, f64),
    angle: f64,
    long: f64,
    short: f64,
}

/// What the recogniser is given for the line in `bounds`: the box itself when the line is level
/// in it, else the line's band cut out along its direction and turned level. A large band is
/// sampled at most twice the recogniser's height (the resize to it averages from there) and
/// `MAX_LINE_WIDTH` long.
fn line_image(image: &RgbImage, bounds: Bounds, strip: Strip) -> RgbImage {
    if strip.is_level() {
        return imageops::crop_imm(image, bounds.x, bounds.y, bounds.width, bounds.height)
            .to_image();
    }
    let scale = (2.0 * LINE_HEIGHT as f32 / strip.thickness)
        .min(MAX_LINE_WIDTH as f32 / strip.length)
        .min(1.0);
    let width = ((strip.length * scale).ceil() as u32).max(1);
    let height = ((strip.thickness * scale).ceil() as u32).max(1);
    let (sin, cos) = strip.angle.sin_cos();
    let (cx, cy) = strip.centre;
    let mut line = RgbImage::new(width, height);
    warp_into_with(
        image,
        |x, y| {
            let along = (x + 0.5) / scale - strip.length / 2.0;
            let across = (y + 0.5) / scale - strip.thickness / 2.0;
            (
                cx + along * cos - across * sin - 0.5,
                cy + along * sin + across * cos - 0.5,
            )
        },
        Interpolation::Bilinear,
        Border::Replicate,
        &mut line,
    );
    line
}

/// Growing boxes can make neighbours on one line overlap, so the digits between two closely spaced
/// groups would be read twice. Overlapping boxes on the same line are cut apart in the middle of
/// their overlap (their bands follow, in `Strip::within`). Whether two boxes are on one line is
/// told by their bands: the boxes around two lines of a tilted card, one under the other and
/// shifted along, can overlap as much as neighbours do.
fn separate_neighbours(boxes: &mut [Detected]) {
    boxes.sort_by_key(|(b, _)| b.x);
    for i in 0..boxes.len() {
        for j in i + 1..boxes.len() {
            let ((left, left_band), (right, right_band)) = (boxes[i], boxes[j]);
            let left_end = left.x + left.width;
            // Neighbours overlap along the row, neither inside the other, and lie on one line.
            if right.x >= left_end
                || left_end >= right.x + right.width
                || !left_band.on_one_line(&right_band)
            {
                continue;
            }
            let cut = (right.x + left_end) / 2;
            boxes[i].0.width = cut - left.x;
            boxes[j].0.width = right.x + right.width - cut;
            boxes[j].0.x = cut;
        }
    }
}

/// `image` as a 1×3×H×W tensor in BGR order, scaled to `[-1, 1]` as PaddleOCR's models expect.
fn to_tensor(image: &RgbImage) -> Vec<f32> {
    let mut planes = vec![0.0f32; 3 * (image.width() * image.height()) as usize];
    write_planes(image, &mut planes, image.width());
    planes
}

/// Writes `image` into the BGR planes of a tensor `stride` pixels wide, leaving the rest as it is.
fn write_planes(image: &RgbImage, planes: &mut [f32], stride: u32) {
    let plane = planes.len() / 3;
    for (x, y, pixel) in image.enumerate_pixels() {
        let at = (y * stride + x) as usize;
        for (channel, &value) in pixel.0.iter().rev().enumerate() {
            planes[channel * plane + at] = f32::from(value) / 127.5 - 1.0;
        }
    }
}

/// What the recogniser read in a line.
struct Recognized {
    glyphs: Vec<Glyph>,
    /// The line read as digits and spaces only, where it read other marks and no step's mark was
    /// more than [`DIGIT_ODDS`] times likelier than the likeliest digit, space or blank there: a
    /// `6` read as `b`, a `0` as `O`, a speck as `.`. Each glyph's probability is its share of
    /// the digits', spaces' and blank's there.
    as_digits: Option<Vec<Glyph>>,
}

/// How many times likelier than a digit, a space or a blank a mark may be read at a step of a
/// line for the line to be read as digits too.
const DIGIT_ODDS: f32 = 20.0;

/// `scores` read as [`Recognized::as_digits`] says, or `None` when some step's mark is too sure:
/// each step's blank, digits and space (`numeric`, in [`CARD_DIGITS_CHARSET`]'s order) as shares
/// of their sum, decoded.
fn read_as_digits(
    scores: &[f32],
    classes: usize,
    numeric: &[usize; 12],
    charset: &[String],
) -> Option<Vec<Glyph>> {
    let mut shares = Vec::with_capacity(scores.len() / classes * numeric.len());
    for step in scores.chunks_exact(classes) {
        let best = step.iter().copied().fold(0.0, f32::max);
        let kept = numeric.map(|class| step.get(class).copied().unwrap_or(0.0));
        let likeliest = kept.iter().copied().fold(0.0, f32::max);
        let total: f32 = kept.iter().sum();
        if best > DIGIT_ODDS * likeliest || total <= 0.0 {
            return None;
        }
        shares.extend(kept.map(|p| p / total));
    }
    Some(ctc_greedy(
        &shares,
        numeric.len(),
        charset,
        &CARD_DIGITS_INDICES,
    ))
}

/// Greedy CTC decoding: the best class at each step, repeats merged, blanks dropped. Each glyph
/// keeps its best probability over the steps it spans and, for a digit, the runner-up digit there.
fn ctc_greedy(
    scores: &[f32],
    classes: usize,
    charset: &[String],
    digits: &[usize; 10],
) -> Vec<Glyph> {
    let best_of = |step: &[f32]| {
        step.iter()
            .copied()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, 0.0))
    };
    // The likeliest digit at `step` but the one read there, and its probability.
    let runner_up = |step: &[f32], best: usize| {
        if !digits.contains(&best) {
            return None;
        }
        (0u8..10)
            .zip(digits)
            .filter(|&(_, &index)| index != best)
            .map(|(digit, &index)| (char::from(b'0' + digit), step[index]))
            .max_by(|a, b| a.1.total_cmp(&b.1))
    };
    let mut glyphs: Vec<Glyph> = Vec::new();
    let mut before = 0;
    for step in scores.chunks_exact(classes) {
        let (best, probability) = best_of(step);
        let repeat = best == before;
        before = best;
        if best == 0 {
            continue;
        }
        let Some(character) = charset.get(best) else {
            continue;
        };
        match glyphs.last_mut() {
            // The class read at the step before: CTC merges the two.
            Some(glyph) if repeat => {
                if probability > glyph.confidence {
                    glyph.confidence = probability;
                    glyph.runner_up = runner_up(step, best);
                }
            }
            _ => glyphs.push(Glyph {
                text: character.clone(),
                confidence: probability,
                runner_up: runner_up(step, best),
            }),
        }
    }
    glyphs
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The card-digit classes (blank, the ten digits, space) and their digits' indices.
    fn charset() -> (Vec<String>, [usize; 10]) {
        (
            CARD_DIGITS_CHARSET.map(str::to_owned).to_vec(),
            CARD_DIGITS_INDICES,
        )
    }

    /// Steps whose best class is `best` with probability `p`, the rest on `second`.
    fn steps(classes: &[(usize, f32, usize)]) -> Vec<f32> {
        classes
            .iter()
            .flat_map(|&(best, p, second)| {
                (0..12).map(move |c| match c {
                    c if c == best => p,
                    c if c == second => 1.0 - p,
                    _ => 0.0,
                })
            })
            .collect()
    }

    /// The glyphs greedy decoding reads from `classes` (as [`steps`] takes them), and their text.
    fn decoded(classes: &[(usize, f32, usize)]) -> (Vec<Glyph>, String) {
        let (charset, digits) = charset();
        let glyphs = ctc_greedy(&steps(classes), 12, &charset, &digits);
        let text = glyphs.iter().map(|g| g.text.as_str()).collect();
        (glyphs, text)
    }

    #[test]
    fn ctc_merges_repeats_drops_blanks_and_keeps_the_runner_up_digit() {
        // "1" twice (a repeat: one glyph), blank, "1", "2" twice, blank, space, "2".
        let (glyphs, text) = decoded(&[
            (2, 0.6, 0),
            (2, 0.9, 3),
            (0, 1.0, 1),
            (2, 0.7, 8),
            (3, 0.8, 0),
            (3, 0.55, 9),
            (0, 1.0, 1),
            (11, 1.0, 0),
            (3, 1.0, 0),
        ]);
        assert_eq!(text, "112 2");
        assert_eq!(glyphs[0].confidence, 0.9);
        assert_eq!(glyphs[0].runner_up.map(|r| r.0), Some('2'));
        assert_eq!(glyphs[1].runner_up.map(|r| r.0), Some('7'));
        assert_eq!(glyphs[2].confidence, 0.8);
        assert_eq!(glyphs[3].runner_up, None);
    }

    #[test]
    fn a_line_whose_marks_are_nearly_as_likely_digits_is_read_as_digits_too() {
        // Blank, the ten digits, space, then a letter: `b`, as a `6` in some fonts reads.
        let (classes, b) = (13, 12);
        let numeric = std::array::from_fn(|class| class);
        let (charset, _) = charset();
        let step = |weights: &[(usize, f32)]| {
            let mut step = vec![0.0; classes];
            for &(class, p) in weights {
                step[class] = p;
            }
            step
        };
        let read = |b_odds: f32| {
            let scores: Vec<f32> = [
                step(&[(6, 0.95), (0, 0.05)]),
                step(&[(0, 1.0)]),
                step(&[(b, 0.8), (7, 0.8 / b_odds), (0, 0.01)]),
            ]
            .concat();
            read_as_digits(&scores, classes, &numeric, &charset)
        };
        // `5b`, its `6` a tenth as likely as the `b`: `56`, the `6` with its share of the digits'.
        let glyphs = read(10.0).expect("nearly as likely digits");
        let text: String = glyphs.iter().map(|glyph| glyph.text.as_str()).collect();
        assert_eq!(text, "56");
        assert!((glyphs[1].confidence - 0.08 / 0.09).abs() < 1e-6);
        // A `b` read with more certainty than that is a letter.
        assert_eq!(read(2.0 * DIGIT_ODDS), None);
    }

    /// A region of the pixels of a band `length` long and `thickness` thick, turned `degrees`
    /// clockwise as the image shows it.
    fn band(length: u32, thickness: u32, degrees: f64, at: (u32, u32)) -> Region {
        let (sin, cos) = degrees.to_radians().sin_cos();
        let mut region = Region::default();
        for along in 0..length {
            for across in 0..thickness {
                let (a, c) = (f64::from(along), f64::from(across));
                let x = f64::from(at.0) + a * cos - c * sin;
                let y = f64::from(at.1) + a * sin + c * cos;
                region.add(x.round() as u32, y.round() as u32, 0.9);
            }
        }
        region
    }

    #[test]
    fn the_skew_is_that_of_the_largest_line_not_of_the_clutter() {
        let number = band(400, 30, 12.0, (100, 100));
        let receipts: Vec<Region> = (0..6)
            .map(|i| band(150, 12, 0.0, (20, 300 + 20 * i)))
            .collect();
        let mut regions: Vec<&Region> = receipts.iter().collect();
        regions.push(&number);
        let skew = skew(&regions).expect("a skew").to_degrees();
        assert!((skew - 12.0).abs() < 0.5, "{skew}");
        // A blob as wide as tall has no direction.
        assert_eq!(band(30, 30, 0.0, (0, 0)).orientation(), None);
    }

    #[test]
    fn unclip_grows_a_thin_region_by_its_area_over_perimeter() {
        let mut region = Region::default();
        for x in 10..50 {
            for y in 10..14 {
                region.add(x, y, 1.0);
            }
        }
        // 40×4: grows by 40·4·1.6 / 88 ≈ 2.9 on every side.
        let bounds = region.unclipped(1.0, 1.0, 100, 100).expect("box");
        assert_eq!(
            (bounds.x, bounds.y, bounds.width, bounds.height),
            (7, 7, 46, 10)
        );
    }

    #[test]
    fn overlapping_boxes_on_one_line_are_cut_apart_in_the_middle() {
        let bounds = |x, y, width, height| Bounds {
            x,
            y,
            width,
            height,
        };
        let level = |bounds| (bounds, Strip::level(bounds));
        let mut boxes = [
            level(bounds(580, 350, 125, 47)),
            level(bounds(680, 352, 150, 46)),
            level(bounds(700, 450, 180, 30)),
        ];
        separate_neighbours(&mut boxes);
        assert_eq!(boxes[0].0, bounds(580, 350, 112, 47));
        assert_eq!(boxes[1].0, bounds(692, 352, 138, 46));
        // Another line is left alone.
        assert_eq!(boxes[2].0, bounds(700, 450, 180, 30));
    }

    #[test]
    fn boxes_of_two_tilted_lines_one_under_the_other_are_not_cut_apart() {
        // A card turned 8°: its number, and a shorter line under the number's start whose box
        // overlaps the number's over most of the shorter one's height (boxes of a photo).
        let turned = 8f32.to_radians();
        let number = Bounds {
            x: 131,
            y: 389,
            width: 261,
            height: 74,
        };
        let signature = Bounds {
            x: 104,
            y: 431,
            width: 129,
            height: 41,
        };
        let mut boxes = [
            (
                number,
                Strip {
                    centre: (261.5, 426.0),
                    angle: turned,
                    length: 255.0,
                    thickness: 34.0,
                },
            ),
            (
                signature,
                Strip {
                    centre: (168.5, 451.5),
                    angle: turned,
                    length: 125.0,
                    thickness: 22.0,
                },
            ),
        ];
        separate_neighbours(&mut boxes);
        assert_eq!(boxes[0].0, signature);
        assert_eq!(boxes[1].0, number);
    }

    #[test]
    fn a_tilted_region_gives_a_band_along_it_with_its_length_and_thickness() {
        // 200×10 turned 8°, in a map at half the original's size.
        let strip = band(200, 10, 8.0, (50, 40)).strip(2.0, 2.0);
        assert!((strip.angle.to_degrees() - 8.0).abs() < 0.3, "{strip:?}");
        // Grown by 200·10·1.6 / 420 ≈ 7.6 on each side, then doubled.
        assert!((strip.length - 2.0 * 215.2).abs() < 6.0, "{strip:?}");
        assert!((strip.thickness - 2.0 * 25.2).abs() < 3.0, "{strip:?}");
        let (sin, cos) = 8f32.to_radians().sin_cos();
        let centre = (
            50.0 + 100.0 * cos - 5.0 * sin,
            40.0 + 100.0 * sin + 5.0 * cos,
        );
        assert!((strip.centre.0 - 2.0 * centre.0).abs() < 3.0, "{strip:?}");
        assert!((strip.centre.1 - 2.0 * centre.1).abs() < 3.0, "{strip:?}");
        // A line turned 40° is followed; square blobs, and lines nearer up and down than across,
        // are level.
        let turned = band(200, 10, 40.0, (50, 50)).strip(1.0, 1.0);
        assert!((turned.angle.to_degrees() - 40.0).abs() < 0.5, "{turned:?}");
        assert_eq!(band(30, 30, 8.0, (50, 50)).strip(1.0, 1.0).angle, 0.0);
        assert_eq!(band(200, 10, 50.0, (50, 50)).strip(1.0, 1.0).angle, 0.0);
    }

    /// A band 200 long and 20 thick about (200, 100), falling 0.1 rad to the right.
    const TILTED: Strip = Strip {
        centre: (200.0, 100.0),
        angle: 0.1,
        length: 200.0,
        thickness: 20.0,
    };

    #[test]
    fn a_band_through_a_box_runs_along_it_and_is_turned_over_when_it_reads_right_to_left() {
        let level = [(10.0, 20.0), (110.0, 20.0), (110.0, 40.0), (10.0, 40.0)];
        let (strip, upside_down) = Strip::through(level, 1.5);
        assert!(!upside_down);
        assert_eq!(
            strip,
            Strip {
                centre: (60.0, 30.0),
                angle: 0.0,
                length: 110.0,
                thickness: 30.0,
            }
        );
        // The same box with its text upside down: the same band, read turned over.
        let [a, b, c, d] = level;
        assert_eq!(Strip::through([c, d, a, b], 1.5), (strip, true));

        // A box turned 10° clockwise about its top left corner.
        let (sin, cos) = 10f32.to_radians().sin_cos();
        let turned = level.map(|(x, y)| {
            let (dx, dy) = (x - 10.0, y - 20.0);
            (10.0 + dx * cos - dy * sin, 20.0 + dx * sin + dy * cos)
        });
        let (strip, upside_down) = Strip::through(turned, 1.0);
        assert!(!upside_down);
        assert!((strip.angle.to_degrees() - 10.0).abs() < 1e-3, "{strip:?}");
        assert!((strip.length - 100.0).abs() < 1e-3 && (strip.thickness - 20.0).abs() < 1e-3);
    }

    #[test]
    fn a_band_cut_to_its_box_keeps_to_its_line() {
        let strip = TILTED;
        // The box's right part, from x = 250.
        let cut = strip.within(Bounds {
            x: 250,
            y: 80,
            width: 100,
            height: 40,
        });
        let right_end = 200.0 + 100.0 * 0.1f32.cos();
        assert!((cut.centre.0 - (250.0 + right_end) / 2.0).abs() < 0.01);
        assert!((cut.centre.1 - (100.0 + (cut.centre.0 - 200.0) * 0.1f32.tan())).abs() < 0.01);
        assert!((cut.length * 0.1f32.cos() - (right_end - 250.0)).abs() < 0.01);
        assert_eq!((cut.angle, cut.thickness), (0.1, 20.0));
    }

    #[test]
    fn a_bands_box_is_cut_to_the_image() {
        // Level: the box is the band's. Past the image's right edge: cut there. Outside: none.
        let level = Strip {
            angle: 0.0,
            ..TILTED
        };
        assert_eq!(
            level.bounds((400, 300)),
            Some(Bounds {
                x: 100,
                y: 90,
                width: 200,
                height: 20
            })
        );
        assert_eq!(level.bounds((250, 300)).map(|b| b.x + b.width), Some(250));
        assert_eq!(level.bounds((80, 300)), None);
    }

    #[test]
    fn a_tilted_line_is_cut_out_level_and_a_level_one_is_its_box() {
        // A white image with a black band 300×20 turned 10° about (200, 150).
        let (sin, cos) = 10f32.to_radians().sin_cos();
        let image = RgbImage::from_fn(400, 300, |x, y| {
            let (dx, dy) = (x as f32 - 200.0, y as f32 - 150.0);
            let (along, across) = (dx * cos + dy * sin, -dx * sin + dy * cos);
            let inside = along.abs() < 150.0 && across.abs() < 10.0;
            image::Rgb(if inside { [0; 3] } else { [255; 3] })
        });
        let strip = Strip {
            centre: (200.0, 150.0),
            angle: 10f32.to_radians(),
            length: 280.0,
            thickness: 40.0,
        };
        let bounds = Bounds {
            x: 50,
            y: 100,
            width: 300,
            height: 100,
        };
        let line = line_image(&image, bounds, strip);
        assert_eq!(line.dimensions(), (280, 40));
        // Level: the band fills the middle rows end to end, and no row above or below has ink.
        let dark = |y: u32| {
            (0..280)
                .filter(|&x| line.get_pixel(x, y).0[0] < 128)
                .count()
        };
        assert_eq!(dark(20), 280);
        assert_eq!(dark(4), 0);
        assert_eq!(dark(35), 0);

        let level = Strip {
            angle: 0.0,
            ..strip
        };
        assert_eq!(line_image(&image, bounds, level).dimensions(), (300, 100));
    }

    /// `text` read a character a glyph, each with `confidence`.
    fn glyphs(text: &str, confidence: f32) -> Vec<Glyph> {
        text.chars()
            .map(|c| Glyph {
                text: c.to_string(),
                confidence,
                runner_up: None,
            })
            .collect()
    }

    #[test]
    fn only_doubtful_lines_with_digits_are_shown_to_the_direction_classifier() {
        // Upside down, `6222 0202` reads as digits still, with doubt.
        assert!(may_be_turned(&glyphs("2020 2229", 0.5)));
        // Read surely: the right way up.
        assert!(!may_be_turned(&glyphs("2020 2229", 0.95)));
        // A word, however doubtful, is no number's group: which way up it is does not matter.
        assert!(!may_be_turned(&glyphs("VALID THRU", 0.3)));
        assert!(!may_be_turned(&glyphs("NO 7", 0.3)));
    }

    #[test]
    fn a_line_is_taken_turned_over_only_when_read_so_clearly_surer() {
        // A card's number upside down: garbled one way, read surely the other.
        assert!(surer_turned_over(
            &glyphs("98 9 1  483", 0.44),
            &glyphs("4367 4233 8861 5035 786", 0.99)
        ));
        // An upright `0908` reads `8060` turned over, hardly surer: it stays upright.
        assert!(!surer_turned_over(
            &glyphs("0908", 0.75),
            &glyphs("8060", 0.77)
        ));
    }

    #[test]
    fn a_line_is_read_turned_over_when_most_of_its_neighbours_with_digits_were() {
        let line = |text: &str, x: u32, y: u32, upside_down: bool| {
            let bounds = Bounds {
                x,
                y,
                width: 200,
                height: 90,
            };
            TextLine {
                bounds,
                strip: Strip::level(bounds),
                glyphs: glyphs(text, 0.9),
                upside_down,
                digits_read: None,
            }
        };
        // A card lying upside down with its number in two lines of two groups: three were read
        // turned over, `0243` upright without doubt. Above the card, a receipt's lines, upright.
        let lines = [
            line("ORDER 2024112270123", 400, 0, false),
            line("TEL 021-6888 1237", 400, 40, false),
            line("4918", 600, 380, true),
            line("8980", 890, 380, false),
            line("6222", 890, 500, true),
            line("0243", 600, 500, false),
            line("VALID THRU", 600, 620, false),
        ];
        let among_turned: Vec<usize> = (0..lines.len())
            .filter(|&at| mostly_turned_over_near(&lines, at))
            .collect();
        // `8980` and `0243` each have two of their three neighbours turned over; the receipt's
        // lines are far from the card, and a word takes no part.
        assert_eq!(among_turned, [3, 5]);
        // As many neighbours one way as the other: nothing to go by.
        assert!(!mostly_turned_over_near(&lines[3..6], 2));
    }

    #[test]
    fn tensor_planes_are_bgr_in_minus_one_to_one() {
        let image = RgbImage::from_pixel(1, 1, image::Rgb([255, 0, 127]));
        let planes = to_tensor(&image);
        assert_eq!(planes.len(), 3);
        assert!(
            (planes[0] - (127.0 / 127.5 - 1.0)).abs() < 1e-6,
            "{planes:?}"
        );
        assert_eq!(planes[1], -1.0);
        assert_eq!(planes[2], 1.0);
    }
}
