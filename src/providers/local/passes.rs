//! A card read as a declared list of passes, run in order by one loop until a reading is settled
//! (a valid number of a known issuer, every digit read with some certainty). Each pass takes
//! another look and offers what it read; the most trusted reading of all is kept. Which pass
//! settled a read is counted (`ocrgate.local.reads`, by `settled_by`), and the OCR bench can leave
//! a pass out, so a pass that stops paying its way shows.

use std::cell::OnceCell;

use image::{Rgb, RgbImage};
use imageproc::geometric_transformations::{Border, Interpolation, rotate_about_center};

use super::{
    MAX_DESKEW, MIN_DESKEW, ROW_LOOK, Readings, SECOND_LOOK, THIRD_LOOK, around_row,
    card::{self, Picked},
    engine::{self, Channel, Engine, FIRST_LOOK, Look, TextLine},
    flattened, inference_failed, number_rows, stopped,
};
use crate::{enrich::BinTable, provider::ProviderError};

/// One pass of a read.
pub(super) struct Pass {
    /// Its name, as the `settled_by` label writes it.
    pub(super) name: &'static str,
    run: fn(&mut Read<'_, '_>) -> Result<(), ProviderError>,
}

/// The passes, in order; each runs only while no reading is settled.
pub(super) const PASSES: &[Pass] = &[
    // The whole image, as it is.
    Pass {
        name: "first_look",
        run: first_look,
    },
    // The image turned upright by the lines' angle and seen larger (a card small in a cluttered
    // frame), then its lines given more room (narrow digits, a repeated digit read as one).
    Pass {
        name: "upright_larger",
        run: |read| read.look_again(SECOND_LOOK),
    },
    Pass {
        name: "upright_roomier",
        run: |read| read.look_again(THIRD_LOOK),
    },
    // The number's row alone, enlarged: print beside the card left out, small groups the whole
    // image hid found; then in grey with its light evened out, groups under glare or shade.
    Pass {
        name: "number_row",
        run: number_row,
    },
    // The number's row read as one line, without detecting it, from its first box of digits to
    // its last and a little past each: a group the detector missed between or beside the others
    // is read with them, by both recognisers.
    Pass {
        name: "whole_row",
        run: whole_row,
    },
    // Nothing found, or nothing read surely enough to answer (`local.min_confidence`): print of
    // another colour than its ground but about as light (tone on tone, a colour cast over the
    // photo) may stand out in one colour channel, seen alone.
    Pass {
        name: "channels",
        run: channels,
    },
];

/// The label of a read no pass settled.
pub const UNSETTLED: &str = "none";

/// Which passes a read runs: all of them, unless some are left out to measure what they buy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PassSet(u32);

impl Default for PassSet {
    fn default() -> Self {
        Self(u32::MAX)
    }
}

impl PassSet {
    /// Every pass but those `named`; the first look, on which the others build, cannot be left out.
    pub(super) fn without(named: &[String]) -> Result<Self, String> {
        let mut set = Self::default();
        for name in named {
            match PASSES.iter().position(|pass| pass.name == *name) {
                Some(0) => return Err(format!("the `{name}` pass cannot be left out")),
                Some(at) => set.0 &= !(1 << at),
                None => {
                    return Err(format!(
                        "no pass is called `{name}`; the passes: {}",
                        PASSES
                            .iter()
                            .map(|pass| pass.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
        }
        Ok(set)
    }

    fn has(self, at: usize) -> bool {
        self.0 & (1 << at) != 0
    }
}

/// Every pass's name, in order, then [`UNSETTLED`]: the values of `settled_by`.
pub fn pass_names() -> impl Iterator<Item = &'static str> {
    PASSES.iter().map(|pass| pass.name).chain([UNSETTLED])
}

/// What a read knows so far. The engine is borrowed apart (`'e`), to be given back while the
/// looks, which hold the images they were read in (`'a`), are still described.
pub(super) struct Read<'a, 'e> {
    engine: &'e mut Engine,
    bins: &'a BinTable,
    stop: &'a dyn Fn() -> bool,
    image: &'a RgbImage,
    /// The image turned upright by the first look's lines, made when a pass first needs it.
    turned: &'a OnceCell<Option<RgbImage>>,
    skew: Option<f32>,
    /// Every look's lines and the image they were read in.
    pub(super) looks: Vec<(Vec<TextLine>, &'a RgbImage)>,
    /// The most trusted reading, and the look it came from.
    pub(super) best: Option<Picked>,
    pub(super) best_in: usize,
    pub(super) readings: Readings,
    /// Readings less confident than this are no answer (`local.min_confidence`).
    min_confidence: f32,
}

impl<'a, 'e> Read<'a, 'e> {
    pub(super) fn new(
        engine: &'e mut Engine,
        bins: &'a BinTable,
        stop: &'a dyn Fn() -> bool,
        image: &'a RgbImage,
        turned: &'a OnceCell<Option<RgbImage>>,
        min_confidence: f32,
    ) -> Self {
        Self {
            engine,
            bins,
            stop,
            image,
            turned,
            skew: None,
            looks: Vec::new(),
            best: None,
            best_in: 0,
            readings: Readings::default(),
            min_confidence,
        }
    }

    /// Runs the passes of `set` until one settles the reading; the name of the pass that settled
    /// it, or [`UNSETTLED`].
    pub(super) fn run(&mut self, set: PassSet) -> Result<&'static str, ProviderError> {
        let passes = PASSES.iter().enumerate().filter(|(at, _)| set.has(*at));
        for (_, pass) in passes {
            (pass.run)(self)?;
            if self.settled() {
                return Ok(pass.name);
            }
        }
        Ok(UNSETTLED)
    }

    fn settled(&self) -> bool {
        self.best.as_ref().is_some_and(Picked::settled)
    }

    /// Whether the best reading so far would be answered, as far as the looks taken tell.
    fn answerable(&self) -> bool {
        self.best
            .as_ref()
            .is_some_and(|best| self.readings.evidence(best).confidence() >= self.min_confidence)
    }

    /// Reads `view` with `look`.
    fn read(&mut self, view: &RgbImage, look: Look) -> Result<engine::Reading, ProviderError> {
        self.engine
            .read(view, look, self.stop)
            .map_err(inference_failed)?
            .ok_or_else(stopped)
    }

    /// The number `lines` give, read a second time where the first settles nothing, counted
    /// among the readings.
    fn pick(&mut self, lines: &[TextLine]) -> Option<Picked> {
        let picked = card::pick_number_read_twice(lines, self.bins);
        self.readings.add(picked.as_ref());
        picked
    }

    /// Keeps `lines`, read in `image`, as a look; `picked`, read in them, becomes the best
    /// reading when it is more trusted than the best so far.
    fn keep(&mut self, picked: Option<Picked>, lines: Vec<TextLine>, image: &'a RgbImage) {
        self.looks.push((lines, image));
        if card::more_trusted(picked.as_ref(), self.best.as_ref()) {
            self.best = picked;
            self.best_in = self.looks.len() - 1;
        }
    }

    /// Keeps `picked`, read in `lines` of a part of look `at`'s image, only when it is more
    /// trusted than the best so far: as a look of `lines` and look `at`'s lines around them (an
    /// expiry below the number), in look `at`'s image.
    fn keep_with_look(&mut self, picked: Option<Picked>, mut lines: Vec<TextLine>, at: usize) {
        if card::more_trusted(picked.as_ref(), self.best.as_ref()) {
            let (around, image) = &self.looks[at];
            lines.extend(around.iter().cloned());
            let image = *image;
            self.keep(picked, lines, image);
        }
    }

    /// The image turned upright by the first look's lines, or the image itself when they are
    /// level enough, or turned too far to be a card held a little off.
    fn upright(&self) -> &'a RgbImage {
        let turned = self.turned.get_or_init(|| {
            self.skew
                .filter(|skew| (MIN_DESKEW..=MAX_DESKEW).contains(&skew.abs()))
                .map(|skew| {
                    rotate_about_center(
                        self.image,
                        -skew,
                        Interpolation::Bilinear,
                        Border::Constant(Rgb([128, 128, 128])),
                    )
                })
        });
        turned.as_ref().unwrap_or(self.image)
    }

    /// The upright image read with `look`, kept as a look whatever it reads.
    fn look_again(&mut self, look: Look) -> Result<(), ProviderError> {
        let upright = self.upright();
        let reading = self.read(upright, look)?;
        let picked = self.pick(&reading.lines);
        tracing::debug!(lines = reading.lines.len(), skew = ?self.skew, ?look, "another look");
        self.keep(picked, reading.lines, upright);
        Ok(())
    }
}

fn first_look(read: &mut Read<'_, '_>) -> Result<(), ProviderError> {
    let image = read.image;
    let first = read.read(image, FIRST_LOOK)?;
    tracing::debug!(lines = first.lines.len(), "text lines read");
    read.skew = first.skew;
    let picked = read.pick(&first.lines);
    read.keep(picked, first.lines, image);
    Ok(())
}

/// The likeliest row first, then the next: each as it is, then evened out.
fn number_row(read: &mut Read<'_, '_>) -> Result<(), ProviderError> {
    for (row, at) in number_rows(read.best.as_ref(), read.best_in, &read.looks) {
        let source = read.looks[at].1;
        let around = around_row(row, source.dimensions());
        let crop =
            image::imageops::crop_imm(source, around.x, around.y, around.width, around.height)
                .to_image();
        let even = flattened(&crop, row.height as f32);
        for view in [&crop, &even] {
            let reading = read.read(view, ROW_LOOK)?;
            let lines: Vec<_> = reading
                .lines
                .into_iter()
                .map(|line| line.moved(around.x, around.y))
                .collect();
            let picked = read.pick(&lines);
            tracing::debug!(lines = lines.len(), ?around, "a look at the number's row");
            read.keep_with_look(picked, lines, at);
            if read.settled() {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// The likeliest rows, as `number_row` takes them, each read whole: the way up its lines were
/// read, then turned over (digits look much alike either way up, and a number's row read the
/// wrong way up settles nothing). A reading is kept as a look of its own (with the lines of the
/// look its row was found in) when it is the best so far.
fn whole_row(read: &mut Read<'_, '_>) -> Result<(), ProviderError> {
    for (row, at) in number_rows(read.best.as_ref(), read.best_in, &read.looks) {
        let source = read.looks[at].1;
        let Some((band, upside_down)) = card::number_band(&read.looks[at].0, row) else {
            continue;
        };
        for upside_down in [upside_down, !upside_down] {
            if (read.stop)() {
                return Err(stopped());
            }
            let Some(line) = read
                .engine
                .read_row(source, band, upside_down)
                .map_err(inference_failed)?
            else {
                continue;
            };
            let picked = read.pick(std::slice::from_ref(&line));
            tracing::debug!(?band, upside_down, "the number's row read whole");
            read.keep_with_look(picked, vec![line], at);
            if read.settled() {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Only photos without a number, or with none read surely enough to answer, pay for it: the
/// upright image's red, green and blue, each alone in grey, detected at 768 as the second look is,
/// until one reads a number to answer. Print as light as its ground but of another hue is lost to
/// the detector and the recogniser in colour, and differs from its ground most in one of them.
fn channels(read: &mut Read<'_, '_>) -> Result<(), ProviderError> {
    let upright = read.upright();
    for channel in Channel::ALL {
        if read.answerable() {
            return Ok(());
        }
        let look = Look {
            channel: Some(channel),
            ..SECOND_LOOK
        };
        let lines = read.read(upright, look)?.lines;
        let picked = read.pick(&lines);
        read.keep(picked, lines, upright);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_are_left_out_by_name_but_never_the_first_look() {
        assert_eq!(PassSet::without(&[]), Ok(PassSet::default()));
        let without =
            PassSet::without(&["channels".into(), "upright_roomier".into()]).expect("known");
        let kept: Vec<_> = PASSES
            .iter()
            .enumerate()
            .filter(|(at, _)| without.has(*at))
            .map(|(_, pass)| pass.name)
            .collect();
        assert_eq!(
            kept,
            ["first_look", "upright_larger", "number_row", "whole_row"]
        );
        assert!(PassSet::without(&["first_look".into()]).is_err());
        let unknown = PassSet::without(&["widest".into()]).expect_err("unknown");
        assert!(
            unknown.contains("widest") && unknown.contains("number_row"),
            "{unknown}"
        );
    }
}
