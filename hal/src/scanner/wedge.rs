//! Keyboard-wedge decoding: a USB scanner or magnetic stripe reader that
//! pretends to be a keyboard types each scan followed by Enter. This turns
//! its key events (evdev `EV_KEY` codes and values) back into text, with
//! the US layout those devices use by default.

use evdev::KeyCode;

/// Longest line kept; a device that never sends Enter cannot grow memory.
pub const MAX_LINE: usize = 512;

/// Turns key events into lines.
#[derive(Debug, Default, Clone)]
pub struct WedgeDecoder {
    line: String,
    shift: u8,
    overflow: bool,
}

fn key_char(code: u16, shift: bool) -> Option<char> {
    const ROW_NUM: &str = "1234567890-=";
    const ROW_NUM_S: &str = "!@#$%^&*()_+";
    let k = KeyCode::new(code);
    let pick = |plain: &str, shifted: &str, i: usize| {
        let s = if shift { shifted } else { plain };
        s.chars().nth(i)
    };
    let letters = [
        (KeyCode::KEY_Q, 'q'),
        (KeyCode::KEY_W, 'w'),
        (KeyCode::KEY_E, 'e'),
        (KeyCode::KEY_R, 'r'),
        (KeyCode::KEY_T, 't'),
        (KeyCode::KEY_Y, 'y'),
        (KeyCode::KEY_U, 'u'),
        (KeyCode::KEY_I, 'i'),
        (KeyCode::KEY_O, 'o'),
        (KeyCode::KEY_P, 'p'),
        (KeyCode::KEY_A, 'a'),
        (KeyCode::KEY_S, 's'),
        (KeyCode::KEY_D, 'd'),
        (KeyCode::KEY_F, 'f'),
        (KeyCode::KEY_G, 'g'),
        (KeyCode::KEY_H, 'h'),
        (KeyCode::KEY_J, 'j'),
        (KeyCode::KEY_K, 'k'),
        (KeyCode::KEY_L, 'l'),
        (KeyCode::KEY_Z, 'z'),
        (KeyCode::KEY_X, 'x'),
        (KeyCode::KEY_C, 'c'),
        (KeyCode::KEY_V, 'v'),
        (KeyCode::KEY_B, 'b'),
        (KeyCode::KEY_N, 'n'),
        (KeyCode::KEY_M, 'm'),
    ];
    if let Some(&(_, c)) = letters.iter().find(|(kc, _)| *kc == k) {
        return Some(if shift { c.to_ascii_uppercase() } else { c });
    }
    // KEY_1 (2) … KEY_EQUAL (13) are consecutive.
    if (KeyCode::KEY_1.code()..=KeyCode::KEY_EQUAL.code()).contains(&code) {
        return pick(
            ROW_NUM,
            ROW_NUM_S,
            usize::from(code - KeyCode::KEY_1.code()),
        );
    }
    let punct = [
        (KeyCode::KEY_SEMICOLON, ';', ':'),
        (KeyCode::KEY_APOSTROPHE, '\'', '"'),
        (KeyCode::KEY_GRAVE, '`', '~'),
        (KeyCode::KEY_BACKSLASH, '\\', '|'),
        (KeyCode::KEY_COMMA, ',', '<'),
        (KeyCode::KEY_DOT, '.', '>'),
        (KeyCode::KEY_SLASH, '/', '?'),
        (KeyCode::KEY_LEFTBRACE, '[', '{'),
        (KeyCode::KEY_RIGHTBRACE, ']', '}'),
        (KeyCode::KEY_SPACE, ' ', ' '),
        (KeyCode::KEY_KP0, '0', '0'),
        (KeyCode::KEY_KP1, '1', '1'),
        (KeyCode::KEY_KP2, '2', '2'),
        (KeyCode::KEY_KP3, '3', '3'),
        (KeyCode::KEY_KP4, '4', '4'),
        (KeyCode::KEY_KP5, '5', '5'),
        (KeyCode::KEY_KP6, '6', '6'),
        (KeyCode::KEY_KP7, '7', '7'),
        (KeyCode::KEY_KP8, '8', '8'),
        (KeyCode::KEY_KP9, '9', '9'),
        (KeyCode::KEY_KPMINUS, '-', '-'),
        (KeyCode::KEY_KPPLUS, '+', '+'),
        (KeyCode::KEY_KPDOT, '.', '.'),
        (KeyCode::KEY_KPASTERISK, '*', '*'),
        (KeyCode::KEY_KPSLASH, '/', '/'),
    ];
    punct
        .iter()
        .find(|(kc, _, _)| *kc == k)
        .map(|&(_, plain, shifted)| if shift { shifted } else { plain })
}

impl WedgeDecoder {
    /// A decoder with no shift held.
    pub fn new() -> Self {
        WedgeDecoder::default()
    }

    /// Feeds one key event (`value`: 1 press, 0 release, 2 autorepeat);
    /// returns a completed line on Enter. Lines longer than [`MAX_LINE`]
    /// are dropped whole.
    pub fn key(&mut self, code: u16, value: i32) -> Option<String> {
        let k = KeyCode::new(code);
        if k == KeyCode::KEY_LEFTSHIFT || k == KeyCode::KEY_RIGHTSHIFT {
            let bit = if k == KeyCode::KEY_LEFTSHIFT { 1 } else { 2 };
            if value == 0 {
                self.shift &= !bit;
            } else {
                self.shift |= bit;
            }
            return None;
        }
        if value != 1 {
            return None;
        }
        if k == KeyCode::KEY_ENTER || k == KeyCode::KEY_KPENTER {
            let line = std::mem::take(&mut self.line);
            let overflow = std::mem::take(&mut self.overflow);
            return (!overflow && !line.is_empty()).then_some(line);
        }
        if let Some(c) = key_char(code, self.shift != 0) {
            if self.line.len() >= MAX_LINE {
                self.overflow = true;
                self.line.clear();
            } else if !self.overflow {
                self.line.push(c);
            }
        }
        None
    }

    /// The key events (code, value) a wedge device sends to type `text`
    /// and Enter — for tests and simulators. Characters it cannot type are
    /// skipped.
    pub fn events_for(text: &str) -> Vec<(u16, i32)> {
        let shift = KeyCode::KEY_LEFTSHIFT.code();
        let mut out = Vec::new();
        for c in text.chars() {
            let found = (0u16..256).find_map(|code| {
                [false, true]
                    .into_iter()
                    .find(|&s| key_char(code, s) == Some(c))
                    .map(|s| (code, s))
            });
            if let Some((code, s)) = found {
                if s {
                    out.push((shift, 1));
                }
                out.push((code, 1));
                out.push((code, 0));
                if s {
                    out.push((shift, 0));
                }
            }
        }
        let enter = KeyCode::KEY_ENTER.code();
        out.push((enter, 1));
        out.push((enter, 0));
        out
    }
}
