//! What ocrgate adds to every answer, computed locally and the same whichever provider answered:
//! the card's issuer, network and Luhn check; the tax number's format and check character.

mod bin;
mod tax;

pub use bin::{BinTable, BinTableError, CardIssuer, CardType};
pub use tax::{TaxNumberFormat, classify_tax_number};

/// The card network, recognised from the number's leading digits (its IIN range).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardNetwork {
    UnionPay,
    Visa,
    Mastercard,
    Jcb,
    Amex,
    Discover,
}

impl CardNetwork {
    /// `None` when the prefix belongs to no network recognised here.
    pub fn of(digits: &str) -> Option<Self> {
        let prefix = |n: usize| digits.get(..n).and_then(|p| p.parse::<u32>().ok());
        match (prefix(1)?, prefix(2)?, prefix(3), prefix(4)) {
            (_, 62 | 81, _, _) => Some(Self::UnionPay),
            (4, _, _, _) => Some(Self::Visa),
            (_, 51..=55, _, _) => Some(Self::Mastercard),
            (_, _, _, Some(2221..=2720)) => Some(Self::Mastercard),
            (_, 34 | 37, _, _) => Some(Self::Amex),
            (_, _, _, Some(3528..=3589)) => Some(Self::Jcb),
            (_, 65, _, _) | (_, _, Some(644..=649), _) | (_, _, _, Some(6011)) => {
                Some(Self::Discover)
            }
            _ => None,
        }
    }
}

/// The Luhn (mod 10) check. Informational only: some valid UnionPay cards fail it.
pub fn luhn_valid(digits: &str) -> bool {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_accepts_known_good_numbers() {
        for number in [
            "4111111111111111",
            "5555555555554444",
            "378282246310005",
            "6011111111111117",
            "6222020200112345679",
        ] {
            assert!(luhn_valid(number), "{number}");
        }
    }

    #[test]
    fn luhn_rejects_a_changed_digit_and_non_digits() {
        assert!(!luhn_valid("4111111111111112"));
        assert!(!luhn_valid("6222020200112345678"));
        assert!(!luhn_valid(""));
        assert!(!luhn_valid("4111 1111 1111 1111"));
    }

    #[test]
    fn networks_are_recognised_from_their_ranges() {
        assert_eq!(
            CardNetwork::of("6222020200112345678"),
            Some(CardNetwork::UnionPay)
        );
        assert_eq!(CardNetwork::of("4111111111111111"), Some(CardNetwork::Visa));
        assert_eq!(
            CardNetwork::of("5555555555554444"),
            Some(CardNetwork::Mastercard)
        );
        assert_eq!(
            CardNetwork::of("2221000000000009"),
            Some(CardNetwork::Mastercard)
        );
        assert_eq!(CardNetwork::of("378282246310005"), Some(CardNetwork::Amex));
        assert_eq!(CardNetwork::of("3530111333300000"), Some(CardNetwork::Jcb));
        assert_eq!(
            CardNetwork::of("6011111111111117"),
            Some(CardNetwork::Discover)
        );
        assert_eq!(
            CardNetwork::of("6500000000000002"),
            Some(CardNetwork::Discover)
        );
        assert_eq!(CardNetwork::of("9999999999999995"), None);
        assert_eq!(CardNetwork::of("1"), None);
    }
}
