//! Which of the text lines read from a card is its number.

use super::engine::{Glyph, TextLine};
use crate::{enrich::luhn_valid, provider::CardNumber};

/// Card numbers have 16 to 19 digits (13- and 15-digit numbers are not issued in China any more
/// and the vendors we stand in for do not read them either).
const DIGITS: std::ops::RangeInclusive<usize> = 16..=19;

/// A digit read with less probability than this may be replaced by its runner-up when that makes
/// a number pass the Luhn check. A number read with certainty is left alone: some real cards fail
/// Luhn.
const DOUBTFUL: f32 = 0.9;

/// Boxes further apart than this many line heights are not one number's groups.
const MAX_GAP: f32 = 2.0;

/// How many of the least certain digits are tried.
const CORRECTIONS_TRIED: usize = 3;

/// The card number among `lines`, or `None` when no line holds 16 to 19 digits.
///
/// A number printed in widely spaced groups is often detected as several boxes, so boxes on the
/// same row are joined first, every run of neighbouring boxes on its own (print beside the card,
/// such as a price on a receipt, may share the number's row). A number failing the Luhn check is
/// most often one misread digit: the least certain digits are tried with their runner-up. Among
/// the candidates, one passing the Luhn check wins, then the longer, then the tallest text (the
/// number is the largest print on a card's face).
pub fn pick_number(lines: &[TextLine]) -> Option<CardNumber> {
    rows(lines)
        .iter()
        .flat_map(|row| spans(row))
        .flat_map(|row| {
            digit_runs(&row.glyphs)
                .into_iter()
                .map(move |digits| (digits, row.height))
        })
        .filter(|(digits, _)| DIGITS.contains(&digits.len()))
        .map(|(digits, height)| (corrected(&digits), height))
        .max_by(|(a, a_height), (b, b_height)| {
            luhn_valid(a)
                .cmp(&luhn_valid(b))
                .then(a.len().cmp(&b.len()))
                .then(a_height.total_cmp(b_height))
        })
        .and_then(|(digits, _)| CardNumber::parse(&digits))
}

/// The digits as read, or with one doubtful digit replaced by its runner-up if that, and only
/// that, makes them pass the Luhn check.
fn corrected(digits: &[&Glyph]) -> String {
    let read: String = digits.iter().map(|glyph| glyph.text.as_str()).collect();
    if luhn_valid(&read) {
        return read;
    }
    let mut doubtful: Vec<(usize, char, f32)> = digits
        .iter()
        .enumerate()
        .filter(|(_, glyph)| glyph.confidence < DOUBTFUL)
        .filter_map(|(at, glyph)| {
            glyph
                .runner_up
                .map(|(digit, _)| (at, digit, glyph.confidence))
        })
        .collect();
    doubtful.sort_by(|a, b| a.2.total_cmp(&b.2));
    doubtful
        .into_iter()
        .take(CORRECTIONS_TRIED)
        .map(|(at, digit, _)| {
            read.char_indices()
                .map(|(i, c)| if i == at { digit } else { c })
                .collect::<String>()
        })
        .find(|candidate| luhn_valid(candidate))
        .unwrap_or(read)
}

struct Row<'a> {
    glyphs: Vec<&'a Glyph>,
    height: f32,
}

impl<'a> Row<'a> {
    /// The row's glyphs, each box's stripped of the marks a crop's edges pick up (boxes follow one
    /// another as spaced groups do). Boxes less than half as tall as the row's tallest are specks,
    /// not print.
    fn join(boxes: &[&'a TextLine]) -> Self {
        let height = boxes
            .iter()
            .map(|line| line.bounds.height)
            .max()
            .unwrap_or(0);
        let mut glyphs = Vec::new();
        for line in boxes.iter().filter(|line| 2 * line.bounds.height >= height) {
            let first = line.glyphs.iter().position(is_digit);
            let last = line.glyphs.iter().rposition(is_digit);
            if let (Some(first), Some(last)) = (first, last) {
                glyphs.extend(&line.glyphs[first..=last]);
            }
        }
        Self {
            glyphs,
            height: height as f32,
        }
    }
}

fn is_digit(glyph: &Glyph) -> bool {
    glyph.text.len() == 1 && glyph.text.as_bytes()[0].is_ascii_digit()
}

/// Every run of neighbouring boxes of a row, joined.
fn spans<'a>(row: &[&'a TextLine]) -> Vec<Row<'a>> {
    (0..row.len())
        .flat_map(|start| (start + 1..=row.len()).map(move |end| (start, end)))
        .map(|(start, end)| Row::join(&row[start..end]))
        .collect()
}

/// Joins boxes into rows, left to right: a box continues the row whose last box ends to its left,
/// at about the same height (within half a line) and close by (a number's groups are a space or
/// two apart), so a tilted number still forms one row. Only boxes that are mostly digits take part, so a stray mark read
/// as a letter between two groups does not split the number.
fn rows(lines: &[TextLine]) -> Vec<Vec<&TextLine>> {
    let mut sorted: Vec<&TextLine> = lines.iter().filter(|line| mostly_digits(line)).collect();
    sorted.sort_by_key(|line| line.bounds.x);
    let mut rows: Vec<Vec<&TextLine>> = Vec::new();
    for line in sorted {
        let continues = rows
            .iter_mut()
            .filter_map(|row| {
                let last = row.last()?;
                let offset = (line.bounds.center_y() - last.bounds.center_y()).abs();
                let height = line.bounds.height.max(last.bounds.height) as f32;
                let gap = line.bounds.x as f32 - (last.bounds.x + last.bounds.width) as f32;
                (offset < height / 2.0 && gap < MAX_GAP * height).then_some((offset, row))
            })
            .min_by(|(a, _), (b, _)| a.total_cmp(b))
            .map(|(_, row)| row);
        match continues {
            Some(row) => row.push(line),
            None => rows.push(vec![line]),
        }
    }
    rows
}

fn mostly_digits(line: &TextLine) -> bool {
    let (digits, others) = line
        .glyphs
        .iter()
        .filter(|glyph| !glyph.text.trim().is_empty())
        .fold((0, 0), |(digits, others), glyph| {
            if is_digit(glyph) {
                (digits + 1, others)
            } else {
                (digits, others + 1)
            }
        });
    digits > 0 && digits >= 2 * others
}

/// The digit sequences of a row; spaces and dashes between groups do not break one.
fn digit_runs<'a>(glyphs: &[&'a Glyph]) -> Vec<Vec<&'a Glyph>> {
    glyphs
        .split(|glyph| !(is_digit(glyph) || matches!(glyph.text.as_str(), " " | "-")))
        .map(|run| {
            run.iter()
                .copied()
                .filter(|glyph| is_digit(glyph))
                .collect::<Vec<_>>()
        })
        .filter(|digits| !digits.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::local::engine::Bounds;

    /// A box whose every character was read with certainty.
    fn line(x: u32, y: u32, height: u32, text: &str) -> TextLine {
        TextLine {
            bounds: Bounds {
                x,
                y,
                width: 100,
                height,
            },
            glyphs: text
                .chars()
                .map(|c| Glyph {
                    text: c.to_string(),
                    confidence: 1.0,
                    runner_up: None,
                })
                .collect(),
        }
    }

    /// `line`, with the digit at `at` doubtful and `runner_up` second.
    fn doubting(mut line: TextLine, at: usize, confidence: f32, runner_up: char) -> TextLine {
        line.glyphs[at].confidence = confidence;
        line.glyphs[at].runner_up = Some((runner_up, 1.0 - confidence));
        line
    }

    #[test]
    fn groups_on_one_row_are_joined_in_reading_order() {
        let lines = [
            line(260, 101, 30, "：0011."),
            line(280, 98, 8, "三"),
            line(390, 110, 12, "5525"),
            line(10, 20, 12, "中国银行"),
            line(10, 100, 30, "6222"),
            line(370, 99, 30, "2345 678"),
            line(150, 100, 30, "0202"),
            line(10, 160, 12, "VALID THRU 12/30"),
        ];
        let number = pick_number(&lines).expect("a number");
        assert_eq!(number.digits(), "6222020200112345678");
    }

    #[test]
    fn a_tilted_number_still_forms_one_row() {
        // Each group sits higher than the one before; the first and last are a line apart.
        let lines = [
            line(670, 343, 49, "0269"),
            line(154, 374, 52, "6205"),
            line(499, 353, 51, "9257"),
            line(327, 366, 47, "2243"),
            line(380, 475, 33, "VALID THRU 08/32"),
        ];
        let number = pick_number(&lines).expect("a number");
        assert_eq!(number.digits(), "6205224392570269");
    }

    #[test]
    fn print_beside_the_card_on_the_numbers_row_is_left_out() {
        // A price on a receipt left of the card, on the same row as the number's groups: joined
        // whole, the row reads 21 digits.
        let mut lines = [
            line(0, 441, 42, "78.50"),
            line(224, 443, 42, "6013 8230"),
            line(441, 440, 38, "3184"),
            line(546, 436, 39, "4074721"),
        ];
        // As they were detected: the price runs to the card's edge.
        for (line, width) in lines.iter_mut().zip([200, 200, 92, 140]) {
            line.bounds.width = width;
        }
        let number = pick_number(&lines).expect("a number");
        assert_eq!(number.digits(), "6013823031844074721");
    }

    #[test]
    fn a_luhn_valid_number_wins_over_a_taller_invalid_one() {
        let lines = [
            line(10, 50, 40, "4111 1111 1111 1112"),
            line(10, 150, 20, "4111 1111 1111 1111"),
        ];
        assert_eq!(
            pick_number(&lines).expect("a number").digits(),
            "4111111111111111"
        );
    }

    #[test]
    fn a_doubtful_digit_is_replaced_by_its_runner_up_when_that_passes_luhn() {
        // 4111 1111 1111 1111 read with its fifth digit as a doubtful 2.
        let misread = doubting(line(10, 50, 40, "4111 2111 1111 1111"), 5, 0.6, '1');
        assert_eq!(
            pick_number(&[misread]).expect("a number").digits(),
            "4111111111111111"
        );
    }

    #[test]
    fn a_number_read_with_certainty_is_kept_even_when_it_fails_luhn() {
        let certain = line(10, 50, 40, "6222 0202 0011 2345 670");
        assert_eq!(
            pick_number(&[certain]).expect("a number").digits(),
            "6222020200112345670"
        );
        // A doubtful digit whose runner-up does not pass Luhn either changes nothing.
        let doubtful = doubting(line(10, 50, 40, "6222 0202 0011 2345 670"), 0, 0.5, '8');
        assert_eq!(
            pick_number(&[doubtful]).expect("a number").digits(),
            "6222020200112345670"
        );
    }

    #[test]
    fn short_or_long_digit_runs_are_not_card_numbers() {
        let lines = [
            line(10, 10, 20, "12/30"),
            line(10, 60, 20, "95588 客服热线"),
            line(10, 110, 20, "12345678901234567890"),
        ];
        assert_eq!(pick_number(&lines), None);
    }

    #[test]
    fn letters_split_runs_and_separators_do_not() {
        let line = line(0, 0, 10, "No. 6222 0202-0011  2345x678 /");
        let glyphs: Vec<&Glyph> = line.glyphs.iter().collect();
        let runs: Vec<String> = digit_runs(&glyphs)
            .iter()
            .map(|run| run.iter().map(|g| g.text.as_str()).collect())
            .collect();
        assert_eq!(runs, ["6222020200112345", "678"]);
    }
}
