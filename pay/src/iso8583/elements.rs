//! Reading and writing named elements of a message through the dialect's
//! element table, so flow code never hard-codes field numbers.
//!
//! Setters skip elements the dialect does not map (a host that has no use
//! for the transmission date/time simply doesn't get it); getters return
//! `None` for them. Elements every flow needs are checked when the dialect
//! is loaded.

use std::borrow::Cow;

use super::message::{Message, Value};
use super::profile::FieldPath;
use super::spec::{DataKind, Dialect, FieldSpec, LengthKind};

/// Why an element could not be written or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ElementError {
    /// The value does not fit the place the dialect gives the element.
    #[error("element {element} ({path}): value of length {len} does not fit {max}")]
    TooLong {
        /// Element name.
        element: String,
        /// Where it lives.
        path: String,
        /// Length given.
        len: usize,
        /// Room available.
        max: usize,
    },
    /// The element lives in a binary field but text was given (or the reverse
    /// where no conversion exists).
    #[error("element {element} ({path}): {problem}")]
    Type {
        /// Element name.
        element: String,
        /// Where it lives.
        path: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// A numeric element holds something that is not a number.
    #[error("element {element} ({path}) is not a number")]
    NotANumber {
        /// Element name.
        element: String,
        /// Where it lives.
        path: String,
    },
}

impl Dialect {
    /// Whether the dialect maps the element.
    pub fn has_element(&self, name: &str) -> bool {
        self.profile.element(name).is_some()
    }

    fn spec_of(&self, path: FieldPath) -> Option<&FieldSpec> {
        self.field(path.field)
    }

    /// The element's length if it is fixed: a fixed field's length or a
    /// subfield's length.
    pub fn element_fixed_len(&self, name: &str) -> Option<usize> {
        let path = self.profile.element(name)?;
        let spec = self.spec_of(path)?;
        match path.sub {
            Some(i) => spec.subfields.get(usize::from(i) - 1).map(|s| s.length),
            None if spec.length == LengthKind::Fixed => Some(spec.max),
            None => None,
        }
    }

    /// Writes a text element. Fixed-length numeric elements shorter than
    /// their place are zero-filled on the left, text is space-filled on the
    /// right. Text written to a binary place must be hex.
    pub fn set_text(&self, msg: &mut Message, name: &str, value: &str) -> Result<(), ElementError> {
        let Some(path) = self.profile.element(name) else {
            return Ok(());
        };
        let Some(spec) = self.spec_of(path) else {
            return Ok(());
        };
        let fail = |problem| ElementError::Type {
            element: name.to_string(),
            path: path.to_string(),
            problem,
        };
        match path.sub {
            None => {
                if spec.is_text() {
                    msg.set(path.field, fit_text(spec, value, spec_fixed(spec)));
                } else {
                    let bytes = hex::decode(value)
                        .map_err(|_| fail("text for a binary field must be hex"))?;
                    msg.set(path.field, bytes);
                }
                Ok(())
            }
            Some(i) => {
                let sub = &spec.subfields[usize::from(i) - 1];
                if spec.is_text() {
                    if value.len() > sub.length {
                        return Err(self.too_long(name, path, value.len(), sub.length));
                    }
                    let fitted = fit_text(spec, value, Some(sub.length));
                    let filler = if spec.kind == DataKind::N { '0' } else { ' ' };
                    let mut parent = msg.text(path.field).unwrap_or("").to_string();
                    // A fixed-length parent is filled to its whole length so
                    // it encodes even when only some of its parts are set.
                    let want = spec_fixed(spec).unwrap_or(sub.offset + sub.length);
                    while parent.len() < want {
                        parent.push(filler);
                    }
                    parent.replace_range(sub.offset..sub.offset + sub.length, &fitted);
                    msg.set(path.field, parent);
                } else {
                    let bytes = hex::decode(value)
                        .map_err(|_| fail("text for a binary field must be hex"))?;
                    self.set_sub_bytes(msg, name, path, spec, &bytes)?;
                }
                Ok(())
            }
        }
    }

    /// Writes a number, zero-filled to the element's fixed length if it has one.
    pub fn set_number(
        &self,
        msg: &mut Message,
        name: &str,
        value: u64,
    ) -> Result<(), ElementError> {
        let digits = match self.element_fixed_len(name) {
            Some(len) => {
                let s = format!("{value:0len$}");
                if s.len() > len {
                    let path = self
                        .profile
                        .element(name)
                        .map(|p| p.to_string())
                        .unwrap_or_default();
                    return Err(ElementError::TooLong {
                        element: name.to_string(),
                        path,
                        len: s.len(),
                        max: len,
                    });
                }
                s
            }
            None => value.to_string(),
        };
        self.set_text(msg, name, &digits)
    }

    /// Writes bytes. In a text place they are written as uppercase hex.
    pub fn set_bytes(
        &self,
        msg: &mut Message,
        name: &str,
        value: &[u8],
    ) -> Result<(), ElementError> {
        let Some(path) = self.profile.element(name) else {
            return Ok(());
        };
        let Some(spec) = self.spec_of(path) else {
            return Ok(());
        };
        if spec.is_text() {
            return self.set_text(msg, name, &hex::encode_upper(value));
        }
        match path.sub {
            None => {
                msg.set(path.field, value.to_vec());
                Ok(())
            }
            Some(_) => self.set_sub_bytes(msg, name, path, spec, value),
        }
    }

    fn set_sub_bytes(
        &self,
        msg: &mut Message,
        name: &str,
        path: FieldPath,
        spec: &FieldSpec,
        value: &[u8],
    ) -> Result<(), ElementError> {
        let sub = &spec.subfields[usize::from(path.sub.unwrap_or(1)) - 1];
        if value.len() != sub.length {
            return Err(self.too_long(name, path, value.len(), sub.length));
        }
        let mut parent = msg
            .binary(path.field)
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        let want = spec_fixed(spec).unwrap_or(sub.offset + sub.length);
        if parent.len() < want {
            parent.resize(want, 0);
        }
        parent[sub.offset..sub.offset + sub.length].copy_from_slice(value);
        msg.set(path.field, parent);
        Ok(())
    }

    fn too_long(&self, name: &str, path: FieldPath, len: usize, max: usize) -> ElementError {
        ElementError::TooLong {
            element: name.to_string(),
            path: path.to_string(),
            len,
            max,
        }
    }

    /// Reads a text element. A subfield beyond the end of a shorter parent is absent.
    pub fn get_text<'m>(&self, msg: &'m Message, name: &str) -> Option<&'m str> {
        let path = self.profile.element(name)?;
        let value = msg.text(path.field)?;
        match path.sub {
            None => Some(value),
            Some(i) => {
                let sub = self.spec_of(path)?.subfields.get(usize::from(i) - 1)?;
                value
                    .get(sub.offset..(sub.offset + sub.length).min(value.len()))
                    .filter(|s| !s.is_empty())
            }
        }
    }

    /// Reads a numeric element.
    pub fn get_number(&self, msg: &Message, name: &str) -> Option<Result<u64, ElementError>> {
        let text = self.get_text(msg, name)?;
        Some(text.trim().parse::<u64>().map_err(|_| {
            ElementError::NotANumber {
                element: name.to_string(),
                path: self
                    .profile
                    .element(name)
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
            }
        }))
    }

    /// Reads an element as bytes: binary places as they are, text places
    /// decoded from hex (`None` if the text is not hex).
    pub fn get_bytes<'m>(&self, msg: &'m Message, name: &str) -> Option<Cow<'m, [u8]>> {
        let path = self.profile.element(name)?;
        match msg.get(path.field)? {
            Value::Text(_) => hex::decode(self.get_text(msg, name)?).ok().map(Cow::Owned),
            Value::Binary(b) => match path.sub {
                None => Some(Cow::Borrowed(b)),
                Some(i) => {
                    let sub = self.spec_of(path)?.subfields.get(usize::from(i) - 1)?;
                    b.get(sub.offset..sub.offset + sub.length)
                        .map(Cow::Borrowed)
                }
            },
        }
    }

    /// Removes a whole-field element (subfield elements are left alone).
    pub fn clear_element(&self, msg: &mut Message, name: &str) {
        if let Some(FieldPath { field, sub: None }) = self.profile.element(name) {
            msg.remove(field);
        }
    }
}

fn spec_fixed(spec: &FieldSpec) -> Option<usize> {
    (spec.length == LengthKind::Fixed).then_some(spec.max)
}

/// Fills a short value to a fixed length: numbers with leading zeros, other
/// text with trailing spaces. Values that are too long are left as they are
/// for the encoder to reject with the field named.
fn fit_text(spec: &FieldSpec, value: &str, fixed: Option<usize>) -> String {
    match fixed {
        Some(len) if value.len() < len => {
            if spec.kind == DataKind::N {
                format!("{value:0>len$}")
            } else {
                format!("{value:<len$}")
            }
        }
        _ => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subfields_fill_in_any_order() {
        let d = Dialect::load("cup").unwrap();
        let mut m = Message::new("0200").unwrap();
        d.set_text(&mut m, "network_mgmt_code", "201").unwrap();
        d.set_number(&mut m, "batch_number", 42).unwrap();
        assert_eq!(m.text(60), Some("00000042201"));
        d.set_text(&mut m, "msg_type_code", "22").unwrap();
        assert_eq!(m.text(60), Some("22000042201"));
        assert_eq!(d.get_text(&m, "batch_number"), Some("000042"));
        assert_eq!(d.get_number(&m, "batch_number").unwrap().unwrap(), 42);
        let mut m = Message::new("0200").unwrap();
        d.set_text(&mut m, "msg_type_code", "22").unwrap();
        assert_eq!(m.text(60), Some("22"));
        assert_eq!(
            d.get_text(&m, "batch_number"),
            None,
            "absent trailing subfield"
        );
    }

    #[test]
    fn fixed_parents_are_filled_whole() {
        let d = Dialect::load("iso87ascii").unwrap();
        let mut m = Message::new("0400").unwrap();
        d.set_text(&mut m, "original_stan", "000123").unwrap();
        assert_eq!(m.text(90).map(str::len), Some(42));
        assert_eq!(d.get_text(&m, "original_stan"), Some("000123"));
        assert_eq!(d.get_text(&m, "original_mti"), Some("0000"));
        d.encode(&m).unwrap();
    }

    #[test]
    fn bytes_in_binary_and_text_places() {
        let cup = Dialect::load("cup").unwrap();
        let mut m = Message::new("0810").unwrap();
        cup.set_bytes(&mut m, "mac_key_kcv", &[1, 2, 3, 4]).unwrap();
        assert_eq!(m.binary(62).map(<[u8]>::len), Some(40));
        assert_eq!(
            cup.get_bytes(&m, "mac_key_kcv").unwrap().as_ref(),
            &[1, 2, 3, 4]
        );
        assert!(matches!(
            cup.set_bytes(&mut m, "pin_key_kcv", &[1, 2]),
            Err(ElementError::TooLong { .. })
        ));
        let iso = Dialect::load("iso87ascii").unwrap();
        let mut m = Message::new("0810").unwrap();
        iso.set_bytes(&mut m, "pin_key_kcv", &[0xAB, 0xCD, 0xEF])
            .unwrap();
        assert_eq!(iso.get_text(&m, "pin_key_kcv"), Some("ABCDEF"));
        assert_eq!(
            iso.get_bytes(&m, "pin_key_kcv").unwrap().as_ref(),
            &[0xAB, 0xCD, 0xEF]
        );
    }

    #[test]
    fn numbers_are_zero_filled_and_checked() {
        let d = Dialect::load("cup").unwrap();
        let mut m = Message::new("0200").unwrap();
        d.set_number(&mut m, "amount", 1234).unwrap();
        assert_eq!(m.text(4), Some("000000001234"));
        assert!(matches!(
            d.set_number(&mut m, "stan", 1_000_000),
            Err(ElementError::TooLong { .. })
        ));
        d.set_number(&mut m, "debit_count", 7).unwrap();
        assert_eq!(d.get_text(&m, "debit_count"), Some("007"));
        // Unmapped elements are skipped, not errors.
        d.set_text(&mut m, "transmission_datetime", "1121123000")
            .unwrap();
        assert_eq!(d.get_text(&m, "transmission_datetime"), None);
        m.set(4, "00000000ABCD");
        assert!(d.get_number(&m, "amount").unwrap().is_err());
    }
}
