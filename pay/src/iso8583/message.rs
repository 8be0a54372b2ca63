//! An ISO 8583 message as values, independent of any wire encoding.

use std::fmt;

use zeroize::Zeroize;

/// A field value: text for every kind but `b`, bytes for binary fields.
#[derive(Clone, PartialEq, Eq)]
pub enum Value {
    /// Characters of a text, numeric or track field.
    Text(String),
    /// Bytes of a binary field.
    Binary(Vec<u8>),
}

impl Value {
    /// The text, if this is a text value.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            Value::Binary(_) => None,
        }
    }

    /// The bytes, if this is a binary value.
    pub fn as_binary(&self) -> Option<&[u8]> {
        match self {
            Value::Binary(b) => Some(b),
            Value::Text(_) => None,
        }
    }

    /// Length in characters or bytes.
    pub fn len(&self) -> usize {
        match self {
            Value::Text(s) => s.len(),
            Value::Binary(b) => b.len(),
        }
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Zeroize for Value {
    fn zeroize(&mut self) {
        match self {
            Value::Text(s) => s.zeroize(),
            Value::Binary(b) => b.zeroize(),
        }
    }
}

/// Values print as their length only: a value may be a PAN or a key.
impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Text(s) => write!(f, "Text({} chars)", s.len()),
            Value::Binary(b) => write!(f, "Binary({} bytes)", b.len()),
        }
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Text(s)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Text(s.to_string())
    }
}

impl From<Vec<u8>> for Value {
    fn from(b: Vec<u8>) -> Value {
        Value::Binary(b)
    }
}

impl From<&[u8]> for Value {
    fn from(b: &[u8]) -> Value {
        Value::Binary(b.to_vec())
    }
}

/// One ISO 8583 message: header bytes (if the dialect has a header), the
/// message type indicator and fields 2–128. Field values are zeroized when
/// the message is dropped, since they include card data.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    /// Raw header bytes; empty when the dialect has none (the encoder then
    /// writes the dialect's default header).
    pub header: Vec<u8>,
    mti: [u8; 4],
    fields: Vec<(u8, Value)>,
}

/// Why an MTI was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("message type {0:?} must be four digits, e.g. 0200")]
pub struct BadMti(pub String);

impl Message {
    /// A message with the given type indicator (four digits) and no fields.
    ///
    /// ```
    /// let mut m = till_pay::iso8583::Message::new("0200").unwrap();
    /// m.set(3, "000000");
    /// assert_eq!(m.text(3), Some("000000"));
    /// ```
    pub fn new(mti: &str) -> Result<Message, BadMti> {
        let mut m = Message {
            header: Vec::new(),
            mti: *b"0000",
            fields: Vec::new(),
        };
        m.set_mti(mti)?;
        Ok(m)
    }

    /// The message type indicator, e.g. `0200`.
    pub fn mti(&self) -> &str {
        // Only ever holds four ASCII digits (checked in set_mti).
        std::str::from_utf8(&self.mti).unwrap_or("????")
    }

    /// Sets the message type indicator.
    pub fn set_mti(&mut self, mti: &str) -> Result<(), BadMti> {
        let b = mti.as_bytes();
        if b.len() != 4 || !b.iter().all(u8::is_ascii_digit) {
            return Err(BadMti(mti.chars().take(8).collect()));
        }
        self.mti.copy_from_slice(b);
        Ok(())
    }

    /// Sets a field (2–128). Numbers outside that range are ignored: field 1
    /// and 65 are bitmaps that the encoder writes itself.
    pub fn set(&mut self, field: u8, value: impl Into<Value>) {
        if !(2..=128).contains(&field) || field == 65 {
            return;
        }
        let value = value.into();
        match self.fields.binary_search_by_key(&field, |(n, _)| *n) {
            Ok(i) => self.fields[i].1 = value,
            Err(i) => self.fields.insert(i, (field, value)),
        }
    }

    /// The field's value.
    pub fn get(&self, field: u8) -> Option<&Value> {
        self.fields
            .binary_search_by_key(&field, |(n, _)| *n)
            .ok()
            .map(|i| &self.fields[i].1)
    }

    /// The field's value if it is text.
    pub fn text(&self, field: u8) -> Option<&str> {
        self.get(field).and_then(Value::as_text)
    }

    /// The field's value if it is binary.
    pub fn binary(&self, field: u8) -> Option<&[u8]> {
        self.get(field).and_then(Value::as_binary)
    }

    /// Whether the field is present.
    pub fn has(&self, field: u8) -> bool {
        self.get(field).is_some()
    }

    /// Removes a field, returning its value.
    pub fn remove(&mut self, field: u8) -> Option<Value> {
        let i = self.fields.binary_search_by_key(&field, |(n, _)| *n).ok()?;
        Some(self.fields.remove(i).1)
    }

    /// Present fields in number order.
    pub fn fields(&self) -> impl Iterator<Item = (u8, &Value)> {
        self.fields.iter().map(|(n, v)| (*n, v))
    }

    /// Whether any field above 64 is present (a secondary bitmap is needed).
    pub fn needs_secondary_bitmap(&self) -> bool {
        self.fields.last().is_some_and(|(n, _)| *n > 64)
    }
}

impl Drop for Message {
    fn drop(&mut self) {
        for (_, v) in &mut self.fields {
            v.zeroize();
        }
    }
}

/// Shows the type and which fields are present, never their values (use
/// [`super::describe`] for a masked view of the values).
impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let present: Vec<u8> = self.fields.iter().map(|(n, _)| *n).collect();
        f.debug_struct("Message")
            .field("mti", &self.mti())
            .field("fields", &present)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_stay_sorted_and_replace() {
        let mut m = Message::new("0200").unwrap();
        m.set(11, "000001");
        m.set(2, "4761739001010010");
        m.set(70, "001");
        m.set(11, "000002");
        m.set(1, "ignored");
        m.set(65, "ignored");
        let order: Vec<u8> = m.fields().map(|(n, _)| n).collect();
        assert_eq!(order, [2, 11, 70]);
        assert_eq!(m.text(11), Some("000002"));
        assert!(m.needs_secondary_bitmap());
        assert_eq!(
            m.remove(70)
                .and_then(|v| v.as_text().map(str::to_owned))
                .as_deref(),
            Some("001")
        );
        assert!(!m.needs_secondary_bitmap());
    }

    #[test]
    fn debug_never_shows_values() {
        let mut m = Message::new("0200").unwrap();
        m.set(2, "4761739001010010");
        m.set(52, vec![0xAB; 8]);
        let s = format!("{m:?} {:?} {:?}", m.get(2), m.get(52));
        assert!(
            !s.contains("4761739001010010") && !s.contains("AB") && !s.contains("171"),
            "{s}"
        );
    }

    #[test]
    fn mti_must_be_four_digits() {
        for bad in ["020", "02000", "02a0", ""] {
            assert!(Message::new(bad).is_err(), "{bad}");
        }
    }
}
