//! `tillctl iso8583 describe|encode`.

use clap::Subcommand;
use till_pay::iso8583::{Dialect, Masking};

use super::{Done, Failure, parse_hex, read_stdin};

#[derive(Subcommand)]
pub(crate) enum Iso8583Command {
    /// Hex message on stdin → JSON {"mti", "fields"}; card data masked unless --unmasked.
    Describe {
        /// Built-in dialect name (iso87ascii, cup) or path to a dialect file.
        #[arg(long, default_value = "cup")]
        dialect: String,
        /// Show PANs, tracks, expiry dates, PIN blocks and keys in full.
        #[arg(long)]
        unmasked: bool,
    },
    /// JSON {"mti", "fields"} on stdin → hex message.
    Encode {
        /// Built-in dialect name (iso87ascii, cup) or path to a dialect file.
        #[arg(long, default_value = "cup")]
        dialect: String,
    },
    /// List the fields a dialect defines.
    Fields {
        /// Built-in dialect name (iso87ascii, cup) or path to a dialect file.
        #[arg(long, default_value = "cup")]
        dialect: String,
    },
}

fn load(name: &str) -> Result<Dialect, Failure> {
    Dialect::load(name).map_err(|e| Failure::new("dialect", e.to_string()))
}

pub(crate) fn run(cmd: Iso8583Command) -> Result<Done, Failure> {
    match cmd {
        Iso8583Command::Describe { dialect, unmasked } => {
            let d = load(&dialect)?;
            let bytes = parse_hex("the message on stdin", &read_stdin()?)?;
            let msg = d
                .decode(&bytes)
                .map_err(|e| Failure::new("decode", format!("cannot decode as {}: {e}", d.name)))?;
            let masking = if unmasked {
                Masking::Unmasked
            } else {
                Masking::Masked
            };
            Ok(Done::Json(d.describe(&msg, masking)))
        }
        Iso8583Command::Encode { dialect } => {
            let d = load(&dialect)?;
            let text = read_stdin()?;
            let doc: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| Failure::new("input", format!("stdin is not JSON: {e}")))?;
            let msg = d
                .from_json(&doc)
                .map_err(|e| Failure::new("encode", e.to_string()))?;
            let wire = d
                .encode(&msg)
                .map_err(|e| Failure::new("encode", e.to_string()))?;
            Ok(Done::Text(hex::encode_upper(wire)))
        }
        Iso8583Command::Fields { dialect } => {
            let d = load(&dialect)?;
            let fields: Vec<serde_json::Value> = d
                .fields()
                .map(|f| {
                    serde_json::json!({
                        "field": f.number,
                        "name": f.name,
                        "type": f.kind.notation(),
                        "length": match f.length {
                            till_pay::iso8583::spec::LengthKind::Fixed => "fixed".to_string(),
                            till_pay::iso8583::spec::LengthKind::Variable(n) => format!("{}var", "l".repeat(n.into())),
                        },
                        "max": f.max,
                        "sensitive": format!("{:?}", f.sensitive).to_lowercase(),
                    })
                })
                .collect();
            Ok(Done::Json(
                serde_json::json!({"dialect": d.name, "description": d.description, "fields": fields}),
            ))
        }
    }
}
