//! A message as JSON — `{"mti": "0200", "fields": {"3": "000000", …}}` —
//! for `tillctl iso8583 describe|encode`, logs and the acquirer's ledger.
//!
//! Binary fields appear as uppercase hex. Masking is the default: PANs keep
//! their first six and last four digits, track data its masked PAN, and
//! expiry dates, PIN blocks, keys and cryptograms are replaced by `*`.

use serde_json::{Map, Value as Json, json};

use super::message::{Message, Value};
use super::spec::{Dialect, Sensitivity};
use crate::card::{mask_pan, mask_track2};

/// Whether sensitive fields are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Masking {
    /// Mask sensitive fields (the default everywhere).
    Masked,
    /// Show everything — only for a field engineer who asks for it.
    Unmasked,
}

/// Why JSON could not be turned into a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// The document's shape is wrong.
    #[error("{0}")]
    Shape(String),
    /// A field's value is unusable.
    #[error("field {field}: {problem}")]
    Field {
        /// The field number as given.
        field: String,
        /// What is wrong.
        problem: String,
    },
}

fn mask(sensitivity: Sensitivity, shown: String) -> String {
    match sensitivity {
        Sensitivity::None => shown,
        Sensitivity::Pan => mask_pan(&shown),
        Sensitivity::Track => mask_track2(&shown),
        Sensitivity::Expiry | Sensitivity::Secret => "*".repeat(shown.len()),
    }
}

impl Dialect {
    /// The message as JSON, masked unless asked otherwise.
    ///
    /// ```
    /// use till_pay::iso8583::{Dialect, Masking, Message};
    /// let d = Dialect::load("iso87ascii").unwrap();
    /// let mut m = Message::new("0200").unwrap();
    /// m.set(2, "4761739001010010");
    /// let j = d.describe(&m, Masking::Masked);
    /// assert_eq!(j["fields"]["2"], "476173******0010");
    /// ```
    pub fn describe(&self, msg: &Message, masking: Masking) -> Json {
        let mut fields = Map::new();
        for (n, value) in msg.fields() {
            let shown = match value {
                Value::Text(s) => s.clone(),
                Value::Binary(b) => hex::encode_upper(b),
            };
            let sensitivity = self
                .field(n)
                .map(|f| f.sensitive)
                .unwrap_or(Sensitivity::Secret);
            let shown = if masking == Masking::Masked {
                mask(sensitivity, shown)
            } else {
                shown
            };
            fields.insert(n.to_string(), Json::String(shown));
        }
        let mut out = Map::new();
        if !msg.header.is_empty() {
            out.insert(
                "header".into(),
                Json::String(hex::encode_upper(&msg.header)),
            );
        }
        out.insert("mti".into(), json!(msg.mti()));
        out.insert("fields".into(), Json::Object(fields));
        Json::Object(out)
    }

    /// Builds a message from the JSON [`Dialect::describe`] produces
    /// (unmasked): binary fields as hex, everything else as text. The
    /// message is checked by encoding it.
    pub fn from_json(&self, doc: &Json) -> Result<Message, JsonError> {
        let obj = doc.as_object().ok_or_else(|| {
            JsonError::Shape("expected a JSON object with \"mti\" and \"fields\"".into())
        })?;
        for key in obj.keys() {
            if !matches!(key.as_str(), "mti" | "fields" | "header") {
                return Err(JsonError::Shape(format!(
                    "unexpected key {key:?}; allowed: mti, fields, header"
                )));
            }
        }
        let mti = obj
            .get("mti")
            .and_then(Json::as_str)
            .ok_or_else(|| JsonError::Shape("\"mti\" must be a string such as \"0200\"".into()))?;
        let mut msg = Message::new(mti).map_err(|e| JsonError::Shape(e.to_string()))?;
        if let Some(h) = obj.get("header") {
            let h = h
                .as_str()
                .ok_or_else(|| JsonError::Shape("\"header\" must be a hex string".into()))?;
            msg.header = hex::decode(h)
                .map_err(|_| JsonError::Shape("\"header\" must be a hex string".into()))?;
        }
        let fields = match obj.get("fields") {
            None => return Ok(msg),
            Some(f) => f
                .as_object()
                .ok_or_else(|| JsonError::Shape("\"fields\" must be an object".into()))?,
        };
        for (key, value) in fields {
            let bad = |problem: String| JsonError::Field {
                field: key.clone(),
                problem,
            };
            let n: u8 = key
                .parse()
                .ok()
                .filter(|n| (2..=128).contains(n) && *n != 65)
                .ok_or_else(|| bad("field numbers run from 2 to 128 (65 is a bitmap)".into()))?;
            let spec = self
                .field(n)
                .ok_or_else(|| bad(format!("dialect {} does not define it", self.name)))?;
            let text = value
                .as_str()
                .ok_or_else(|| bad("value must be a string".into()))?;
            if spec.is_text() {
                msg.set(n, text);
            } else {
                let bytes =
                    hex::decode(text).map_err(|_| bad("binary fields are given as hex".into()))?;
                msg.set(n, bytes);
            }
        }
        self.encode(&msg).map_err(|e| JsonError::Field {
            field: match e.location {
                super::codec::Location::Field(n) => n.to_string(),
                _ => "message".into(),
            },
            problem: e.to_string(),
        })?;
        Ok(msg)
    }
}
