//! Just enough BER-TLV building for a card's answers: tags of up to two
//! bytes, minimal lengths. (The terminal's strict parser is `till-pay`'s;
//! this side only writes.)

/// A tag's bytes (one byte below `0x100`, else two).
pub(crate) fn tag_bytes(tag: u16) -> impl Iterator<Item = u8> {
    let bytes = tag.to_be_bytes();
    let skip = usize::from(tag < 0x100);
    bytes.into_iter().skip(skip)
}

/// A primitive object.
pub(crate) fn primitive(tag: u16, value: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = tag_bytes(tag).collect();
    match value.len() {
        0..=0x7F => out.push(value.len() as u8),
        0x80..=0xFF => out.extend_from_slice(&[0x81, value.len() as u8]),
        n => out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(value);
    out
}

/// A constructed object holding the already encoded `children`.
pub(crate) fn constructed(tag: u16, children: &[Vec<u8>]) -> Vec<u8> {
    primitive(tag, &children.concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_emv() {
        assert_eq!(primitive(0x5A, &[0x12]), [0x5A, 0x01, 0x12]);
        assert_eq!(primitive(0x9F36, &[0, 1]), [0x9F, 0x36, 0x02, 0, 1]);
        assert_eq!(&primitive(0x9F10, &[0; 200])[..4], &[0x9F, 0x10, 0x81, 200]);
        assert_eq!(&primitive(0x53, &[0; 300])[..4], &[0x53, 0x82, 0x01, 0x2C]);
        assert_eq!(
            constructed(0x70, &[primitive(0x5A, &[1]), primitive(0x57, &[2])]),
            [0x70, 0x06, 0x5A, 0x01, 0x01, 0x57, 0x01, 0x02]
        );
    }
}
