//! Command APDUs the kernel sends (ISO/IEC 7816-4, EMV 4.4 Book 1 and 3)
//! and the status words cards answer with.

use std::fmt;

/// The name of the contactless Proximity Payment System Environment.
pub const PPSE: &[u8] = b"2PAY.SYS.DDF01";

/// SELECT by name, first occurrence, asking for the FCI.
pub fn select(name: &[u8]) -> Vec<u8> {
    case4(0x00, 0xA4, 0x04, 0x00, name)
}

/// GET PROCESSING OPTIONS with the filled PDOL (already wrapped in its
/// `83` template).
pub fn get_processing_options(template_83: &[u8]) -> Vec<u8> {
    case4(0x80, 0xA8, 0x00, 0x00, template_83)
}

/// READ RECORD `record` of short file `sfi`.
pub fn read_record(sfi: u8, record: u8) -> Vec<u8> {
    vec![0x00, 0xB2, record, (sfi << 3) | 0x04, 0x00]
}

/// GENERATE APPLICATION CRYPTOGRAM asking for `kind` (reference control
/// parameter `P1`), without CDA, with the filled CDOL1.
pub fn generate_ac(p1: u8, cdol_data: &[u8]) -> Vec<u8> {
    case4(0x80, 0xAE, p1, 0x00, cdol_data)
}

/// GET RESPONSE for `len` bytes waiting on the card (after `61xx`).
pub fn get_response(len: u8) -> Vec<u8> {
    vec![0x00, 0xC0, 0x00, 0x00, len]
}

/// A short case 4 command: header, `Lc`, data, `Le` = 00 (up to 256).
fn case4(cla: u8, ins: u8, p1: u8, p2: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 6);
    out.extend_from_slice(&[cla, ins, p1, p2, data.len() as u8]);
    out.extend_from_slice(data);
    out.push(0x00);
    out
}

/// A card's status word (`SW1 SW2`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusWord(pub u16);

impl StatusWord {
    /// `9000`: success.
    pub const OK: StatusWord = StatusWord(0x9000);
    /// `6283`: the selected file or application is invalidated (blocked).
    pub const SELECTED_FILE_INVALIDATED: StatusWord = StatusWord(0x6283);
    /// `6985`: conditions of use not satisfied.
    pub const CONDITIONS_NOT_SATISFIED: StatusWord = StatusWord(0x6985);
    /// `6A81`: function not supported (card or application blocked).
    pub const FUNCTION_NOT_SUPPORTED: StatusWord = StatusWord(0x6A81);
    /// `6A82`: file or application not found.
    pub const NOT_FOUND: StatusWord = StatusWord(0x6A82);
    /// `6A83`: record not found.
    pub const RECORD_NOT_FOUND: StatusWord = StatusWord(0x6A83);

    /// The first byte.
    pub fn sw1(self) -> u8 {
        (self.0 >> 8) as u8
    }

    /// The second byte.
    pub fn sw2(self) -> u8 {
        self.0 as u8
    }

    /// What the status word means (ISO/IEC 7816-4 and EMV).
    pub fn meaning(self) -> &'static str {
        match self.0 {
            0x9000 => "success",
            0x6283 => "selected file or application invalidated (blocked)",
            0x6300 => "authentication failed",
            0x6581 => "memory failure",
            0x6700 => "wrong length",
            0x6882 => "secure messaging not supported",
            0x6982 => "security status not satisfied",
            0x6983 => "authentication method blocked",
            0x6984 => "referenced data invalidated",
            0x6985 => "conditions of use not satisfied",
            0x6986 => "command not allowed",
            0x6A80 => "incorrect data",
            0x6A81 => "function not supported (card or application blocked)",
            0x6A82 => "file or application not found",
            0x6A83 => "record not found",
            0x6A86 => "incorrect parameters P1 P2",
            0x6A88 => "referenced data not found",
            0x6B00 => "wrong parameters P1 P2",
            0x6D00 => "instruction not supported",
            0x6E00 => "class not supported",
            0x6F00 => "no precise diagnosis",
            sw if sw >> 8 == 0x61 => "more response data available",
            sw if sw >> 8 == 0x6C => "wrong expected length",
            sw if sw >> 8 == 0x63 => "warning: non-volatile memory changed",
            sw if sw >> 8 == 0x62 => "warning: non-volatile memory unchanged",
            _ => "unknown status",
        }
    }
}

impl fmt::Display for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X}", self.0)
    }
}

impl fmt::Debug for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StatusWord({:04X})", self.0)
    }
}

/// Splits a response APDU into its data and status word; `None` when it
/// is shorter than the two status bytes.
pub fn split_response(response: &[u8]) -> Option<(&[u8], StatusWord)> {
    let n = response.len().checked_sub(2)?;
    let sw = u16::from_be_bytes([response[n], response[n + 1]]);
    Some((&response[..n], StatusWord(sw)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_coded_as_emv_says() {
        assert_eq!(
            hex::encode_upper(select(PPSE)),
            "00A404000E325041592E5359532E444446303100"
        );
        assert_eq!(
            hex::encode_upper(get_processing_options(&[0x83, 0x00])),
            "80A8000002830000"
        );
        assert_eq!(hex::encode_upper(read_record(2, 1)), "00B2011400");
        assert_eq!(
            hex::encode_upper(generate_ac(0x80, &[1, 2])),
            "80AE800002010200"
        );
    }

    #[test]
    fn responses_split_into_data_and_status() {
        let (data, sw) = split_response(&[0x5A, 0x00, 0x90, 0x00]).unwrap();
        assert_eq!((data, sw), (&[0x5A, 0x00][..], StatusWord::OK));
        assert_eq!(
            split_response(&[0x6A, 0x82]).unwrap().1,
            StatusWord::NOT_FOUND
        );
        assert!(split_response(&[0x90]).is_none());
        assert_eq!(StatusWord(0x6A82).to_string(), "6A82");
        assert_eq!(
            StatusWord(0x6985).meaning(),
            "conditions of use not satisfied"
        );
        assert_eq!(StatusWord(0x6110).meaning(), "more response data available");
    }
}
