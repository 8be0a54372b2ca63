//! EMV contactless card reading (terminal side) and issuer-side checks.
