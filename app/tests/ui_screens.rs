//! Screenshot tests: each screen rendered by Slint's software renderer
//! with fixed data, compared with the reference PNGs in docs/screens/
//! (which the README shows). After an intended change of the UI,
//! `TILL_UPDATE_SCREENS=1 cargo nextest run -p till-app --test ui_screens`
//! rewrites the references; look at them before committing.
//!
//! Also here: every string of the UI has its Chinese translation, and the
//! bundled font has a glyph for every character the UI can show.

mod support;

use std::path::{Path, PathBuf};

use slint::{ComponentHandle, ModelRc, VecModel};
use till_app::ui::platform::{Frame, Headless};
use till_app::ui::{Device, NoticeKind, Operator, Role, Screen, Till, TillWindow, TxnRow, TxnType};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn base(t: &Till<'_>) {
    t.set_version("0.1.0".into());
    t.set_merchant("Till Demo Shop 演示商店".into());
    t.set_terminal_id("TILL0001".into());
    t.set_operator("li".into());
    t.set_role(Role::Cashier);
    t.set_clock("2026-11-21 14:05".into());
    t.set_signed_in(true);
    t.set_batch("000001".into());
    t.set_currency("CNY".into());
    t.set_host("127.0.0.1:7000".into());
    t.set_merchant_id("123456789012345".into());
    t.set_offline(false);
    t.set_queue_depth(0);
    t.set_simulator(false);
    t.set_operators(ModelRc::new(VecModel::from(vec![
        Operator {
            name: "admin".into(),
            role: Role::Administrator,
            locked: false,
        },
        Operator {
            name: "zhang".into(),
            role: Role::Supervisor,
            locked: false,
        },
        Operator {
            name: "li".into(),
            role: Role::Cashier,
            locked: true,
        },
    ])));
    t.set_history(ModelRc::new(VecModel::from(vec![
        TxnRow {
            id: 2,
            when: "2026-11-21 14:01".into(),
            r#type: TxnType::Sale,
            amount: "CNY 88.00".into(),
            card: "622208******0010".into(),
            rrn: "000000000012".into(),
            status_en: "approved".into(),
            status_zh: "成功".into(),
            usable: true,
        },
        TxnRow {
            id: 1,
            when: "2026-11-21 13:40".into(),
            r#type: TxnType::Refund,
            amount: "CNY 5.50".into(),
            card: "622208******0010".into(),
            rrn: "000000000011".into(),
            status_en: "approved".into(),
            status_zh: "成功".into(),
            usable: false,
        },
    ])));
}

type Fixture = (&'static str, &'static str, (u32, u32), fn(&Till<'_>));

fn fixtures() -> Vec<Fixture> {
    vec![
        ("boot", "en", (800, 480), |t| {
            t.set_operator("".into());
            t.set_screen(Screen::Boot);
            t.set_boot_done(true);
            t.set_boot_ok(false);
            t.set_devices(ModelRc::new(VecModel::from(vec![
                Device {
                    name: "reader".into(),
                    ok: true,
                    detail: "MFRC522 v2.0".into(),
                },
                Device {
                    name: "keypad".into(),
                    ok: true,
                    detail: "4x4 on gpiochip0".into(),
                },
                Device {
                    name: "printer".into(),
                    ok: false,
                    detail: "paper out".into(),
                },
                Device {
                    name: "journal".into(),
                    ok: true,
                    detail: "/var/lib/till".into(),
                },
            ])));
        }),
        ("login", "en", (800, 480), |t| {
            t.set_operator("".into());
            t.set_screen(Screen::Login);
            t.set_login_tries_left(3);
        }),
        ("signin", "en", (800, 480), |t| {
            t.set_screen(Screen::Signin);
            t.set_busy(true);
            t.set_progress(0.3);
            t.set_waited_seconds(2);
        }),
        ("home", "en", (800, 480), |t| {
            t.set_role(Role::Administrator);
            t.set_operator("admin".into());
            t.set_screen(Screen::Home);
        }),
        ("home-offline", "zh_CN", (800, 480), |t| {
            t.set_role(Role::Administrator);
            t.set_operator("admin".into());
            t.set_offline(true);
            t.set_queue_depth(3);
            t.set_screen(Screen::Home);
        }),
        ("home-1280", "en", (1280, 720), |t| {
            t.set_screen(Screen::Home)
        }),
        ("amount", "en", (800, 480), |t| {
            t.set_txn(TxnType::Sale);
            t.set_amount_entry("88.00".into());
            t.set_screen(Screen::Amount);
        }),
        ("amount-1280", "zh_CN", (1280, 720), |t| {
            t.set_txn(TxnType::Sale);
            t.set_amount_entry("1234.5".into());
            t.set_screen(Screen::Amount);
        }),
        ("method", "en", (800, 480), |t| {
            t.set_txn(TxnType::Sale);
            t.set_amount("CNY 88.00".into());
            t.set_screen(Screen::Method);
        }),
        ("tap", "en", (800, 480), |t| {
            t.set_txn(TxnType::Sale);
            t.set_amount("CNY 88.00".into());
            t.set_tap_seconds_left(27);
            t.set_simulator(true);
            t.set_sim_cards(ModelRc::new(VecModel::from(vec![
                "cup-ok".into(),
                "visa-ok".into(),
                "dirty card".into(),
            ])));
            t.set_screen(Screen::Tap);
        }),
        ("scan", "en", (800, 480), |t| {
            t.set_txn(TxnType::Sale);
            t.set_amount("CNY 25.00".into());
            t.set_tap_seconds_left(27);
            t.set_simulator(true);
            t.set_sim_codes(ModelRc::new(VecModel::from(vec![
                "WeChat Pay".into(),
                "Alipay".into(),
                "QuickPass".into(),
                "used code".into(),
            ])));
            t.set_screen(Screen::Scan);
        }),
        ("scan-zh", "zh_CN", (800, 480), |t| {
            t.set_txn(TxnType::Sale);
            t.set_amount("CNY 25.00".into());
            t.set_tap_seconds_left(12);
            t.set_scan_problem("swipe".into());
            t.set_screen(Screen::Scan);
        }),
        ("pin", "en", (800, 480), |t| {
            t.set_txn(TxnType::Sale);
            t.set_amount("CNY 88.00".into());
            t.set_card("622208******0010".into());
            t.set_card_label("UnionPay".into());
            t.set_pin_length(4);
            t.set_screen(Screen::Pin);
        }),
        ("pin-zh", "zh_CN", (800, 480), |t| {
            t.set_txn(TxnType::Sale);
            t.set_amount("CNY 88.00".into());
            t.set_card("622208******0010".into());
            t.set_pin_length(6);
            t.set_screen(Screen::Pin);
        }),
        ("confirm-twice", "en", (800, 480), |t| {
            t.set_txn(TxnType::Sale);
            t.set_amount("CNY 1500.00".into());
            t.set_card("622208******0010".into());
            t.set_second_confirmation(true);
            t.set_screen(Screen::Confirm);
        }),
        ("processing", "en", (800, 480), |t| {
            t.set_txn(TxnType::Sale);
            t.set_amount("CNY 88.00".into());
            t.set_busy(true);
            t.set_progress(0.1);
            t.set_progress_step("host".into());
            t.set_waited_seconds(3);
            t.set_screen(Screen::Processing);
        }),
        ("result-approved", "en", (800, 480), |t| {
            t.set_txn(TxnType::Sale);
            t.set_amount("CNY 88.00".into());
            t.set_card("622208******0010".into());
            t.set_approved(true);
            t.set_reason_en("Approved.".into());
            t.set_reason_zh("交易成功。".into());
            t.set_rrn("000000000012".into());
            t.set_auth_code("A1B2C3".into());
            t.set_printed(true);
            t.set_screen(Screen::Result);
        }),
        ("result-declined-zh", "zh_CN", (800, 480), |t| {
            t.set_txn(TxnType::Sale);
            t.set_amount("CNY 80.00".into());
            t.set_card("622208******0028".into());
            t.set_approved(false);
            t.set_reason_en("Declined: insufficient funds.".into());
            t.set_reason_zh("余额不足。".into());
            t.set_action_en("Ask the customer for another card or a smaller amount".into());
            t.set_action_zh("请顾客换一张卡或减少金额".into());
            t.set_rrn("000000000013".into());
            t.set_merchant_copy_done(true);
            t.set_screen(Screen::Result);
        }),
        ("result-paper-out", "en", (800, 480), |t| {
            t.set_txn(TxnType::Sale);
            t.set_amount("CNY 9.00".into());
            t.set_approved(true);
            t.set_reason_en("Approved.".into());
            t.set_print_failed(true);
            t.set_print_problem("paper-out".into());
            t.set_screen(Screen::Result);
        }),
        ("pick", "en", (800, 480), |t| {
            t.set_txn(TxnType::Void);
            t.set_screen(Screen::Pick);
        }),
        ("supervisor", "en", (800, 480), |t| {
            t.set_txn(TxnType::Refund);
            t.set_screen(Screen::Supervisor);
        }),
        ("history", "zh_CN", (800, 480), |t| {
            t.set_screen(Screen::History)
        }),
        ("settle", "en", (800, 480), |t| {
            t.set_role(Role::Administrator);
            t.set_debit_count(2);
            t.set_debit_amount("CNY 93.50".into());
            t.set_credit_count(1);
            t.set_credit_amount("CNY 5.50".into());
            t.set_settled(true);
            t.set_balanced(true);
            t.set_settled_batch("000001".into());
            t.set_batch("000002".into());
            t.set_screen(Screen::Settle);
        }),
        ("settings", "en", (800, 480), |t| {
            t.set_role(Role::Administrator);
            t.set_limit_transaction("50000.00".into());
            t.set_limit_confirm("1000.00".into());
            t.set_screen(Screen::Settings);
        }),
        ("operators", "en", (800, 480), |t| {
            t.set_role(Role::Administrator);
            t.set_screen(Screen::Operators);
        }),
        ("new-password-zh", "zh_CN", (800, 480), |t| {
            t.set_operator("wang".into());
            t.set_password_message("mismatch".into());
            t.set_screen(Screen::NewPassword);
        }),
        ("status", "en", (800, 480), |t| {
            t.set_devices(ModelRc::new(VecModel::from(vec![
                Device {
                    name: "reader".into(),
                    ok: true,
                    detail: "simulated reader with virtual cards".into(),
                },
                Device {
                    name: "printer".into(),
                    ok: true,
                    detail: "simulated printer".into(),
                },
            ])));
            t.set_queue_depth(2);
            t.set_screen(Screen::Status);
        }),
        ("notice-card", "en", (800, 480), |t| {
            t.set_notice(NoticeKind::CardUnreadable);
            t.set_screen(Screen::Notice);
        }),
        ("notice-limit-zh", "zh_CN", (800, 480), |t| {
            t.set_notice(NoticeKind::OverTransactionLimit);
            t.set_notice_arg("60000.00".into());
            t.set_notice_arg2("50000.00".into());
            t.set_screen(Screen::Notice);
        }),
    ]
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
    for (name, lang, (w, h), setup) in fixtures() {
        // A fresh window per picture, sized for it.
        let frame = {
            let ui = TillWindow::new().unwrap();
            display.resize(w, h);
            ui.show().unwrap();
            slint::select_bundled_translation(lang).unwrap();
            let t = ui.global::<Till>();
            base(&t);
            t.set_lang(lang.into());
            setup(&t);
            let f = display.snapshot();
            ui.hide().unwrap();
            f
        };
        let file = format!("{name}.png");
        if update {
            frame.save_png(&refs.join(&file)).unwrap();
            continue;
        }
        frame.save_png(&out.join(&file)).unwrap();
        match Frame::load_png(&refs.join(&file)) {
            Err(e) => failures.push(format!("{name}: {e}")),
            Ok(reference) if (reference.width, reference.height) != (frame.width, frame.height) => {
                failures.push(format!(
                    "{name}: size {}x{} vs reference {}x{}",
                    frame.width, frame.height, reference.width, reference.height
                ))
            }
            Ok(reference) => {
                let n = differing(&reference, &frame);
                // A few pixels of anti-aliasing may differ across CPUs; a
                // changed text or layout changes thousands.
                if n > 200 {
                    failures.push(format!(
                        "{name}: {n} pixels differ (see target/screens-actual/{file})"
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "screens differ from docs/screens:\n{}",
        failures.join("\n")
    );
}

fn tr_strings() -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![repo().join("app/ui")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "slint") {
                let text = std::fs::read_to_string(&p).unwrap();
                for part in text.split("@tr(\"").skip(1) {
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
