//! Domain answers as protobuf responses, with what ocrgate adds to them.

use super::pb;
use crate::{
    enrich::{self, BinTable, CardNetwork, CardType, TaxNumberFormat},
    provider::{BankCard, ImageWarning, InvoiceTitle, TitleType},
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
    let issuer = match bins.lookup(digits) {
        Some(issuer) => Some(pb::CardIssuer {
            bank_name: issuer.bank_name.clone(),
            bank_code: issuer.bank_code.clone(),
            card_type: card_type(Some(issuer.card_type)).into(),
        }),
        None => card.bank_name.as_ref().map(|bank_name| pb::CardIssuer {
            bank_name: bank_name.clone(),
            bank_code: String::new(),
            card_type: card_type(card.card_type).into(),
        }),
    };
    pb::RecognizeBankCardResponse {
        card_number: digits.to_owned(),
        provider: provider.to_owned(),
        masked_number: card.number.masked(),
        luhn_valid: enrich::luhn_valid(digits),
        issuer,
        network: network.into(),
        expiry: card.expiry.map(|expiry| pb::CardExpiry {
            month: expiry.month.into(),
            year: expiry.year.into(),
        }),
        warnings: card
            .warnings
            .iter()
            .map(|warning| {
                match warning {
                    ImageWarning::Photocopy => pb::ImageWarning::Photocopy,
                    ImageWarning::Reshoot => pb::ImageWarning::Reshoot,
                    ImageWarning::BorderIncomplete => pb::ImageWarning::BorderIncomplete,
                    ImageWarning::Glare => pb::ImageWarning::Glare,
                    ImageWarning::Blurry => pb::ImageWarning::Blurry,
                    ImageWarning::ExpiryInvalid => pb::ImageWarning::ExpiryInvalid,
                    ImageWarning::LowConfidence => pb::ImageWarning::LowConfidence,
                }
                .into()
            })
            .collect(),
        quality: card.quality.map(u32::from),
        card_name: card.card_name.clone().unwrap_or_default(),
        confidence: card.confidence,
    }
}

fn card_type(card_type: Option<CardType>) -> pb::CardType {
    match card_type {
        None => pb::CardType::Unspecified,
        Some(CardType::Debit) => pb::CardType::Debit,
        Some(CardType::Credit) => pb::CardType::Credit,
        Some(CardType::SemiCredit) => pb::CardType::SemiCredit,
        Some(CardType::Prepaid) => pb::CardType::Prepaid,
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
