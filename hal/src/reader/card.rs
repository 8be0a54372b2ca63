//! What sits in the reader's field: an ISO 14443 card (its anticollision
//! identity) and the application behind its ISO 14443-4 interface.

/// An application on an ISO 14443-4 (ISO-DEP) card: it answers command
/// APDUs (ISO 7816-4) with response APDUs (data followed by SW1 SW2).
///
/// Virtual cards implement this; the reader model puts them in its field.
pub trait CardApplication: Send {
    /// Processes one command APDU and returns the response APDU.
    fn process(&mut self, command: &[u8]) -> Vec<u8>;
}

/// The ISO 14443-3 type A identity of a card and its ISO 14443-4 answer to
/// select, as a reader sees it during activation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PiccIdentity {
    /// UID: 4, 7 or 10 bytes (single, double or triple size).
    pub uid: Vec<u8>,
    /// ATQA (answer to request), two bytes.
    pub atqa: [u8; 2],
    /// SAK of the final cascade level (bit 6 set = ISO 14443-4 compliant).
    pub sak: u8,
    /// ATS (answer to select) including its length byte TL.
    pub ats: Vec<u8>,
}
