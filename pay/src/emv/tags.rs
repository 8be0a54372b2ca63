//! The EMV tags Till's kernel and issuer side use (EMV 4.4 Book 3, Annex
//! A; Visa and Mastercard contactless specifications for the `9F6x`
//! ones).

use super::tlv::Tag;

/// File control information template.
pub const FCI_TEMPLATE: Tag = Tag::new(0x6F);
/// FCI proprietary template.
pub const FCI_PROPRIETARY: Tag = Tag::new(0xA5);
/// FCI issuer discretionary data (the PPSE directory).
pub const FCI_ISSUER_DISCRETIONARY: Tag = Tag::new(0xBF0C);
/// Directory entry (one application in the PPSE).
pub const DIRECTORY_ENTRY: Tag = Tag::new(0x61);
/// Dedicated file (DF) name.
pub const DF_NAME: Tag = Tag::new(0x84);
/// Application identifier (ADF name) in a directory entry.
pub const ADF_NAME: Tag = Tag::new(0x4F);
/// Application label.
pub const APPLICATION_LABEL: Tag = Tag::new(0x50);
/// Application priority indicator.
pub const PRIORITY: Tag = Tag::new(0x87);
/// Application preferred name.
pub const PREFERRED_NAME: Tag = Tag::new(0x9F12);
/// Processing options data object list.
pub const PDOL: Tag = Tag::new(0x9F38);
/// Command template of GET PROCESSING OPTIONS.
pub const COMMAND_TEMPLATE: Tag = Tag::new(0x83);
/// Response message template format 1.
pub const RESPONSE_FORMAT_1: Tag = Tag::new(0x80);
/// Response message template format 2.
pub const RESPONSE_FORMAT_2: Tag = Tag::new(0x77);
/// Record template.
pub const RECORD_TEMPLATE: Tag = Tag::new(0x70);
/// Application interchange profile.
pub const AIP: Tag = Tag::new(0x82);
/// Application file locator.
pub const AFL: Tag = Tag::new(0x94);
/// Application primary account number.
pub const PAN: Tag = Tag::new(0x5A);
/// Application expiration date (YYMMDD).
pub const EXPIRY_DATE: Tag = Tag::new(0x5F24);
/// Application effective date (YYMMDD).
pub const EFFECTIVE_DATE: Tag = Tag::new(0x5F25);
/// Track 2 equivalent data.
pub const TRACK2: Tag = Tag::new(0x57);
/// Cardholder name.
pub const CARDHOLDER_NAME: Tag = Tag::new(0x5F20);
/// Application PAN sequence number.
pub const PAN_SEQUENCE: Tag = Tag::new(0x5F34);
/// Issuer country code.
pub const ISSUER_COUNTRY: Tag = Tag::new(0x5F28);
/// Card risk management data object list 1.
pub const CDOL1: Tag = Tag::new(0x8C);
/// Card risk management data object list 2.
pub const CDOL2: Tag = Tag::new(0x8D);
/// Application usage control.
pub const AUC: Tag = Tag::new(0x9F07);
/// Application identifier (terminal).
pub const AID_TERMINAL: Tag = Tag::new(0x9F06);
/// Application version number (terminal).
pub const APP_VERSION_TERMINAL: Tag = Tag::new(0x9F09);
/// Amount, authorised (numeric).
pub const AMOUNT_AUTHORISED: Tag = Tag::new(0x9F02);
/// Amount, other (numeric).
pub const AMOUNT_OTHER: Tag = Tag::new(0x9F03);
/// Terminal country code.
pub const TERMINAL_COUNTRY: Tag = Tag::new(0x9F1A);
/// Terminal verification results.
pub const TVR: Tag = Tag::new(0x95);
/// Transaction currency code.
pub const CURRENCY: Tag = Tag::new(0x5F2A);
/// Transaction currency exponent.
pub const CURRENCY_EXPONENT: Tag = Tag::new(0x5F36);
/// Transaction date.
pub const DATE: Tag = Tag::new(0x9A);
/// Transaction time.
pub const TIME: Tag = Tag::new(0x9F21);
/// Transaction type.
pub const TRANSACTION_TYPE: Tag = Tag::new(0x9C);
/// Unpredictable number.
pub const UNPREDICTABLE_NUMBER: Tag = Tag::new(0x9F37);
/// Terminal capabilities.
pub const TERMINAL_CAPABILITIES: Tag = Tag::new(0x9F33);
/// Additional terminal capabilities.
pub const ADDITIONAL_CAPABILITIES: Tag = Tag::new(0x9F40);
/// Terminal type.
pub const TERMINAL_TYPE: Tag = Tag::new(0x9F35);
/// Interface device (IFD) serial number.
pub const IFD_SERIAL: Tag = Tag::new(0x9F1E);
/// Transaction sequence counter.
pub const TRANSACTION_SEQUENCE: Tag = Tag::new(0x9F41);
/// Cardholder verification method results.
pub const CVM_RESULTS: Tag = Tag::new(0x9F34);
/// Terminal transaction qualifiers (Visa and UnionPay contactless).
pub const TTQ: Tag = Tag::new(0x9F66);
/// Card transaction qualifiers (Visa contactless).
pub const CTQ: Tag = Tag::new(0x9F6C);
/// Form factor indicator (Visa contactless).
pub const FORM_FACTOR: Tag = Tag::new(0x9F6E);
/// Application transaction counter.
pub const ATC: Tag = Tag::new(0x9F36);
/// Application cryptogram.
pub const APPLICATION_CRYPTOGRAM: Tag = Tag::new(0x9F26);
/// Cryptogram information data.
pub const CRYPTOGRAM_INFORMATION_DATA: Tag = Tag::new(0x9F27);
/// Issuer application data.
pub const ISSUER_APPLICATION_DATA: Tag = Tag::new(0x9F10);
/// Issuer authentication data (ARPC and response code).
pub const ISSUER_AUTHENTICATION_DATA: Tag = Tag::new(0x91);
/// Authorisation response code.
pub const AUTHORISATION_RESPONSE_CODE: Tag = Tag::new(0x8A);
