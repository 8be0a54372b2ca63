//! The typical 0200 (sale) message the codec benchmarks use: the fields a
//! card-present sale with PIN carries on each shipped dialect.

use till_pay::iso8583::{Dialect, Message};

pub fn typical_0200(d: &Dialect) -> Message {
    let mut m = Message::new("0200").unwrap();
    let set = |m: &mut Message, e: &str, v: &str| d.set_text(m, e, v).unwrap();
    set(&mut m, "pan", "6222021234567890128");
    set(&mut m, "processing_code", "000000");
    d.set_number(&mut m, "amount", 1234).unwrap();
    set(&mut m, "transmission_datetime", "1121103000");
    set(&mut m, "stan", "000123");
    set(&mut m, "local_time", "183000");
    set(&mut m, "local_date", "1121");
    set(&mut m, "expiry", "3012");
    set(&mut m, "pos_entry_mode", "021");
    set(&mut m, "pos_condition_code", "00");
    set(&mut m, "track2", "6222021234567890128=30122011234");
    set(&mut m, "terminal_id", "TILL0001");
    set(&mut m, "merchant_id", "123456789012345");
    set(&mut m, "currency", "156");
    d.set_bytes(
        &mut m,
        "pin_block",
        &[0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC, 0xDE, 0xF0],
    )
    .unwrap();
    set(&mut m, "msg_type_code", "22");
    d.set_number(&mut m, "batch_number", 1).unwrap();
    d.set_bytes(&mut m, "mac", &[0xA5; 8]).unwrap();
    m
}
