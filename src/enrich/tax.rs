//! Chinese taxpayer identification numbers: the unified social credit code (GB 32100-2015) and
//! the older taxpayer numbers it replaced, recognised by shape.

/// Which kind of tax number a string is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaxNumberFormat {
    /// 18-character unified social credit code, with a check character.
    UnifiedSocialCreditCode,
    /// 15 characters: a 6-digit region code and a 9-character organisation code.
    Taxpayer15,
    /// 17 characters: a 15-digit identity card number and two more characters.
    Taxpayer17,
    /// 18 characters: an 18-digit identity card number.
    Taxpayer18,
    /// 20 characters: an 18-digit identity card number and two more characters.
    Taxpayer20,
}

/// The unified social credit code alphabet: digits and upper-case letters less I, O, S, V, Z.
const USCC_ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

/// Classifies `tax_number` (already trimmed) and says whether it checks out: `None` when it has
/// no recognisable shape. A unified social credit code whose check character is wrong is reported
/// as such, not refused: some early codes fail it and are legal.
pub fn classify_tax_number(tax_number: &str) -> Option<(TaxNumberFormat, bool)> {
    let tax_number = tax_number.to_ascii_uppercase();
    let bytes = tax_number.as_bytes();
    let digits = |range: std::ops::Range<usize>| bytes[range].iter().all(u8::is_ascii_digit);
    let alphanumeric = |range: std::ops::Range<usize>| {
        bytes[range]
            .iter()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
    };
    match bytes.len() {
        18 => {
            let uscc_check = uscc_check_character(bytes);
            if uscc_check.is_some_and(|check| check == bytes[17]) {
                Some((TaxNumberFormat::UnifiedSocialCreditCode, true))
            } else if digits(0..17) && (bytes[17].is_ascii_digit() || bytes[17] == b'X') {
                Some((TaxNumberFormat::Taxpayer18, true))
            } else if uscc_check.is_some() && USCC_ALPHABET.contains(&bytes[17]) {
                Some((TaxNumberFormat::UnifiedSocialCreditCode, false))
            } else {
                None
            }
        }
        15 if digits(0..6) && alphanumeric(6..15) => Some((TaxNumberFormat::Taxpayer15, true)),
        17 if digits(0..15) && alphanumeric(15..17) => Some((TaxNumberFormat::Taxpayer17, true)),
        20 if digits(0..17) && alphanumeric(17..20) => Some((TaxNumberFormat::Taxpayer20, true)),
        _ => None,
    }
}

/// The check character the first 17 characters of a unified social credit code call for:
/// weights 3^(i-1) mod 31, check = 31 - (sum mod 31), as GB 32100-2015 defines. `None` when those
/// characters are not of the code's shape (registration authority, category, 6-digit region).
fn uscc_check_character(code: &[u8]) -> Option<u8> {
    if !code[2..8].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut weight = 1_usize;
    let mut sum = 0_usize;
    for &character in &code[..17] {
        sum += USCC_ALPHABET.iter().position(|&c| c == character)? * weight;
        weight = weight * 3 % 31;
    }
    Some(USCC_ALPHABET[(31 - sum % 31) % 31])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_unified_social_credit_code_checks_out() {
        assert_eq!(
            classify_tax_number("91440300708461136T"),
            Some((TaxNumberFormat::UnifiedSocialCreditCode, true))
        );
    }

    #[test]
    fn a_wrong_check_character_is_reported_not_hidden() {
        assert_eq!(
            classify_tax_number("91440300708461136A"),
            Some((TaxNumberFormat::UnifiedSocialCreditCode, false))
        );
    }

    #[test]
    fn lower_case_is_read_as_upper_case() {
        assert_eq!(
            classify_tax_number("91440300708461136t"),
            Some((TaxNumberFormat::UnifiedSocialCreditCode, true))
        );
    }

    #[test]
    fn older_taxpayer_numbers_are_recognised_by_shape() {
        assert_eq!(
            classify_tax_number("440300708461136"),
            Some((TaxNumberFormat::Taxpayer15, true))
        );
        assert_eq!(
            classify_tax_number("11010519491231002X"),
            Some((TaxNumberFormat::Taxpayer18, true))
        );
        assert_eq!(
            classify_tax_number("44030019900101123401"),
            Some((TaxNumberFormat::Taxpayer20, true))
        );
        assert_eq!(
            classify_tax_number("44030019900101101"),
            Some((TaxNumberFormat::Taxpayer17, true))
        );
    }

    #[test]
    fn anything_else_is_unrecognised() {
        assert_eq!(classify_tax_number(""), None);
        assert_eq!(classify_tax_number("1286715052"), None);
        assert_eq!(classify_tax_number("ABCDEF7084611361"), None);
        assert_eq!(classify_tax_number("9144030070846113?T"), None);
    }
}
