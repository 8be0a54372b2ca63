//! ISO 8583 messages driven by declarative dialect files.
