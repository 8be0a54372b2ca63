//! `tillctl card read`: read a contactless card through the configured
//! reader and the EMV kernel.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde_json::json;
use till_pay::emv::Transaction;
use till_pay::money::{Amount, Currency};

use super::{Done, Failure};
use crate::card::{open_reader, read_card};

#[derive(Args, Clone)]
pub(crate) struct ReaderArgs {
    /// Device configuration (TOML; default /etc/till/devices.toml, else the Pi 4 defaults).
    #[arg(long)]
    pub devices: Option<PathBuf>,
    /// Use the simulated reader with this virtual card from the bundled card
    /// file in its field (e.g. visa-ok, mc-ok, cup-ok).
    #[arg(long)]
    pub virtual_card: Option<String>,
    /// Seconds to wait for a card.
    #[arg(long, default_value_t = 30.0)]
    pub wait: f64,
}

impl ReaderArgs {
    /// Reads a card for a purchase of `amount`.
    pub(crate) fn read(
        &self,
        amount: Amount,
        currency: Currency,
    ) -> Result<till_pay::emv::CardRead, Failure> {
        let mut config = super::devices::load_config(self.devices.clone())?;
        if self.virtual_card.is_some() {
            config.reader.simulated = true;
        }
        let name = self
            .virtual_card
            .clone()
            .unwrap_or_else(|| "visa-ok".into());
        let mut reader = open_reader(&config.reader, &name)
            .map_err(|e| Failure::new("reader", e.to_string()))?;
        let txn = Transaction::purchase(amount, currency, chrono::Local::now().naive_local());
        let wait = Duration::from_secs_f64(self.wait.max(0.0));
        read_card(reader.as_mut(), &txn, wait).map_err(|e| Failure::new("card", e.to_string()))
    }
}

#[derive(Args)]
pub(crate) struct CardReadArgs {
    #[command(flatten)]
    reader: ReaderArgs,
    /// Amount the card is read for (it goes into the cryptogram).
    #[arg(long, default_value = "0.01")]
    amount: String,
    /// Currency.
    #[arg(long, default_value = "CNY")]
    currency: String,
}

pub(crate) fn read(args: CardReadArgs) -> Result<Done, Failure> {
    let currency = Currency::find(&args.currency)
        .ok_or_else(|| Failure::new("usage", format!("unknown currency {:?}", args.currency)))?;
    let amount = Amount::parse(&args.amount, currency)
        .map_err(|e| Failure::new("usage", format!("--amount: {e}")))?;
    let card = args.reader.read(amount, currency)?;
    Ok(Done::Json(json!({
        "pan": card.pan.masked(),
        "aid": card.aid_hex(),
        "label": card.label,
        "expiry": card.expiry.yymm(),
        "pan_sequence": card.pan_sequence,
        "cryptogram": format!("{:?}", card.cryptogram.kind),
        "atc": card.cryptogram.atc,
        "icc_data_bytes": card.icc_data.len(),
    })))
}
