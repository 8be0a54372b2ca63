//! MFRC522 register addresses, command codes and bit masks (datasheet
//! rev. 3.9, §9 and §10). Shared by the driver and the register model so
//! that both speak of the same chip; the behaviour behind each register is
//! written twice on purpose (once to drive it, once to model it).
//!
//! The table is complete rather than minimal: a register the driver does
//! not touch today still belongs here.
#![allow(dead_code)]

/// Register addresses (6 bits).
#[allow(missing_docs)]
pub mod reg {
    pub const COMMAND: u8 = 0x01;
    pub const COM_IEN: u8 = 0x02;
    pub const DIV_IEN: u8 = 0x03;
    pub const COM_IRQ: u8 = 0x04;
    pub const DIV_IRQ: u8 = 0x05;
    pub const ERROR: u8 = 0x06;
    pub const STATUS1: u8 = 0x07;
    pub const STATUS2: u8 = 0x08;
    pub const FIFO_DATA: u8 = 0x09;
    pub const FIFO_LEVEL: u8 = 0x0A;
    pub const WATER_LEVEL: u8 = 0x0B;
    pub const CONTROL: u8 = 0x0C;
    pub const BIT_FRAMING: u8 = 0x0D;
    pub const COLL: u8 = 0x0E;
    pub const MODE: u8 = 0x11;
    pub const TX_MODE: u8 = 0x12;
    pub const RX_MODE: u8 = 0x13;
    pub const TX_CONTROL: u8 = 0x14;
    pub const TX_ASK: u8 = 0x15;
    pub const TX_SEL: u8 = 0x16;
    pub const RX_SEL: u8 = 0x17;
    pub const RX_THRESHOLD: u8 = 0x18;
    pub const DEMOD: u8 = 0x19;
    pub const MF_TX: u8 = 0x1C;
    pub const MF_RX: u8 = 0x1D;
    pub const SERIAL_SPEED: u8 = 0x1F;
    pub const CRC_RESULT_H: u8 = 0x21;
    pub const CRC_RESULT_L: u8 = 0x22;
    pub const MOD_WIDTH: u8 = 0x24;
    pub const RF_CFG: u8 = 0x26;
    pub const GS_N: u8 = 0x27;
    pub const CW_GS_P: u8 = 0x28;
    pub const MOD_GS_P: u8 = 0x29;
    pub const T_MODE: u8 = 0x2A;
    pub const T_PRESCALER: u8 = 0x2B;
    pub const T_RELOAD_H: u8 = 0x2C;
    pub const T_RELOAD_L: u8 = 0x2D;
    pub const T_COUNTER_H: u8 = 0x2E;
    pub const T_COUNTER_L: u8 = 0x2F;
    pub const AUTO_TEST: u8 = 0x36;
    pub const VERSION: u8 = 0x37;
}

/// CommandReg command codes (bits 3..0).
#[allow(missing_docs)]
pub mod cmd {
    pub const IDLE: u8 = 0x0;
    pub const MEM: u8 = 0x1;
    pub const GENERATE_RANDOM_ID: u8 = 0x2;
    pub const CALC_CRC: u8 = 0x3;
    pub const TRANSMIT: u8 = 0x4;
    pub const NO_CMD_CHANGE: u8 = 0x7;
    pub const RECEIVE: u8 = 0x8;
    pub const TRANSCEIVE: u8 = 0xC;
    pub const MF_AUTHENT: u8 = 0xE;
    pub const SOFT_RESET: u8 = 0xF;
}

/// CommandReg: the chip is in soft power-down (also set while a soft reset runs).
pub const POWER_DOWN: u8 = 0x10;
/// CommandReg: analog receiver off.
pub const RCV_OFF: u8 = 0x20;

/// ComIrqReg / DivIrqReg: write 1 to set the marked bits instead of clearing them.
pub const IRQ_SET: u8 = 0x80;
/// ComIrqReg bits.
pub const TX_IRQ: u8 = 0x40;
#[allow(missing_docs)]
pub const RX_IRQ: u8 = 0x20;
#[allow(missing_docs)]
pub const IDLE_IRQ: u8 = 0x10;
#[allow(missing_docs)]
pub const HI_ALERT_IRQ: u8 = 0x08;
#[allow(missing_docs)]
pub const LO_ALERT_IRQ: u8 = 0x04;
#[allow(missing_docs)]
pub const ERR_IRQ: u8 = 0x02;
#[allow(missing_docs)]
pub const TIMER_IRQ: u8 = 0x01;
/// DivIrqReg: the CRC coprocessor has processed all FIFO data.
pub const CRC_IRQ: u8 = 0x04;

/// ErrorReg bits.
pub const WR_ERR: u8 = 0x80;
#[allow(missing_docs)]
pub const TEMP_ERR: u8 = 0x40;
#[allow(missing_docs)]
pub const BUFFER_OVFL: u8 = 0x10;
#[allow(missing_docs)]
pub const COLL_ERR: u8 = 0x08;
#[allow(missing_docs)]
pub const CRC_ERR: u8 = 0x04;
#[allow(missing_docs)]
pub const PARITY_ERR: u8 = 0x02;
#[allow(missing_docs)]
pub const PROTOCOL_ERR: u8 = 0x01;

/// Status1Reg bits.
pub const CRC_OK: u8 = 0x40;
#[allow(missing_docs)]
pub const CRC_READY: u8 = 0x20;
#[allow(missing_docs)]
pub const STATUS1_IRQ: u8 = 0x10;
#[allow(missing_docs)]
pub const T_RUNNING: u8 = 0x08;
#[allow(missing_docs)]
pub const HI_ALERT: u8 = 0x02;
#[allow(missing_docs)]
pub const LO_ALERT: u8 = 0x01;

/// FIFOLevelReg: flush the FIFO (and clear BufferOvfl).
pub const FLUSH_BUFFER: u8 = 0x80;
/// ControlReg: start / stop the timer now.
pub const T_STOP_NOW: u8 = 0x80;
#[allow(missing_docs)]
pub const T_START_NOW: u8 = 0x40;
/// BitFramingReg: start the transmission of a Transceive command.
pub const START_SEND: u8 = 0x80;
/// CollReg bits.
pub const VALUES_AFTER_COLL: u8 = 0x80;
#[allow(missing_docs)]
pub const COLL_POS_NOT_VALID: u8 = 0x20;
/// TxModeReg / RxModeReg: hardware CRC on transmit / receive.
pub const CRC_EN: u8 = 0x80;
/// TModeReg: the timer starts by itself at the end of each transmission.
pub const T_AUTO: u8 = 0x80;
/// TxASKReg: force 100 % ASK (ISO 14443 type A).
pub const FORCE_100_ASK: u8 = 0x40;
/// TxControlReg: TX1 and TX2 drive the carrier (the RF field).
pub const TX_RF_EN: u8 = 0x03;
/// AutoTestReg value that arms the digital self-test.
pub const SELF_TEST_ENABLE: u8 = 0x09;

/// The FIFO's depth in bytes.
pub const FIFO_SIZE: usize = 64;

/// The chip's clock: every timing on the RF side is a multiple of 1/fc.
pub const FC_HZ: u64 = 13_560_000;

/// The 64 bytes the FIFO holds after the digital self-test of an MFRC522
/// version 1.0 (VersionReg 91h), datasheet §16.1.1.
pub const SELF_TEST_V1: [u8; 64] = [
    0x00, 0xC6, 0x37, 0xD5, 0x32, 0xB7, 0x57, 0x5C, 0xC2, 0xD8, 0x7C, 0x4D, 0xD9, 0x70, 0xC7, 0x73,
    0x10, 0xE6, 0xD2, 0xAA, 0x5E, 0xA1, 0x3E, 0x5A, 0x14, 0xAF, 0x30, 0x61, 0xC9, 0x70, 0xDB, 0x2E,
    0x64, 0x22, 0x72, 0xB5, 0xBD, 0x65, 0xF4, 0xEC, 0x22, 0xBC, 0xD3, 0x72, 0x35, 0xCD, 0xAA, 0x41,
    0x1F, 0xA7, 0xF3, 0x53, 0x14, 0xDE, 0x7E, 0x02, 0xD9, 0x0F, 0xB5, 0x5E, 0x25, 0x1D, 0x29, 0x79,
];

/// The same for version 2.0 (VersionReg 92h).
pub const SELF_TEST_V2: [u8; 64] = [
    0x00, 0xEB, 0x66, 0xBA, 0x57, 0xBF, 0x23, 0x95, 0xD0, 0xE3, 0x0D, 0x3D, 0x27, 0x89, 0x5C, 0xDE,
    0x9D, 0x3B, 0xA7, 0x00, 0x21, 0x5B, 0x89, 0x82, 0x51, 0x3A, 0xEB, 0x02, 0x0C, 0xA5, 0x00, 0x49,
    0x7C, 0x84, 0x4D, 0xB3, 0xCC, 0xD2, 0x1B, 0x81, 0x5D, 0x48, 0x76, 0xD5, 0x71, 0x61, 0x21, 0xA9,
    0x86, 0x96, 0x83, 0x38, 0xCF, 0x9D, 0x5B, 0x6D, 0xDC, 0x15, 0xBA, 0x3E, 0x7D, 0x95, 0x3B, 0x2F,
];

/// CRC_A (ISO 14443-3 §6.2.4): CRC-16/CCITT reflected, preset 6363h; the
/// result goes on the air least significant byte first.
///
/// The driver never uses this (it asks the chip's coprocessor); the model
/// does, to be the chip.
pub fn crc_a(data: &[u8], preset: u16) -> [u8; 2] {
    let mut crc = preset;
    for &byte in data {
        let mut b = byte ^ (crc as u8);
        b ^= b << 4;
        let b = u16::from(b);
        crc = (crc >> 8) ^ (b << 8) ^ (b << 3) ^ (b >> 4);
    }
    crc.to_le_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_a_matches_the_standard_examples() {
        // ISO 14443-3 Annex B: 00 00 → A0 1E; 12 34 → 26 CF.
        assert_eq!(crc_a(&[0x00, 0x00], 0x6363), [0xA0, 0x1E]);
        assert_eq!(crc_a(&[0x12, 0x34], 0x6363), [0x26, 0xCF]);
        // HLTA as every reader sends it.
        assert_eq!(crc_a(&[0x50, 0x00], 0x6363), [0x57, 0xCD]);
    }
}
