//! The screens with fixed data, for the screenshot tests (ui_screens.rs)
//! and the check that every text fits its box (ui_fit.rs).

use slint::{ComponentHandle, ModelRc, VecModel};
use till_app::ui::{
    Device, Field, Form, Keys, NoticeKind, Operator, Role, Screen, Till, TillWindow, TxnRow,
    TxnType,
};

/// What every picture shares: the terminal, the operator, the data lists.
pub fn base(t: &Till<'_>) {
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

/// A screen with fixed data: its name, the display size it is pictured at,
/// and what it shows.
pub type Fixture = (&'static str, (u32, u32), fn(&TillWindow));

/// The settings screen's fields as a terminal's settings fill them.
fn settings_form(w: &TillWindow) {
    let f = w.global::<Form>();
    f.set_merchant("Till Demo Shop 演示商店".into());
    f.set_merchant_id("123456789012345".into());
    f.set_host("127.0.0.1:7000".into());
    f.set_limit_transaction("50000.00".into());
    f.set_limit_confirm("1000.00".into());
}

/// The on-screen keys open on `field` of the screen shown, holding `shown`.
fn keys_open(t: &Till<'_>, field: Field, keys: Keys, shown: &str) {
    t.set_edit_screen(t.get_screen());
    t.set_edit_keys(keys);
    t.set_edit_text(shown.into());
    t.set_editing(field);
}

/// The administrator's settings screen with the keys open on `field`.
fn settings_with_keys(w: &TillWindow, field: Field, keys: Keys, shown: &str) {
    let t = &w.global::<Till>();
    t.set_role(Role::Administrator);
    settings_form(w);
    t.set_screen(Screen::Settings);
    keys_open(t, field, keys, shown);
}

/// A fresh window on `display` at `size`, in `lang`, showing a fixture.
pub fn show(
    display: &till_app::ui::platform::Headless,
    (w, h): (u32, u32),
    lang: &str,
    setup: fn(&TillWindow),
) -> TillWindow {
    let ui = TillWindow::new().unwrap();
    display.resize(w, h);
    ui.show().unwrap();
    slint::select_bundled_translation(lang).unwrap();
    let t = ui.global::<Till>();
    base(&t);
    t.set_lang(lang.into());
    setup(&ui);
    ui
}

/// Every screen, in a state that shows what it can show.
pub fn fixtures() -> Vec<Fixture> {
    vec![
        ("boot", (800, 480), |w| {
            let t = &w.global::<Till>();
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
        ("login", (800, 480), |w| {
            let t = &w.global::<Till>();
            t.set_operator("".into());
            t.set_screen(Screen::Login);
            t.set_login_tries_left(3);
        }),
        ("signin", (800, 480), |w| {
            let t = &w.global::<Till>();
            t.set_screen(Screen::Signin);
            t.set_busy(true);
            t.set_progress(0.3);
            t.set_waited_seconds(2);
        }),
        ("home", (800, 480), |w| {
            let t = &w.global::<Till>();
            t.set_role(Role::Administrator);
            t.set_operator("admin".into());
            t.set_screen(Screen::Home);
        }),
        ("home-offline", (800, 480), |w| {
            let t = &w.global::<Till>();
            t.set_role(Role::Administrator);
            t.set_operator("admin".into());
            t.set_offline(true);
            t.set_queue_depth(3);
            t.set_screen(Screen::Home);
        }),
        ("home-1280", (1280, 720), |w| {
            let t = &w.global::<Till>();
            t.set_screen(Screen::Home)
        }),
        ("amount", (800, 480), |w| {
            let t = &w.global::<Till>();
            t.set_txn(TxnType::Sale);
            t.set_amount_entry("88.00".into());
            t.set_screen(Screen::Amount);
        }),
        ("amount-1280", (1280, 720), |w| {
            let t = &w.global::<Till>();
            t.set_txn(TxnType::Sale);
            t.set_amount_entry("1234.5".into());
            t.set_screen(Screen::Amount);
        }),
        ("method", (800, 480), |w| {
            let t = &w.global::<Till>();
            t.set_txn(TxnType::Sale);
            t.set_amount("CNY 88.00".into());
            t.set_screen(Screen::Method);
        }),
        ("tap", (800, 480), |w| {
            let t = &w.global::<Till>();
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
        ("scan", (800, 480), |w| {
            let t = &w.global::<Till>();
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
        ("scan-swipe", (800, 480), |w| {
            let t = &w.global::<Till>();
            t.set_txn(TxnType::Sale);
            t.set_amount("CNY 25.00".into());
            t.set_tap_seconds_left(12);
            t.set_scan_problem("swipe".into());
            t.set_screen(Screen::Scan);
        }),
        ("pin", (800, 480), |w| {
            let t = &w.global::<Till>();
            t.set_txn(TxnType::Sale);
            t.set_amount("CNY 88.00".into());
            t.set_card("622208******0010".into());
            t.set_card_label("UnionPay".into());
            t.set_pin_length(4);
            t.set_screen(Screen::Pin);
        }),
        ("pin-long", (800, 480), |w| {
            let t = &w.global::<Till>();
            t.set_txn(TxnType::Sale);
            t.set_amount("CNY 88.00".into());
            t.set_card("622208******0010".into());
            t.set_pin_length(6);
            t.set_screen(Screen::Pin);
        }),
        ("confirm-twice", (800, 480), |w| {
            let t = &w.global::<Till>();
            t.set_txn(TxnType::Sale);
            t.set_amount("CNY 1500.00".into());
            t.set_card("622208******0010".into());
            t.set_second_confirmation(true);
            t.set_screen(Screen::Confirm);
        }),
        ("processing", (800, 480), |w| {
            let t = &w.global::<Till>();
            t.set_txn(TxnType::Sale);
            t.set_amount("CNY 88.00".into());
            t.set_busy(true);
            t.set_progress(0.1);
            t.set_progress_step("host".into());
            t.set_waited_seconds(3);
            t.set_screen(Screen::Processing);
        }),
        ("result-approved", (800, 480), |w| {
            let t = &w.global::<Till>();
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
        ("result-declined", (800, 480), |w| {
            let t = &w.global::<Till>();
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
        ("result-paper-out", (800, 480), |w| {
            let t = &w.global::<Till>();
            t.set_txn(TxnType::Sale);
            t.set_amount("CNY 9.00".into());
            t.set_approved(true);
            t.set_reason_en("Approved.".into());
            t.set_print_failed(true);
            t.set_print_problem("paper-out".into());
            t.set_screen(Screen::Result);
        }),
        ("pick", (800, 480), |w| {
            let t = &w.global::<Till>();
            t.set_txn(TxnType::Void);
            t.set_screen(Screen::Pick);
        }),
        ("supervisor", (800, 480), |w| {
            let t = &w.global::<Till>();
            t.set_txn(TxnType::Refund);
            t.set_screen(Screen::Supervisor);
        }),
        ("history", (800, 480), |w| {
            let t = &w.global::<Till>();
            t.set_screen(Screen::History)
        }),
        ("settle", (800, 480), |w| {
            let t = &w.global::<Till>();
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
        ("settings", (800, 480), |w| {
            let t = &w.global::<Till>();
            t.set_role(Role::Administrator);
            settings_form(w);
            t.set_settings_message("bad-host".into());
            t.set_screen(Screen::Settings);
        }),
        ("operators", (800, 480), |w| {
            let t = &w.global::<Till>();
            t.set_role(Role::Administrator);
            let f = w.global::<Form>();
            f.set_operator_name("wang".into());
            f.set_operator_password("●●●●●●●●".into());
            f.set_operator_role(Role::Supervisor);
            t.set_operators_message("name-taken".into());
            t.set_screen(Screen::Operators);
        }),
        ("new-password", (800, 480), |w| {
            let t = &w.global::<Till>();
            t.set_operator("wang".into());
            w.global::<Form>().set_new_password("●●●●●●●".into());
            t.set_password_message("mismatch".into());
            t.set_screen(Screen::NewPassword);
        }),
        ("status", (800, 480), |w| {
            let t = &w.global::<Till>();
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
        ("notice-card", (800, 480), |w| {
            let t = &w.global::<Till>();
            t.set_notice(NoticeKind::CardUnreadable);
            t.set_screen(Screen::Notice);
        }),
        ("notice-limit", (800, 480), |w| {
            let t = &w.global::<Till>();
            t.set_notice(NoticeKind::OverTransactionLimit);
            t.set_notice_arg("60000.00".into());
            t.set_notice_arg2("50000.00".into());
            t.set_screen(Screen::Notice);
        }),
        // The on-screen keys: a password on the number pad at login...
        ("keys-password", (800, 480), |w| {
            let t = &w.global::<Till>();
            t.set_operator("".into());
            t.set_login_name("li".into());
            t.set_screen(Screen::Login);
            keys_open(t, Field::LoginPassword, Keys::Password, "●●●●");
        }),
        // ...an amount on the number pad...
        ("keys-amount", (800, 480), |w| {
            settings_with_keys(w, Field::LimitDaily, Keys::Amount, "500.00")
        }),
        // ...and a host name on the keyboard, long enough to wrap.
        ("keys-text", (800, 480), |w| {
            settings_with_keys(
                w,
                Field::Host,
                Keys::Text,
                "acquirer-gateway.payments.example.com:7000",
            )
        }),
        ("keys-merchant", (800, 480), |w| {
            settings_with_keys(w, Field::Merchant, Keys::Text, "Till Demo Shop 演示商店")
        }),
        // A terminal that cannot start yet.
        ("unavailable", (800, 480), |w| {
            let t = &w.global::<Till>();
            t.set_operator("".into());
            t.set_merchant("".into());
            t.set_signed_in(false);
            t.set_unavailable("not-provisioned".into());
            t.set_unavailable_detail(
                "Missing: /var/lib/till/pki/ca.crt, /var/lib/till/pki/terminal.crt".into(),
            );
            t.set_screen(Screen::Unavailable);
        }),
        ("unavailable-data", (800, 480), |w| {
            let t = &w.global::<Till>();
            t.set_operator("".into());
            t.set_merchant("".into());
            t.set_signed_in(false);
            t.set_unavailable("data".into());
            t.set_unavailable_detail(
                "damaged: e2fsck found errors it may not repair alone (exit 4; nothing was changed)"
                    .into(),
            );
            t.set_screen(Screen::Unavailable);
        }),
    ]
}
