//! Screenshot tests: each screen rendered by Slint's software renderer
//! with fixed data (support/screens.rs), in English (`NAME.png`) and in
//! Chinese (`NAME-zh.png`), compared with the reference PNGs in
//! docs/screens/ (which the README shows). After an intended change of
//! the UI, `TILL_UPDATE_SCREENS=1 cargo nextest run -p till-app --test
//! ui_screens` rewrites the references; look at them before committing.
//! A reference that no fixture makes any more is an error too.
//!
//! Also here: every string of the UI has its Chinese translation, and the
//! bundled font has a glyph for every character the UI can show.

mod support;

use std::path::{Path, PathBuf};

use slint::ComponentHandle;
use support::screens::{fixtures, show};
use till_app::ui::platform::{Frame, Headless};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Pixels that differ by more than a small step in some channel.
fn differing(a: &Frame, b: &Frame) -> usize {
    a.pixels
        .iter()
        .zip(&b.pixels)
        .filter(|(p, q)| p.r.abs_diff(q.r) > 24 || p.g.abs_diff(q.g) > 24 || p.b.abs_diff(q.b) > 24)
        .count()
}

#[test]
fn every_screen_matches_its_reference_picture() {
    let display = Headless::install(1280, 720, true).unwrap();
    let update = std::env::var_os("TILL_UPDATE_SCREENS").is_some();
    let refs = repo().join("docs/screens");
    let out = repo().join("target/screens-actual");
    std::fs::create_dir_all(&out).unwrap();
    let mut failures = Vec::new();
    let mut made = std::collections::BTreeSet::new();
    for (name, (w, h), setup) in fixtures() {
        for (lang, suffix) in [("en", ""), ("zh_CN", "-zh")] {
            // A fresh window per picture, sized for it.
            let frame = {
                let ui = show(&display, (w, h), lang, setup);
                let f = display.snapshot();
                ui.hide().unwrap();
                f
            };
            let file = format!("{name}{suffix}.png");
            made.insert(file.clone());
            if update {
                frame.save_png(&refs.join(&file)).unwrap();
                continue;
            }
            frame.save_png(&out.join(&file)).unwrap();
            match Frame::load_png(&refs.join(&file)) {
                Err(e) => failures.push(format!("{file}: {e}")),
                Ok(reference)
                    if (reference.width, reference.height) != (frame.width, frame.height) =>
                {
                    failures.push(format!(
                        "{file}: size {}x{} vs reference {}x{}",
                        frame.width, frame.height, reference.width, reference.height
                    ))
                }
                Ok(reference) => {
                    let n = differing(&reference, &frame);
                    // A few pixels of anti-aliasing may differ across CPUs; a
                    // changed text or layout changes thousands.
                    if n > 200 {
                        failures.push(format!(
                            "{file}: {n} pixels differ (see target/screens-actual/{file})"
                        ));
                    }
                }
            }
        }
    }
    for e in std::fs::read_dir(&refs).unwrap() {
        let file = e.unwrap().file_name().to_string_lossy().to_string();
        if file.ends_with(".png") && !made.contains(&file) {
            if update {
                std::fs::remove_file(refs.join(&file)).unwrap();
                continue;
            }
            failures.push(format!(
                "{file}: no screen makes this picture any more (remove it, or its fixture is missing)"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "screens differ from docs/screens:\n{}",
        failures.join("\n")
    );
}

/// Every string in the .slint files that follows `marker` (`@tr("` for
/// the translated ones, `"` for all of them).
fn slint_strings(marker: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![repo().join("app/ui")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "slint") {
                let text = std::fs::read_to_string(&p).unwrap();
                for part in text.split(marker).skip(1) {
                    let mut s = String::new();
                    let mut chars = part.chars();
                    while let Some(c) = chars.next() {
                        match c {
                            '\\' => s.push(chars.next().unwrap()),
                            '"' => break,
                            c => s.push(c),
                        }
                    }
                    out.push(s);
                }
            }
        }
    }
    out
}

fn tr_strings() -> Vec<String> {
    slint_strings("@tr(\"")
}

/// Every string literal of the .slint files (outside comments).
fn string_literals() -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![repo().join("app/ui")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "slint") {
                for line in std::fs::read_to_string(&p).unwrap().lines() {
                    let mut chars = line.chars().peekable();
                    let mut literal: Option<String> = None;
                    while let Some(c) = chars.next() {
                        match (&mut literal, c) {
                            (None, '/') if chars.peek() == Some(&'/') => break,
                            (None, '"') => literal = Some(String::new()),
                            (Some(_), '"') => out.extend(literal.take()),
                            (Some(l), '\\') => l.extend(chars.next()),
                            (Some(l), c) => l.push(c),
                            (None, _) => {}
                        }
                    }
                }
            }
        }
    }
    out
}

#[test]
fn every_ui_string_has_a_chinese_translation() {
    let po = support::po_entries();
    let missing: Vec<String> = tr_strings()
        .into_iter()
        .filter(|s| !po.iter().any(|(id, tr)| id == s && !tr.is_empty()))
        .collect();
    assert!(missing.is_empty(), "no zh_CN translation for: {missing:#?}");
    for (id, tr) in &po {
        assert_eq!(
            id.matches("{}").count(),
            tr.matches("{}").count(),
            "placeholders differ: {id:?} → {tr:?}"
        );
    }
}

#[test]
fn ui_text_has_glyphs() {
    use ab_glyph::Font;
    let bytes = std::fs::read(repo().join("app/ui/fonts/TillSans.ttf")).unwrap();
    let font = ab_glyph::FontRef::try_from_slice(&bytes).unwrap();
    let mut text: String = support::po_entries()
        .into_iter()
        .flat_map(|(a, b)| [a, b])
        .collect();
    text.extend(tr_strings());
    // Text the screens show as it is (both languages at once where no
    // settings can be read: screens/unavailable.slint).
    text.extend(string_literals());
    text.push_str("0123456789.,:;-+*/()[]@#%&¥€£●✓×←–—…·简体中文English");
    // Wallet names the engine gives in Chinese (`till_pay::qr::Wallet::name_zh`).
    text.push_str("微信支付支付宝云闪付");
    let mut missing: Vec<char> = text
        .chars()
        .filter(|c| !c.is_whitespace() && font.glyph_id(*c).0 == 0)
        .collect();
    missing.sort();
    missing.dedup();
    assert!(
        missing.is_empty(),
        "TillSans.ttf has no glyph for {missing:?}: run scripts/make-ui-font"
    );
}
