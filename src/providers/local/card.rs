//! Which of the text lines read from a card is its number.

use super::engine::TextLine;
use crate::{enrich::luhn_valid, provider::CardNumber};

/// Card numbers have 16 to 19 digits (13- and 15-digit numbers are not issued in China any more
/// and the vendors we stand in for do not read them either).
const DIGITS: std::ops::RangeInclusive<usize> = 16..=19;

/// The card number among `lines`, or `None` when no line holds 16 to 19 digits.
///
/// A number printed in widely spaced groups is often detected as several boxes, so boxes on the
/// same row are joined first. Among the candidates, one passing the Luhn check wins, then the
/// tallest text (the number is the largest print on a card's face).
pub fn pick_number(lines: &[TextLine]) -> Option<CardNumber> {
    rows(lines)
        .iter()
        .flat_map(|row| {
            digit_runs(&row.text)
                .into_iter()
                .map(move |digits| (digits, row.height))
        })
        .filter(|(digits, _)| DIGITS.contains(&digits.len()))
        .max_by(|(a, a_height), (b, b_height)| {
            luhn_valid(a)
                .cmp(&luhn_valid(b))
                .then(a_height.total_cmp(b_height))
        })
        .and_then(|(digits, _)| CardNumber::parse(&digits))
}

struct Row {
    text: String,
    height: f32,
}

impl Row {
    /// The row's text, each box's stripped of the marks a crop's edges pick up. Boxes less than
    /// half as tall as the row's tallest are specks, not print.
    fn join(boxes: Vec<&TextLine>) -> Self {
        let height = boxes
            .iter()
            .map(|line| line.bounds.height)
            .max()
            .unwrap_or(0);
        let text = boxes
            .iter()
            .filter(|line| 2 * line.bounds.height >= height)
            .map(|line| line.text.trim_matches(|c: char| !c.is_ascii_digit()))
            .collect::<Vec<_>>()
            .join(" ");
        Self {
            text,
            height: height as f32,
        }
    }
}

/// Joins boxes into rows, left to right: a box continues the row whose last box ends to its left
/// at about the same height (within half a line), so a tilted number still forms one row. Only
/// boxes that are mostly digits take part, so a stray mark read as a letter between two groups
/// does not split the number.
fn rows(lines: &[TextLine]) -> Vec<Row> {
    let mut sorted: Vec<&TextLine> = lines
        .iter()
        .filter(|line| mostly_digits(&line.text))
        .collect();
    sorted.sort_by_key(|line| line.bounds.x);
    let mut rows: Vec<Vec<&TextLine>> = Vec::new();
    for line in sorted {
        let offset = |row: &Vec<&TextLine>| {
            row.last().map_or(f32::INFINITY, |last| {
                (line.bounds.center_y() - last.bounds.center_y()).abs()
            })
        };
        let continues = rows
            .iter_mut()
            .filter(|row| {
                row.last().is_some_and(|last| {
                    let height = line.bounds.height.max(last.bounds.height) as f32;
                    (line.bounds.center_y() - last.bounds.center_y()).abs() < height / 2.0
                })
            })
            .min_by(|a, b| offset(a).total_cmp(&offset(b)));
        match continues {
            Some(row) => row.push(line),
            None => rows.push(vec![line]),
        }
    }
    rows.into_iter().map(Row::join).collect()
}

fn mostly_digits(text: &str) -> bool {
    let (digits, others) =
        text.chars()
            .filter(|c| !c.is_whitespace())
            .fold((0, 0), |(digits, others), c| {
                if c.is_ascii_digit() {
                    (digits + 1, others)
                } else {
                    (digits, others + 1)
                }
            });
    digits > 0 && digits >= 2 * others
}

/// The digit sequences of `text`; spaces and dashes between groups do not break one.
fn digit_runs(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_ascii_digit() || c == ' ' || c == '-'))
        .map(|run| run.chars().filter(char::is_ascii_digit).collect::<String>())
        .filter(|digits| !digits.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::local::engine::Bounds;

    fn line(x: u32, y: u32, height: u32, text: &str) -> TextLine {
        TextLine {
            bounds: Bounds {
                x,
                y,
                width: 100,
                height,
            },
            text: text.to_owned(),
        }
    }

    #[test]
    fn groups_on_one_row_are_joined_in_reading_order() {
        let lines = [
            line(300, 101, 30, "：0011."),
            line(280, 98, 8, "三"),
            line(390, 110, 12, "5525"),
            line(10, 20, 12, "中国银行"),
            line(10, 100, 30, "6222"),
            line(400, 99, 30, "2345 678"),
            line(200, 100, 30, "0202"),
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
        assert_eq!(
            digit_runs("No. 6222 0202-0011  2345x678 /"),
            ["6222020200112345", "678"]
        );
    }
}
