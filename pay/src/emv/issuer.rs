//! The issuer's side of an EMV application cryptogram: deriving the card's
//! keys from the issuer master key, checking the ARQC a terminal forwards
//! in ISO 8583 field 55, and answering with an ARPC (tag 91).
//!
//! Two cryptogram versions, the ones Till's virtual cards implement
//! (`docs/emv.md` has the full description):
//!
//! | version | ICC master key | AC session key | AC data | padding | ARPC |
//! |---|---|---|---|---|---|
//! | [`CryptogramVersion::VisaCvn10`] | option A | none (the ICC master key) | 9F02 9F03 9F1A 95 5F2A 9A 9C 9F37 82 9F36 + CVR (4 bytes of 9F10) | ISO 9797-1 method 1 | method 1 under the ICC master key |
//! | [`CryptogramVersion::MastercardCvn20`] | option A | EMV common session key, R = ATC ‖ 00×6 | same terminal and card data + CVR (6 bytes of 9F10) | ISO 9797-1 method 2 | method 1 under the session key |
//!
//! They match `pyemv.cvn.VisaCVN10` and `pyemv.cvn.MasterCardCVN20`
//! (pyemv numbers Mastercard's CVNs in decimal: its CVN 20 is the byte
//! `14` in tag 9F10), which the tests check on random keys and data.
//!
//! ```
//! use till_pay::crypto::{KeyScheme, SecretKey};
//! use till_pay::emv::issuer::{CardKey, CryptogramVersion, icc_master_key};
//!
//! // EMV Book 2 option A, as in pyemv's documentation.
//! let imk = SecretKey::from_hex(KeyScheme::Tdes, "0123456789ABCDEFFEDCBA9876543210")?;
//! let mk = icc_master_key(&imk, "12345678901234567", 1)?;
//! assert_eq!(hex::encode_upper(mk.expose_bytes()), "73AD54688CEF2934B0979857E3C719F1");
//! let card = CardKey::derive(CryptogramVersion::MastercardCvn20, &imk, "12345678901234567", 1)?;
//! assert_eq!(card.icc_master_key().expose_bytes(), mk.expose_bytes());
//! # Ok::<(), till_pay::emv::issuer::IssuerError>(())
//! ```

use std::fmt;

use subtle::ConstantTimeEq;

use super::tags;
use super::tlv::{self, Tag, Tlv, TlvError};
use crate::crypto::keys::tdes_ecb_encrypt;
use crate::crypto::mac::retail_mac;
use crate::crypto::{CryptoError, KeyScheme, MacPadding, SecretKey};

/// Why an issuer operation failed. Messages name tags, lengths and
/// versions, never key bytes or card numbers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssuerError {
    /// A key is unusable (wrong scheme or length) or a cipher failed.
    #[error("key: {0}")]
    Crypto(#[from] CryptoError),
    /// The ICC data is not BER-TLV.
    #[error("the ICC data is not valid BER-TLV: {0}")]
    Tlv(#[from] TlvError),
    /// A data element the cryptogram needs is absent.
    #[error("the ICC data lacks tag {tag} ({name})")]
    MissingTag {
        /// The tag.
        tag: Tag,
        /// What it is.
        name: &'static str,
    },
    /// A data element has the wrong length.
    #[error("tag {tag} ({name}) must be {expected} bytes, got {got}")]
    TagLength {
        /// The tag.
        tag: Tag,
        /// What it is.
        name: &'static str,
        /// The length the cryptogram version needs.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// The card number given for key derivation is not 12 to 19 digits.
    #[error("the card number must be 12 to 19 digits to derive the card's key")]
    Pan,
    /// The PAN sequence number is above 99.
    #[error("the PAN sequence number must be 00 to 99, got {0}")]
    PanSequence(u8),
    /// The issuer application data (9F10) is not laid out the way the
    /// card's cryptogram version lays it out.
    #[error("the issuer application data (9F10) is not {version}'s: {reason}")]
    IssuerApplicationData {
        /// The version the card is registered with.
        version: CryptogramVersion,
        /// What does not match.
        reason: &'static str,
    },
    /// The card produced something other than an ARQC (9F27).
    #[error("the card answered a {0} (9F27), not an ARQC; nothing to authorise online")]
    NotArqc(CryptogramType),
    /// The ARQC does not verify: wrong key, or the data was changed.
    #[error(
        "the ARQC does not verify under the card's key ({version}, ATC {atc:04X}): \
         a counterfeit card or data altered between card and host"
    )]
    CryptogramMismatch {
        /// The card's cryptogram version.
        version: CryptogramVersion,
        /// The transaction counter the data claims.
        atc: u16,
    },
}

/// The cryptogram versions Till's issuer side (and its virtual cards)
/// implement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CryptogramVersion {
    /// Visa CVN 10 (`0A` in 9F10): option A master key used directly,
    /// Visa padding, ARPC method 1. `pyemv.cvn.VisaCVN10`.
    VisaCvn10,
    /// Mastercard M/Chip CVN `14` (pyemv's "CVN 20"): option A master key,
    /// EMV common session key from the ATC, EMV padding, no counters in
    /// the cryptogram, ARPC method 1 under the session key.
    /// `pyemv.cvn.MasterCardCVN20`.
    MastercardCvn20,
}

impl CryptogramVersion {
    /// The cryptogram version number byte in the issuer application data.
    pub fn cvn_byte(self) -> u8 {
        match self {
            CryptogramVersion::VisaCvn10 => 0x0A,
            CryptogramVersion::MastercardCvn20 => 0x14,
        }
    }

    /// The card verification results inside `iad` (tag 9F10), the part
    /// of it the cryptogram covers, after checking `iad` has this
    /// version's layout.
    ///
    /// Visa (format 0/1): length byte `06`, derivation key index, CVN,
    /// then four CVR bytes (whose first byte is their length, `03`).
    /// Mastercard M/Chip: derivation key index, CVN, six CVR bytes, then
    /// optional DAC/IDN and counters.
    pub fn card_verification_results(self, iad: &[u8]) -> Result<&[u8], IssuerError> {
        let bad = |reason| IssuerError::IssuerApplicationData {
            version: self,
            reason,
        };
        match self {
            CryptogramVersion::VisaCvn10 => {
                if iad.len() < 7 || iad[0] != 0x06 {
                    return Err(bad(
                        "Visa format 0/1 data starts with length 06 and has 7 bytes at least",
                    ));
                }
                if iad[2] != self.cvn_byte() {
                    return Err(bad("its cryptogram version byte (third byte) is not 0A"));
                }
                Ok(&iad[3..7])
            }
            CryptogramVersion::MastercardCvn20 => {
                if iad.len() < 8 {
                    return Err(bad("M/Chip data has 8 bytes at least"));
                }
                if iad[1] != self.cvn_byte() {
                    return Err(bad("its cryptogram version byte (second byte) is not 14"));
                }
                Ok(&iad[2..8])
            }
        }
    }

    /// The MAC padding the version's cryptogram uses.
    fn padding(self) -> MacPadding {
        match self {
            CryptogramVersion::VisaCvn10 => MacPadding::Method1,
            CryptogramVersion::MastercardCvn20 => MacPadding::Method2,
        }
    }
}

impl fmt::Display for CryptogramVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CryptogramVersion::VisaCvn10 => "Visa CVN 10",
            CryptogramVersion::MastercardCvn20 => "Mastercard CVN 20 (14)",
        })
    }
}

/// The type of an application cryptogram, from the cryptogram
/// information data (9F27, bits 8-7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CryptogramType {
    /// Application authentication cryptogram: declined by the card.
    Aac,
    /// Transaction certificate: approved offline.
    Tc,
    /// Authorisation request cryptogram: go online.
    Arqc,
    /// The reserved value `11`.
    Reserved,
}

impl CryptogramType {
    /// The type coded in a cryptogram information data byte.
    pub fn from_cid(cid: u8) -> CryptogramType {
        match cid >> 6 {
            0 => CryptogramType::Aac,
            1 => CryptogramType::Tc,
            2 => CryptogramType::Arqc,
            _ => CryptogramType::Reserved,
        }
    }
}

impl fmt::Display for CryptogramType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CryptogramType::Aac => "AAC",
            CryptogramType::Tc => "TC",
            CryptogramType::Arqc => "ARQC",
            CryptogramType::Reserved => "reserved cryptogram type",
        })
    }
}

/// The data an application cryptogram covers, as the terminal sent it to
/// the card and forwards it in field 55.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptogramInput {
    /// Amount, authorised (9F02), n12.
    pub amount_authorised: [u8; 6],
    /// Amount, other (9F03), n12.
    pub amount_other: [u8; 6],
    /// Terminal country code (9F1A), n3.
    pub terminal_country: [u8; 2],
    /// Terminal verification results (95).
    pub tvr: [u8; 5],
    /// Transaction currency code (5F2A), n3.
    pub currency: [u8; 2],
    /// Transaction date (9A), YYMMDD.
    pub date: [u8; 3],
    /// Transaction type (9C).
    pub transaction_type: u8,
    /// Unpredictable number (9F37).
    pub unpredictable_number: [u8; 4],
    /// Application interchange profile (82).
    pub aip: [u8; 2],
    /// Application transaction counter (9F36).
    pub atc: [u8; 2],
    /// Issuer application data (9F10), of which the cryptogram covers
    /// the card verification results.
    pub iad: Vec<u8>,
}

impl CryptogramInput {
    /// Reads the data from TLV objects (field 55 parsed), looking into
    /// templates too.
    pub fn from_tlv(objects: &[Tlv]) -> Result<CryptogramInput, IssuerError> {
        let get = |tag: Tag, name| value(objects, tag, name);
        Ok(CryptogramInput {
            amount_authorised: fixed(tags::AMOUNT_AUTHORISED, "amount, authorised", get)?,
            amount_other: fixed(tags::AMOUNT_OTHER, "amount, other", get)?,
            terminal_country: fixed(tags::TERMINAL_COUNTRY, "terminal country code", get)?,
            tvr: fixed(tags::TVR, "terminal verification results", get)?,
            currency: fixed(tags::CURRENCY, "transaction currency code", get)?,
            date: fixed(tags::DATE, "transaction date", get)?,
            transaction_type: fixed::<1>(tags::TRANSACTION_TYPE, "transaction type", get)?[0],
            unpredictable_number: fixed(tags::UNPREDICTABLE_NUMBER, "unpredictable number", get)?,
            aip: fixed(tags::AIP, "application interchange profile", get)?,
            atc: fixed(tags::ATC, "application transaction counter", get)?,
            iad: get(tags::ISSUER_APPLICATION_DATA, "issuer application data")?.to_vec(),
        })
    }

    /// The bytes the cryptogram of `version` is computed over (before
    /// padding).
    pub fn covered_data(&self, version: CryptogramVersion) -> Result<Vec<u8>, IssuerError> {
        let cvr = version.card_verification_results(&self.iad)?;
        let mut out = Vec::with_capacity(37 + cvr.len());
        out.extend_from_slice(&self.amount_authorised);
        out.extend_from_slice(&self.amount_other);
        out.extend_from_slice(&self.terminal_country);
        out.extend_from_slice(&self.tvr);
        out.extend_from_slice(&self.currency);
        out.extend_from_slice(&self.date);
        out.push(self.transaction_type);
        out.extend_from_slice(&self.unpredictable_number);
        out.extend_from_slice(&self.aip);
        out.extend_from_slice(&self.atc);
        out.extend_from_slice(cvr);
        Ok(out)
    }

    /// The transaction counter as a number.
    pub fn atc_value(&self) -> u16 {
        u16::from_be_bytes(self.atc)
    }
}

/// What the issuer needs from field 55 of an authorisation request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IccRequest {
    /// The data the cryptogram covers.
    pub input: CryptogramInput,
    /// The application cryptogram (9F26).
    pub cryptogram: [u8; 8],
    /// The cryptogram information data (9F27).
    pub cid: u8,
}

impl IccRequest {
    /// Parses field 55 (a sequence of BER-TLV objects).
    pub fn parse(icc_data: &[u8]) -> Result<IccRequest, IssuerError> {
        let objects = tlv::parse(icc_data)?;
        let get = |tag: Tag, name| value(&objects, tag, name);
        Ok(IccRequest {
            input: CryptogramInput::from_tlv(&objects)?,
            cryptogram: fixed(tags::APPLICATION_CRYPTOGRAM, "application cryptogram", get)?,
            cid: fixed::<1>(
                tags::CRYPTOGRAM_INFORMATION_DATA,
                "cryptogram information data",
                get,
            )?[0],
        })
    }

    /// The type of cryptogram the card produced.
    pub fn cryptogram_type(&self) -> CryptogramType {
        CryptogramType::from_cid(self.cid)
    }
}

fn value<'a>(objects: &'a [Tlv], tag: Tag, name: &'static str) -> Result<&'a [u8], IssuerError> {
    tlv::find(objects, tag)
        .and_then(Tlv::value)
        .ok_or(IssuerError::MissingTag { tag, name })
}

fn fixed<'a, const N: usize>(
    tag: Tag,
    name: &'static str,
    get: impl Fn(Tag, &'static str) -> Result<&'a [u8], IssuerError>,
) -> Result<[u8; N], IssuerError> {
    let v = get(tag, name)?;
    v.try_into().map_err(|_| IssuerError::TagLength {
        tag,
        name,
        expected: N,
        got: v.len(),
    })
}

/// Derives the ICC master key for application cryptograms from the
/// issuer master key (EMV 4.4 Book 2, A1.4.1, option A): TDES-ECB of the
/// rightmost 16 digits of PAN ‖ PAN sequence number and of their
/// complement, with odd parity set.
pub fn icc_master_key(
    issuer_master_key: &SecretKey,
    pan: &str,
    pan_sequence: u8,
) -> Result<SecretKey, IssuerError> {
    require_double_tdes(issuer_master_key)?;
    if !(12..=19).contains(&pan.len()) || !pan.bytes().all(|b| b.is_ascii_digit()) {
        return Err(IssuerError::Pan);
    }
    if pan_sequence > 99 {
        return Err(IssuerError::PanSequence(pan_sequence));
    }
    let digits = format!("{pan}{pan_sequence:02}");
    let digits = &digits[digits.len().saturating_sub(16)..];
    let mut block = [0u8; 16];
    // Right-justified in 16 digits, zero-filled on the left, packed BCD.
    let offset = 16 - digits.len();
    for (i, d) in digits.bytes().enumerate() {
        let nibble = d - b'0';
        let pos = offset + i;
        block[pos / 2] |= if pos % 2 == 0 { nibble << 4 } else { nibble };
    }
    for i in 0..8 {
        block[8 + i] = block[i] ^ 0xFF;
    }
    let key = tdes_ecb_encrypt(issuer_master_key, &block)?;
    Ok(SecretKey::new(KeyScheme::Tdes, &odd_parity(&key))?)
}

/// EMV common session key derivation (EMV 4.4 Book 2, A1.3.1) from a
/// double-length ICC master key and the 8-byte diversification value `r`.
pub fn common_session_key(
    icc_master_key: &SecretKey,
    r: &[u8; 8],
) -> Result<SecretKey, IssuerError> {
    require_double_tdes(icc_master_key)?;
    let mut data = [0u8; 16];
    data[..8].copy_from_slice(r);
    data[8..].copy_from_slice(r);
    data[2] = 0xF0;
    data[10] = 0x0F;
    let key = tdes_ecb_encrypt(icc_master_key, &data)?;
    Ok(SecretKey::new(KeyScheme::Tdes, &odd_parity(&key))?)
}

/// Sets odd parity in every byte, as EMV's derivations do.
fn odd_parity(bytes: &[u8]) -> zeroize::Zeroizing<Vec<u8>> {
    zeroize::Zeroizing::new(
        bytes
            .iter()
            .map(|b| if b.count_ones() % 2 == 1 { *b } else { b ^ 1 })
            .collect(),
    )
}

fn require_double_tdes(key: &SecretKey) -> Result<(), IssuerError> {
    if key.scheme() != KeyScheme::Tdes || key.len() != 16 {
        return Err(IssuerError::Crypto(CryptoError::KeyUnsuitable {
            operation: "EMV key derivation",
            required: "a double-length (16-byte) TDES key",
            scheme: key.scheme(),
            len: key.len(),
        }));
    }
    Ok(())
}

/// One card's application cryptogram key as the issuer holds it: the ICC
/// master key and the version that says how it is used.
#[derive(Clone)]
pub struct CardKey {
    version: CryptogramVersion,
    icc_master_key: SecretKey,
}

/// Shows the version and the key's check value only.
impl fmt::Debug for CardKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CardKey")
            .field("version", &self.version)
            .field("icc_master_key", &self.icc_master_key)
            .finish()
    }
}

/// The issuer's answer to a verified ARQC: the ARPC and the response code
/// it binds, sent back in tag 91 (issuer authentication data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IssuerAuthentication {
    /// The authorisation response cryptogram (method 1).
    pub arpc: [u8; 8],
    /// The authorisation response code it covers (e.g. `"00"` in ASCII).
    pub arc: [u8; 2],
}

impl IssuerAuthentication {
    /// The value of tag 91: ARPC ‖ ARC.
    pub fn data(&self) -> [u8; 10] {
        let mut out = [0u8; 10];
        out[..8].copy_from_slice(&self.arpc);
        out[8..].copy_from_slice(&self.arc);
        out
    }

    /// Field 55 of the answer: tag 91 with [`IssuerAuthentication::data`].
    pub fn to_icc_data(&self) -> Vec<u8> {
        let mut out = vec![0x91, 0x0A];
        out.extend_from_slice(&self.data());
        out
    }
}

impl CardKey {
    /// The card's key derived from the issuer master key for application
    /// cryptograms, its PAN and PAN sequence number (option A).
    pub fn derive(
        version: CryptogramVersion,
        issuer_master_key: &SecretKey,
        pan: &str,
        pan_sequence: u8,
    ) -> Result<CardKey, IssuerError> {
        Ok(CardKey {
            version,
            icc_master_key: icc_master_key(issuer_master_key, pan, pan_sequence)?,
        })
    }

    /// The card's cryptogram version.
    pub fn version(&self) -> CryptogramVersion {
        self.version
    }

    /// The ICC master key for application cryptograms.
    pub fn icc_master_key(&self) -> &SecretKey {
        &self.icc_master_key
    }

    /// The key application cryptograms and the ARPC are computed with at
    /// transaction counter `atc`: the ICC master key itself for Visa CVN
    /// 10, the common session key from R = ATC ‖ 00×6 for Mastercard CVN 20.
    pub fn session_key(&self, atc: [u8; 2]) -> Result<SecretKey, IssuerError> {
        match self.version {
            CryptogramVersion::VisaCvn10 => Ok(self.icc_master_key.clone()),
            CryptogramVersion::MastercardCvn20 => {
                let mut r = [0u8; 8];
                r[..2].copy_from_slice(&atc);
                common_session_key(&self.icc_master_key, &r)
            }
        }
    }

    /// The application cryptogram the card computes over `input`: ISO
    /// 9797-1 MAC algorithm 3 under the session key, with the version's
    /// padding.
    pub fn cryptogram(&self, input: &CryptogramInput) -> Result<[u8; 8], IssuerError> {
        let data = input.covered_data(self.version)?;
        let key = self.session_key(input.atc)?;
        Ok(retail_mac(&key, &data, self.version.padding())?)
    }

    /// Checks an authorisation request's ARQC (in constant time).
    pub fn verify(&self, request: &IccRequest) -> Result<(), IssuerError> {
        let kind = request.cryptogram_type();
        if kind != CryptogramType::Arqc {
            return Err(IssuerError::NotArqc(kind));
        }
        let expected = self.cryptogram(&request.input)?;
        if bool::from(expected.ct_eq(&request.cryptogram)) {
            Ok(())
        } else {
            Err(IssuerError::CryptogramMismatch {
                version: self.version,
                atc: request.input.atc_value(),
            })
        }
    }

    /// The ARPC (method 1, EMV 4.4 Book 2, 8.2.1) for `arqc` and the
    /// response code `arc`: TDES of ARQC ⊕ (ARC ‖ 00×6) under the session
    /// key of transaction counter `atc`.
    pub fn arpc(&self, atc: [u8; 2], arqc: &[u8; 8], arc: [u8; 2]) -> Result<[u8; 8], IssuerError> {
        let mut block = *arqc;
        block[0] ^= arc[0];
        block[1] ^= arc[1];
        let key = self.session_key(atc)?;
        let out = tdes_ecb_encrypt(&key, &block)?;
        let mut arpc = [0u8; 8];
        arpc.copy_from_slice(&out);
        Ok(arpc)
    }

    /// Verifies the ARQC of `request` and, if it is good, answers with the
    /// ARPC for the ISO 8583 response code `response_code` (two ASCII
    /// characters, e.g. `"00"`, as the authorisation response code).
    pub fn authorise(
        &self,
        request: &IccRequest,
        response_code: &str,
    ) -> Result<IssuerAuthentication, IssuerError> {
        self.verify(request)?;
        let arc = arc_of(response_code);
        Ok(IssuerAuthentication {
            arpc: self.arpc(request.input.atc, &request.cryptogram, arc)?,
            arc,
        })
    }
}

/// The authorisation response code (8A) for an ISO 8583 response code:
/// its first two characters in ASCII, space-padded.
pub fn arc_of(response_code: &str) -> [u8; 2] {
    let mut arc = [b' '; 2];
    for (slot, b) in arc.iter_mut().zip(response_code.bytes()) {
        *slot = b;
    }
    arc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(hex_text: &str) -> SecretKey {
        SecretKey::from_hex(KeyScheme::Tdes, hex_text).unwrap()
    }

    /// pyemv's documented example values.
    #[test]
    fn derivations_match_the_published_examples() {
        let imk = key("0123456789ABCDEFFEDCBA9876543210");
        let mk = icc_master_key(&imk, "99012345678901234", 45).unwrap();
        assert_eq!(
            hex::encode_upper(mk.expose_bytes()),
            "67F8292358083E5EA7AB7FDA58D53B6B"
        );
        let sk = common_session_key(&imk, &[0x00, 0x1C, 0, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!(
            hex::encode_upper(sk.expose_bytes()),
            "E9FB384AF807B940FEDCEA613461B0C4"
        );
    }

    #[test]
    fn arpc_method_1_matches_the_published_example() {
        // pyemv.ac.generate_arpc_1 docstring: session key AAAA…BBBB.
        let sk = key("AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBB");
        let card = CardKey {
            version: CryptogramVersion::VisaCvn10,
            icc_master_key: sk,
        };
        let arqc: [u8; 8] = hex::decode("1234567890ABCDEF").unwrap().try_into().unwrap();
        let arpc = card.arpc([0, 1], &arqc, [0, 0]).unwrap();
        assert_eq!(hex::encode_upper(arpc), "F5E6F44147E2F1B0");
    }

    fn input(iad: &str) -> CryptogramInput {
        CryptogramInput {
            amount_authorised: [0, 0, 0, 0, 0x20, 0x00],
            amount_other: [0; 6],
            terminal_country: [0x01, 0x24],
            tvr: [0, 0, 0, 0x80, 0],
            currency: [0x01, 0x24],
            date: [0x11, 0x03, 0x09],
            transaction_type: 0,
            unpredictable_number: [0x38, 0x04, 0x82, 0x3E],
            aip: [0x58, 0x00],
            atc: [0x00, 0x01],
            iad: hex::decode(iad).unwrap(),
        }
    }

    #[test]
    fn cryptograms_cover_the_documented_data() {
        let visa = input("06010A03A00000");
        let data = visa.covered_data(CryptogramVersion::VisaCvn10).unwrap();
        assert_eq!(
            hex::encode_upper(&data),
            "000000002000000000000000012400000080000124110309003804823E5800000103A00000"
        );
        let mc = input("0114A00000000000000000000000000000FF");
        let data = mc.covered_data(CryptogramVersion::MastercardCvn20).unwrap();
        assert!(hex::encode_upper(&data).ends_with("58000001A00000000000"));
        assert!(matches!(
            visa.covered_data(CryptogramVersion::MastercardCvn20),
            Err(IssuerError::IssuerApplicationData { .. })
        ));
        assert!(matches!(
            mc.covered_data(CryptogramVersion::VisaCvn10),
            Err(IssuerError::IssuerApplicationData { .. })
        ));
    }

    #[test]
    fn verify_accepts_the_right_arqc_only() {
        let imk = key("0123456789ABCDEFFEDCBA9876543210");
        for (version, iad) in [
            (CryptogramVersion::VisaCvn10, "06010A03A00000"),
            (
                CryptogramVersion::MastercardCvn20,
                "0114A00000000000000000000000000000FF",
            ),
        ] {
            let card = CardKey::derive(version, &imk, "4761739001010010", 1).unwrap();
            let input = input(iad);
            let arqc = card.cryptogram(&input).unwrap();
            let mut request = IccRequest {
                input: input.clone(),
                cryptogram: arqc,
                cid: 0x80,
            };
            let auth = card.authorise(&request, "00").unwrap();
            assert_eq!(auth.arc, *b"00");
            assert_eq!(&auth.to_icc_data()[..2], &[0x91, 0x0A]);
            assert_eq!(
                auth.arpc,
                card.arpc(input.atc, &arqc, *b"00").unwrap(),
                "{version}"
            );
            request.input.amount_authorised[5] ^= 1;
            assert_eq!(
                card.verify(&request),
                Err(IssuerError::CryptogramMismatch { version, atc: 1 })
            );
            request.input.amount_authorised[5] ^= 1;
            request.cid = 0x00;
            assert_eq!(
                card.verify(&request),
                Err(IssuerError::NotArqc(CryptogramType::Aac))
            );
            let other = CardKey::derive(version, &imk, "4761739001010010", 2).unwrap();
            request.cid = 0x80;
            assert!(matches!(
                other.verify(&request),
                Err(IssuerError::CryptogramMismatch { .. })
            ));
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        let imk = key("0123456789ABCDEFFEDCBA9876543210");
        assert_eq!(
            icc_master_key(&imk, "12345", 0).unwrap_err(),
            IssuerError::Pan
        );
        assert_eq!(
            icc_master_key(&imk, "47617390010100AB", 0).unwrap_err(),
            IssuerError::Pan
        );
        assert_eq!(
            icc_master_key(&imk, "4761739001010010", 100).unwrap_err(),
            IssuerError::PanSequence(100)
        );
        let single = key("0123456789ABCDEF");
        assert!(matches!(
            icc_master_key(&single, "4761739001010010", 0),
            Err(IssuerError::Crypto(_))
        ));
        assert!(matches!(
            IccRequest::parse(&[0x9F, 0x26, 0x08, 1, 2]),
            Err(IssuerError::Tlv(_))
        ));
        let e = IccRequest::parse(&[0x9F, 0x26, 0x02, 1, 2]).unwrap_err();
        assert!(matches!(e, IssuerError::MissingTag { .. }), "{e}");
        assert_eq!(arc_of("00"), *b"00");
        assert_eq!(arc_of("5"), *b"5 ");
    }
}
