//! The embedded BIN table: which bank issued a card, and what kind of card it is.

use std::collections::HashMap;

/// The table shipped in the binary (`data/bin-table.tsv`).
const EMBEDDED: &str = include_str!("../../data/bin-table.tsv");

pub use crate::provider::CardType;

/// The issuer of a card, as the BIN table knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardIssuer {
    pub bank_code: String,
    pub bank_name: String,
    pub card_type: CardType,
}

#[derive(Debug, thiserror::Error)]
#[error("BIN table line {line}: {reason}")]
pub struct BinTableError {
    line: usize,
    reason: String,
}

/// Prefix lookup, longest prefix first. Built once at start-up.
#[derive(Debug)]
pub struct BinTable {
    /// Prefix -> issuers by the card length they apply to.
    by_prefix: HashMap<String, Vec<(usize, CardIssuer)>>,
    longest_prefix: usize,
}

impl BinTable {
    /// The table built into ocrgate.
    pub fn embedded() -> Result<Self, BinTableError> {
        Self::parse(EMBEDDED)
    }

    /// Parses `prefix<TAB>length<TAB>bank_code<TAB>bank_name<TAB>card_type` rows after a header
    /// row; `#` lines are comments.
    pub fn parse(text: &str) -> Result<Self, BinTableError> {
        let mut by_prefix: HashMap<String, Vec<(usize, CardIssuer)>> = HashMap::new();
        let rows = text
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.starts_with('#') && !line.trim().is_empty())
            .skip(1);
        for (index, line) in rows {
            let error = |reason: &str| BinTableError {
                line: index + 1,
                reason: reason.to_owned(),
            };
            let fields: Vec<&str> = line.split('\t').collect();
            let [prefix, length, bank_code, bank_name, card_type] = fields[..] else {
                return Err(error("expected 5 tab-separated fields"));
            };
            if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
                return Err(error("the prefix is not digits"));
            }
            let length: usize = length
                .parse()
                .map_err(|_| error("the length is not a number"))?;
            let card_type = match card_type {
                "DC" => CardType::Debit,
                "CC" => CardType::Credit,
                "SCC" => CardType::SemiCredit,
                "PC" => CardType::Prepaid,
                _ => return Err(error("unknown card type")),
            };
            by_prefix.entry(prefix.to_owned()).or_default().push((
                length,
                CardIssuer {
                    bank_code: bank_code.to_owned(),
                    bank_name: bank_name.to_owned(),
                    card_type,
                },
            ));
        }
        let longest_prefix = by_prefix.keys().map(String::len).max().unwrap_or(0);
        Ok(Self {
            by_prefix,
            longest_prefix,
        })
    }

    /// Number of prefixes known.
    pub fn len(&self) -> usize {
        self.by_prefix.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_prefix.is_empty()
    }

    /// Whether some issuer's prefix of five digits or more begins `digits`, for cards of any
    /// length: a reading that starts as a bank's cards do is more likely read right.
    pub fn knows_prefix(&self, digits: &str) -> bool {
        (5..=self.longest_prefix.min(digits.len()))
            .any(|n| self.by_prefix.contains_key(&digits[..n]))
    }

    /// The longest cards issued under a prefix of five digits or more that begins `digits`: a
    /// reading shorter than that, of which no issuer issues cards as short, is most likely a
    /// longer number with digits missed.
    pub fn longest_issued(&self, digits: &str) -> Option<usize> {
        (5..=self.longest_prefix.min(digits.len()))
            .filter_map(|n| self.by_prefix.get(&digits[..n]))
            .flatten()
            .map(|(length, _)| *length)
            .max()
    }

    /// The issuer of the longest prefix of `digits` that applies to a card of its length.
    pub fn lookup(&self, digits: &str) -> Option<&CardIssuer> {
        (1..=self.longest_prefix.min(digits.len()))
            .rev()
            .filter_map(|n| self.by_prefix.get(&digits[..n]))
            .flatten()
            .find(|(length, _)| *length == digits.len())
            .map(|(_, issuer)| issuer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_table_parses_and_is_not_trivial() {
        let table = BinTable::embedded().expect("parses");
        assert!(table.len() > 1000, "{} prefixes", table.len());
    }

    #[test]
    fn several_banks_are_found() {
        let table = BinTable::embedded().expect("parses");
        let issuer = |number: &str| {
            table
                .lookup(number)
                .map(|i| (i.bank_code.as_str(), i.card_type))
        };
        assert_eq!(
            issuer("6222020200112345678"),
            Some(("ICBC", CardType::Debit))
        );
        assert_eq!(
            issuer("6228480402564890018"),
            Some(("ABC", CardType::Debit))
        );
        assert_eq!(
            issuer("6217003210004567890"),
            Some(("CCB", CardType::Debit))
        );
        assert_eq!(issuer("4026580012345678"), Some(("CMB", CardType::Debit)));
        assert_eq!(
            issuer("4003600012345678"),
            Some(("CITIC", CardType::Credit))
        );
    }

    #[test]
    fn a_prefix_is_known_whatever_the_length_and_short_prefixes_do_not_count() {
        let table = BinTable::parse(
            "prefix\tlength\tbank_code\tbank_name\tcard_type\n\
             622202\t19\tICBC\tICBC\tDC\n\
             9558\t19\tICBC\tICBC\tDC\n",
        )
        .expect("parses");
        assert!(table.knows_prefix("6222020200112347"));
        assert_eq!(table.lookup("6222020200112347"), None);
        assert!(!table.knows_prefix("9558801234567890123"));
        assert!(!table.knows_prefix("0356833020112342"));
    }

    #[test]
    fn the_longest_cards_of_a_prefix_are_known_whatever_the_length_read() {
        let table = BinTable::parse(
            "prefix\tlength\tbank_code\tbank_name\tcard_type\n\
             622202\t19\tICBC\tICBC\tDC\n\
             62220\t16\tICBC\tICBC\tCC\n\
             9558\t19\tICBC\tICBC\tDC\n",
        )
        .expect("parses");
        assert_eq!(table.longest_issued("6222020200112347"), Some(19));
        assert_eq!(table.longest_issued("6222090200112347"), Some(16));
        assert_eq!(
            table.longest_issued("9558801234567890"),
            None,
            "a short prefix"
        );
        assert_eq!(table.longest_issued("4000000000000002"), None);
    }

    #[test]
    fn unknown_prefix_or_length_is_none() {
        let table = BinTable::embedded().expect("parses");
        assert_eq!(table.lookup("5000000000000000"), None);
        assert_eq!(
            table.lookup("40265800123456789"),
            None,
            "a 17-digit 402658 card is not in the table"
        );
        assert_eq!(table.lookup(""), None);
    }

    #[test]
    fn longest_prefix_wins() {
        let table = BinTable::parse(
            "prefix\tlength\tbank_code\tbank_name\tcard_type\n\
             62\t16\tSHORT\tShort Bank\tDC\n\
             622588\t16\tLONG\tLong Bank\tCC\n",
        )
        .expect("parses");
        assert_eq!(
            table
                .lookup("6225880000000000")
                .map(|i| i.bank_code.as_str()),
            Some("LONG")
        );
        assert_eq!(
            table
                .lookup("6299990000000000")
                .map(|i| i.bank_code.as_str()),
            Some("SHORT")
        );
    }

    #[test]
    fn a_shorter_prefix_for_the_right_length_beats_a_longer_one_for_another_length() {
        let table =
            BinTable::parse("header\n62\t19\tNINETEEN\tBank\tDC\n622588\t16\tSIXTEEN\tBank\tCC\n")
                .expect("parses");
        assert_eq!(
            table
                .lookup("6225880000000000000")
                .map(|i| i.bank_code.as_str()),
            Some("NINETEEN")
        );
    }

    #[test]
    fn malformed_rows_are_reported_with_their_line() {
        let err = BinTable::parse("header\n62\t16\tX\tBank\tXX\n").expect_err("bad type");
        assert!(err.to_string().contains("line 2"), "{err}");
        BinTable::parse("header\n62\tsixteen\tX\tBank\tDC\n").expect_err("bad length");
        BinTable::parse("header\n6a\t16\tX\tBank\tDC\n").expect_err("bad prefix");
        BinTable::parse("header\n62\t16\tX\n").expect_err("short row");
    }
}
