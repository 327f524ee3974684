//! How plainly a card's number stands in its photo: what a person reading it has to go by.
//!
//! The generator draws the photo twice, once without the number, under the same light, blur,
//! noise and everything drawn over the number: the two differ only where the number's print
//! shows, by as much as it shows there. With the digits' height and the blur the photo was taken
//! with, that gives one score, calibrated on numbers judged by eye.

use ab_glyph::{Font, FontVec, PxScale, ScaleFont, point};
use image::RgbImage;
use imageproc::geometric_transformations::Projection;

use crate::Quad;

/// How plainly a card's number stands in its photo
/// ([`crate::CardGenerator::measuring_legibility`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Legibility {
    /// The smallest digit's height, in the photo's pixels.
    pub height: f32,
    /// The faintest digit's print: how far its box's colours lie from the photo drawn without it
    /// (the 90th percentile over the box, as a distance in RGB), in units of the sensor noise's σ.
    pub contrast: f32,
    /// How far the blur spreads a point (the focus blur, a shaken hand's streak and the warp onto
    /// the photo, as one σ), as a share of the digits' height.
    pub blur: f32,
    /// The photo's JPEG quality.
    pub quality: u8,
}

impl Legibility {
    /// The score from which a number counts as legible ([`Self::is_legible`]).
    pub const LEGIBLE: f32 = 900.0;

    /// How plainly the number stands, as one figure: the faintest digit's contrast, times the
    /// digits' height in pixels, times how many of the blur's σ that height spans. Each factor
    /// alone tells the numbers no person reads from the rest less well than their product does.
    pub fn score(&self) -> f32 {
        self.contrast * self.height / self.blur
    }

    /// Whether a person may read the number digit for digit, if with effort: a score of
    /// [`Self::LEGIBLE`] or more. The line was drawn on 800 photos whose misses were judged by
    /// eye (`BENCHMARKS.md`, *How plainly a number stands, measured by the generator*): under it
    /// lay 38 of the 42 numbers no one read, 45 of the 753 the reader read, and none of the 5
    /// misread numbers a person reads. It errs towards legible: it sees how faint, small and
    /// blurred the print is, not digits squeezed into each other, a pattern crossing them or a
    /// digit fading halfway.
    pub fn is_legible(&self) -> bool {
        self.score() >= Self::LEGIBLE
    }
}

/// How a photo was taken: what blurs it and what noise lies over it, in its pixels.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Taken {
    /// The focus blur's σ.
    pub focus: f32,
    /// How long a shaken hand's streak is (0 for a steady one).
    pub streak: f32,
    /// The sensor noise's σ, in each channel.
    pub noise: f64,
}

impl Taken {
    /// The focus blur, the streak and the warp as one σ: a streak of length `l` spreads a point
    /// as a uniform smear, whose σ is `l / √12`, and the warp's bilinear sampling as a triangle
    /// one pixel wide each way, whose σ is `1 / √6`.
    fn spread(self) -> f32 {
        (self.focus.powi(2) + self.streak.powi(2) / 12.0 + 1.0 / 6.0).sqrt()
    }
}

/// The box each digit of `text` covers when drawn at (`x`, `y`) as `draw_text_mut` lays it out,
/// in order, its corners clockwise from the top left.
pub(crate) fn digit_boxes(x: i32, y: i32, scale: PxScale, font: &FontVec, text: &str) -> Vec<Quad> {
    let scaled = font.as_scaled(scale);
    let mut advance = 0.0;
    let mut previous = None;
    let mut boxes = Vec::new();
    // As imageproc's `layout_glyphs` places glyphs, kerning and all.
    for c in text.chars() {
        let id = scaled.glyph_id(c);
        let glyph = id.with_scale_and_position(scale, point(advance, scaled.ascent()));
        advance += scaled.h_advance(id);
        if let Some(outlined) = scaled.outline_glyph(glyph) {
            if let Some(previous) = previous {
                advance += scaled.kern(id, previous);
            }
            previous = Some(id);
            if c.is_ascii_digit() {
                let bounds = outlined.px_bounds();
                let (left, top) = (x as f32 + bounds.min.x, y as f32 + bounds.min.y);
                let (right, bottom) = (x as f32 + bounds.max.x, y as f32 + bounds.max.y);
                boxes.push([(left, top), (right, top), (right, bottom), (left, bottom)]);
            }
        }
    }
    boxes
}

/// The legibility of the digits in `digits` (boxes on the face `placed` put in `photo`), whose
/// `blank` twin was drawn alike without them. `None` when the face was not drawn or shows no
/// digit.
pub(crate) fn measure(
    photo: &RgbImage,
    blank: &RgbImage,
    placed: Option<Projection>,
    digits: &[Quad],
    taken: Taken,
    quality: u8,
) -> Option<Legibility> {
    let placed = placed?;
    let mut height = f32::INFINITY;
    let mut contrast = f32::INFINITY;
    for digit in digits {
        let corners = digit.map(|corner| placed * corner);
        let side = |(ax, ay): (f32, f32), (bx, by): (f32, f32)| (bx - ax).hypot(by - ay);
        height = height.min((side(corners[0], corners[3]) + side(corners[1], corners[2])) / 2.0);
        contrast = contrast.min(digit_print(photo, blank, &corners) / taken.noise as f32);
    }
    height.is_finite().then(|| Legibility {
        height,
        contrast,
        blur: taken.spread() / height,
        quality,
    })
}

/// Within `corners` (a convex quad, clockwise): the 90th percentile of how far `photo`'s colours
/// lie from `blank`'s, as a distance in RGB. Zero for a quad wholly outside the photo.
fn digit_print(photo: &RgbImage, blank: &RgbImage, corners: &Quad) -> f32 {
    let inside = |px: f32, py: f32| {
        (0..4).all(|i| {
            let (ax, ay) = corners[i];
            let (bx, by) = corners[(i + 1) % 4];
            (bx - ax) * (py - ay) - (by - ay) * (px - ax) >= 0.0
        })
    };
    let xs = corners.map(|(x, _)| x);
    let ys = corners.map(|(_, y)| y);
    let span = |values: [f32; 4], limit: u32| {
        let low = values
            .into_iter()
            .fold(f32::INFINITY, f32::min)
            .floor()
            .max(0.0) as u32;
        let high = values
            .into_iter()
            .fold(0.0, f32::max)
            .ceil()
            .min(limit as f32) as u32;
        low..high
    };
    let mut distances = Vec::new();
    for py in span(ys, photo.height()) {
        for px in span(xs, photo.width()) {
            if !inside(px as f32 + 0.5, py as f32 + 0.5) {
                continue;
            }
            let (shown, under) = (photo.get_pixel(px, py).0, blank.get_pixel(px, py).0);
            let distance: f32 = (0..3)
                .map(|c| (f32::from(shown[c]) - f32::from(under[c])).powi(2))
                .sum();
            distances.push(distance.sqrt());
        }
    }
    if distances.is_empty() {
        return 0.0;
    }
    let at = (distances.len() - 1) * 9 / 10;
    *distances.select_nth_unstable_by(at, f32::total_cmp).1
}

#[cfg(test)]
mod tests {
    use image::Rgb;
    use imageproc::{drawing::draw_filled_rect_mut, rect::Rect};

    use super::*;
    use crate::{CardGenerator, inked_box};

    #[test]
    fn measuring_legibility_draws_the_same_photos() {
        let fonts = CardGenerator::default_fonts_dir();
        let plain = CardGenerator::new(&fonts).expect("fonts");
        let measuring = CardGenerator::new(&fonts)
            .expect("fonts")
            .measuring_legibility();
        for seed in 0..4 {
            for mode in [
                CardGenerator::card,
                CardGenerator::hard_card,
                CardGenerator::wild_card,
                CardGenerator::design_card,
            ] {
                let (card, measured) = (mode(&plain, seed), mode(&measuring, seed));
                assert!(card.jpeg == measured.jpeg, "{measured:?}");
                assert_eq!(card.legibility, None);
                let legibility = measured.legibility.expect("measured");
                assert!(
                    legibility.height > 5.0 && legibility.contrast > 0.0,
                    "{measured:?}"
                );
            }
        }
    }

    #[test]
    fn each_digit_has_its_box_in_order_within_the_lines() {
        let generator = CardGenerator::new(&CardGenerator::default_fonts_dir()).expect("fonts");
        for (_, font) in &generator.number_fonts {
            let (scale, text) = (PxScale::from(40.0), "6222  0212 4");
            let boxes = digit_boxes(30, 50, scale, font, text);
            assert_eq!(boxes.len(), 9);
            let [(left, top), _, (right, bottom), _] =
                inked_box(30, 50, scale, font, text).expect("ink");
            for pair in boxes.windows(2) {
                // Each digit starts right of where the one before it started.
                assert!(pair[0][0].0 < pair[1][0].0, "{pair:?}");
            }
            for [(l, t), _, (r, b), _] in boxes {
                assert!(l >= left - 1.0 && r <= right + 1.0 && t >= top - 1.0 && b <= bottom + 1.0);
            }
        }
    }

    #[test]
    fn a_number_is_as_legible_as_its_faintest_digit() {
        let blank = RgbImage::from_pixel(120, 60, Rgb([100, 100, 100]));
        let mut photo = blank.clone();
        // Two digits' boxes, 20 px high; the second printed fainter.
        let digits = [
            [(10.0, 20.0), (30.0, 20.0), (30.0, 40.0), (10.0, 40.0)],
            [(50.0, 20.0), (70.0, 20.0), (70.0, 40.0), (50.0, 40.0)],
        ];
        draw_filled_rect_mut(&mut photo, Rect::at(14, 20).of_size(8, 20), Rgb([160; 3]));
        draw_filled_rect_mut(&mut photo, Rect::at(54, 20).of_size(8, 20), Rgb([130; 3]));
        let taken = Taken {
            focus: 1.2,
            streak: 0.0,
            noise: 6.0,
        };
        let legibility = measure(
            &photo,
            &blank,
            Some(Projection::scale(1.0, 1.0)),
            &digits,
            taken,
            50,
        )
        .expect("digits in the photo");
        // The fainter digit's print: 30 levels in each channel, over a noise of 6.
        let print = 30.0 * 3f32.sqrt();
        assert!(
            (legibility.contrast - print / 6.0).abs() < 0.01,
            "{legibility:?}"
        );
        assert!((legibility.height - 20.0).abs() < 0.01, "{legibility:?}");
        let spread = (1.2f32.powi(2) + 1.0 / 6.0).sqrt();
        assert!(
            (legibility.blur - spread / 20.0).abs() < 0.001,
            "{legibility:?}"
        );
        let score = print / 6.0 * 20.0 * (20.0 / spread);
        assert!((legibility.score() - score).abs() < 0.5, "{legibility:?}");
        assert!(legibility.is_legible(), "{legibility:?}");

        // A digit outside the photo shows nothing.
        let gone = [[(200.0, 20.0), (220.0, 20.0), (220.0, 40.0), (200.0, 40.0)]];
        let legibility = measure(
            &photo,
            &blank,
            Some(Projection::scale(1.0, 1.0)),
            &gone,
            taken,
            50,
        )
        .expect("a digit");
        assert_eq!(legibility.contrast, 0.0);
        assert!(!legibility.is_legible(), "{legibility:?}");
    }
}
