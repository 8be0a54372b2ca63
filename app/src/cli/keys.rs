//! `tillctl pinblock` and `tillctl mac`.

use clap::Args;
use till_pay::crypto::mac::{aes_cmac, cup_pos_mac, retail_mac};
use till_pay::crypto::pinblock::{clear_pin_block, encipher};
use till_pay::crypto::{KeyScheme, MacPadding, Pin, PinBlockFormat, SecretKey};

use super::{Done, Failure, parse_hex, read_stdin};

#[derive(Args)]
pub(crate) struct PinblockArgs {
    /// ISO 9564 format: 0, 3 or 4.
    #[arg(long)]
    format: u8,
    /// The PIN, 4 to 12 digits. (On a shared machine prefer --pin-stdin: the
    /// command line is visible to other users.)
    #[arg(long, conflicts_with = "pin_stdin")]
    pin: Option<String>,
    /// Read the PIN from the first line of stdin.
    #[arg(long)]
    pin_stdin: bool,
    /// The card number the block is bound to.
    #[arg(long)]
    pan: String,
    /// PIN encryption key in hex (TDES for formats 0/3, AES for 4). Without
    /// it formats 0 and 3 print the clear PIN block.
    #[arg(long)]
    key: Option<String>,
}

fn crypto(e: impl std::fmt::Display) -> Failure {
    Failure::new("crypto", e.to_string())
}

pub(crate) fn pinblock(args: PinblockArgs) -> Result<Done, Failure> {
    let format = PinBlockFormat::try_from(args.format).map_err(crypto)?;
    let digits = match (args.pin, args.pin_stdin) {
        (Some(p), _) => zeroize::Zeroizing::new(p),
        (None, true) => zeroize::Zeroizing::new(
            read_stdin()?
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string(),
        ),
        (None, false) => {
            return Err(Failure::new(
                "usage",
                "give the PIN with --pin or --pin-stdin",
            ));
        }
    };
    let pin = Pin::new(&digits).map_err(crypto)?;
    let block = match args.key {
        None if format == PinBlockFormat::Iso4 => {
            return Err(Failure::new(
                "usage",
                "ISO 9564 format 4 exists only enciphered under an AES key: pass --key with 16, 24 or 32 bytes of hex",
            ));
        }
        None => clear_pin_block(format, &pin, &args.pan)
            .map_err(crypto)?
            .to_vec(),
        Some(k) => {
            let scheme = if format == PinBlockFormat::Iso4 {
                KeyScheme::Aes
            } else {
                KeyScheme::Tdes
            };
            let key = SecretKey::new(scheme, &parse_hex("--key", &k)?).map_err(crypto)?;
            encipher(format, &pin, &args.pan, &key).map_err(crypto)?
        }
    };
    Ok(Done::Text(hex::encode_upper(block)))
}

#[derive(Args)]
pub(crate) struct MacArgs {
    /// retail (ISO 9797-1 algorithm 3, double-length TDES key), cmac (AES-CMAC),
    /// or cup (UnionPay POS MAC, 8- or 16-byte DES/TDES key).
    #[arg(long)]
    alg: String,
    /// MAC key in hex.
    #[arg(long)]
    key: String,
    /// ISO 9797-1 padding method for retail: 1 or 2 (default 2).
    #[arg(long)]
    padding: Option<u8>,
}

/// Prints the MAC as its algorithm defines it: retail 8 bytes and AES-CMAC
/// 16 bytes as hex; the UnionPay MAC is already eight hex characters, which
/// travel as ASCII in field 64, and is printed as those characters.
pub(crate) fn mac(args: MacArgs) -> Result<Done, Failure> {
    let data = parse_hex("the data on stdin", &read_stdin()?)?;
    let key_bytes = parse_hex("--key", &args.key)?;
    let out = match args.alg.as_str() {
        "retail" => {
            let padding = MacPadding::try_from(args.padding.unwrap_or(2)).map_err(crypto)?;
            let key = SecretKey::new(KeyScheme::Tdes, &key_bytes).map_err(crypto)?;
            hex::encode_upper(retail_mac(&key, &data, padding).map_err(crypto)?)
        }
        "cmac" | "cup" if args.padding.is_some() => {
            return Err(Failure::new(
                "usage",
                format!("--padding applies to the retail MAC only, not {}", args.alg),
            ));
        }
        "cmac" => {
            let key = SecretKey::new(KeyScheme::Aes, &key_bytes).map_err(crypto)?;
            hex::encode_upper(aes_cmac(&key, &data).map_err(crypto)?)
        }
        "cup" => {
            let key = SecretKey::new(KeyScheme::Tdes, &key_bytes).map_err(crypto)?;
            String::from_utf8_lossy(&cup_pos_mac(&key, &data).map_err(crypto)?).into_owned()
        }
        other => {
            return Err(Failure::new(
                "usage",
                format!("unknown MAC algorithm {other:?}; use retail, cmac or cup"),
            ));
        }
    };
    Ok(Done::Text(out))
}
