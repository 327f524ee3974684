//! Domain answers as protobuf responses, with what ocrgate adds to them.

use super::pb;
use crate::{
    enrich::{self, BinTable, CardNetwork, CardType, TaxNumberFormat},
    provider::{BankCard, InvoiceTitle, TitleType},
};

pub fn bank_card_response(
    card: &BankCard,
    provider: &str,
    bins: &BinTable,
) -> pb::RecognizeBankCardResponse {
    let digits = card.number.digits();
    let network = match CardNetwork::of(digits) {
        None => pb::CardNetwork::Unspecified,
        Some(CardNetwork::UnionPay) => pb::CardNetwork::Unionpay,
        Some(CardNetwork::Visa) => pb::CardNetwork::Visa,
        Some(CardNetwork::Mastercard) => pb::CardNetwork::Mastercard,
        Some(CardNetwork::Jcb) => pb::CardNetwork::Jcb,
        Some(CardNetwork::Amex) => pb::CardNetwork::Amex,
        Some(CardNetwork::Discover) => pb::CardNetwork::Discover,
    };
    pb::RecognizeBankCardResponse {
        card_number: digits.to_owned(),
        provider: provider.to_owned(),
        masked_number: card.number.masked(),
        luhn_valid: enrich::luhn_valid(digits),
        issuer: bins.lookup(digits).map(|issuer| pb::CardIssuer {
            bank_name: issuer.bank_name.clone(),
            bank_code: issuer.bank_code.clone(),
            card_type: match issuer.card_type {
                CardType::Debit => pb::CardType::Debit,
                CardType::Credit => pb::CardType::Credit,
                CardType::SemiCredit => pb::CardType::SemiCredit,
                CardType::Prepaid => pb::CardType::Prepaid,
            }
            .into(),
        }),
        network: network.into(),
    }
}

pub fn invoice_title_response(
    title: InvoiceTitle,
    provider: &str,
) -> pb::ParseInvoiceTitleResponse {
    let title_type = match title.title_type {
        TitleType::Unspecified => pb::TitleType::Unspecified,
        TitleType::Organization => pb::TitleType::Organization,
        TitleType::Individual => pb::TitleType::Individual,
    };
    let tax_number = title.tax_number.trim();
    let (tax_number_format, tax_number_valid) = match enrich::classify_tax_number(tax_number) {
        None => (pb::TaxNumberFormat::Unspecified, false),
        Some((format, valid)) => (
            match format {
                TaxNumberFormat::UnifiedSocialCreditCode => {
                    pb::TaxNumberFormat::UnifiedSocialCreditCode
                }
                TaxNumberFormat::Taxpayer15 => pb::TaxNumberFormat::Taxpayer15,
                TaxNumberFormat::Taxpayer17 => pb::TaxNumberFormat::Taxpayer17,
                TaxNumberFormat::Taxpayer18 => pb::TaxNumberFormat::Taxpayer18,
                TaxNumberFormat::Taxpayer20 => pb::TaxNumberFormat::Taxpayer20,
            },
            valid,
        ),
    };
    pb::ParseInvoiceTitleResponse {
        title_type: title_type.into(),
        title: title.title.trim().to_owned(),
        phone: title.phone.trim().to_owned(),
        tax_number: tax_number.to_owned(),
        address: title.address.trim().to_owned(),
        bank_name: title.bank_name.trim().to_owned(),
        bank_account: title.bank_account.trim().to_owned(),
        provider: provider.to_owned(),
        tax_number_valid,
        tax_number_format: tax_number_format.into(),
    }
}
