//! Nothing clipped: every text on every screen (support/screens.rs) fits
//! the box it is given, in English and in Chinese, at 800×480 and at
//! 1280×720 — a label cut off at the edge of a button or of the display is
//! a failure that names the screen, the language, the size and the text.
//!
//! A text fits when its box is at least as wide as its longest word (the
//! whole line, if it may not wrap) and as high as its lines need at that
//! width, and when the box lies inside its parent and inside the window.
//! Slint measures: the check asks each text element for its layout
//! information with the same renderer and font the terminal draws with.
//! Texts that elide (a long merchant name, a host in a field, the detail
//! line of a transaction) are data, shortened with "…" on purpose.

mod support;

use std::rc::Rc;

use i_slint_core::item_rendering::RenderText;
use i_slint_core::item_tree::ItemRc;
use i_slint_core::items::{ComplexText, SimpleText, TextOverflow, TextWrap};
use i_slint_core::layout::Orientation;
use i_slint_core::window::{WindowAdapter, WindowInner};
use slint::ComponentHandle;
use support::screens::{base, fixtures, show};
use till_app::ui::platform::Headless;
use till_app::ui::{Till, TillWindow};

/// Rounding slack: layouts place boxes on whole pixels.
const SLACK: f32 = 0.5;

/// A text element's string, wrap and overflow.
fn text_of(item: &ItemRc) -> Option<(String, TextWrap, TextOverflow)> {
    fn read<T: RenderText>(t: std::pin::Pin<&T>) -> (String, TextWrap, TextOverflow) {
        let text = match t.text() {
            i_slint_core::item_rendering::PlainOrStyledText::Plain(s) => s.to_string(),
            _ => "(styled text)".into(),
        };
        (text, t.wrap(), t.overflow())
    }
    if let Some(t) = item.downcast::<ComplexText>() {
        return Some(read(t.as_pin_ref()));
    }
    item.downcast::<SimpleText>().map(|t| read(t.as_pin_ref()))
}

/// Every problem of the window's texts, as lines for a failure message.
fn misfits(ui: &TillWindow, w: f32, h: f32) -> Vec<String> {
    let inner = WindowInner::from_pub(ui.window());
    let adapter: Rc<dyn WindowAdapter> = inner.window_adapter();
    let mut out = Vec::new();
    let mut stack = vec![ItemRc::new_root(inner.component())];
    while let Some(item) = stack.pop() {
        let mut child = item.first_child();
        while let Some(c) = child {
            child = c.next_sibling();
            stack.push(c);
        }
        let Some((text, wrap, overflow)) = text_of(&item) else {
            continue;
        };
        let g = item.geometry();
        if text.trim().is_empty() || g.size.width <= 0.0 || !item.is_visible() {
            continue;
        }
        let (bw, bh) = (g.size.width, g.size.height);
        let horizontal =
            item.borrow()
                .as_ref()
                .layout_info(Orientation::Horizontal, -1.0, &adapter, &item);
        let vertical =
            item.borrow()
                .as_ref()
                .layout_info(Orientation::Vertical, bw, &adapter, &item);
        let mut problems = Vec::new();
        if overflow != TextOverflow::Elide {
            if horizontal.min > bw + SLACK {
                problems.push(format!(
                    "needs {:.0} px of width{}, has {bw:.0}",
                    horizontal.min,
                    if wrap == TextWrap::NoWrap {
                        ""
                    } else {
                        " for its longest word"
                    }
                ));
            }
            if vertical.preferred > bh + SLACK {
                problems.push(format!(
                    "needs {:.0} px of height, has {bh:.0}",
                    vertical.preferred
                ));
            }
        }
        if let Some(parent) =
            item.parent_item(i_slint_core::item_tree::ParentItemTraversalMode::StopAtPopups)
        {
            let p = parent.geometry();
            if g.origin.x < -SLACK
                || g.origin.y < -SLACK
                || g.origin.x + bw > p.size.width + SLACK
                || g.origin.y + bh > p.size.height + SLACK
            {
                problems.push(format!(
                    "sticks out of its {:.0}×{:.0} parent (at {:.0},{:.0}, {bw:.0}×{bh:.0})",
                    p.size.width, p.size.height, g.origin.x, g.origin.y
                ));
            }
        }
        let at = item.map_to_window(g.origin);
        if at.x < -SLACK || at.y < -SLACK || at.x + bw > w + SLACK || at.y + bh > h + SLACK {
            problems.push(format!(
                "goes past the window's edge (at {:.0},{:.0}, {bw:.0}×{bh:.0})",
                at.x, at.y
            ));
        }
        if !problems.is_empty() {
            out.push(format!("{text:?}: {}", problems.join("; ")));
        }
    }
    out
}

#[test]
fn every_text_fits_its_box_in_both_languages_at_both_sizes() {
    let display = Headless::install(1280, 720, true).unwrap();
    let mut failures = Vec::new();
    let mut checked = 0;
    for (name, _, setup) in fixtures() {
        for (w, h) in [(800, 480), (1280, 720)] {
            for lang in ["en", "zh_CN"] {
                let ui = show(&display, (w, h), lang, setup);
                // Lay out (and draw) as the display would.
                display.snapshot();
                for m in misfits(&ui, w as f32, h as f32) {
                    failures.push(format!("{name} {lang} {w}×{h}: {m}"));
                }
                checked += 1;
                ui.hide().unwrap();
            }
        }
    }
    assert!(checked >= 4 * 30, "only {checked} screens checked");
    assert!(
        failures.is_empty(),
        "{} texts do not fit:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The check finds a label that does not fit: the same window with a
/// button's text made far too long for it.
#[test]
fn a_label_too_long_for_its_button_is_found() {
    let display = Headless::install(800, 480, true).unwrap();
    let ui = TillWindow::new().unwrap();
    ui.show().unwrap();
    let t = ui.global::<Till>();
    base(&t);
    t.set_operator("".into());
    t.set_screen(till_app::ui::Screen::Login);
    t.set_login_name("li".into());
    display.snapshot();
    assert_eq!(misfits(&ui, 800.0, 480.0), Vec::<String>::new());
    // An operator name as long as a sentence, on a button of a third of the screen.
    let ops = t.get_operators();
    let long = "Zhang-Wei-the-supervisor-of-the-evening-shift-at-the-till".to_string();
    let mut rows: Vec<till_app::ui::Operator> = (0..slint::Model::row_count(&ops))
        .filter_map(|i| slint::Model::row_data(&ops, i))
        .collect();
    rows[0].name = long.clone().into();
    t.set_operators(slint::ModelRc::new(slint::VecModel::from(rows)));
    display.snapshot();
    let found = misfits(&ui, 800.0, 480.0);
    assert!(
        found.iter().any(|m| m.contains(&long)),
        "not found: {found:?}"
    );
}
