//! Flow tests: every flow of the touchscreen driven through the real
//! screens against the bundled acquirer (the card file's virtual cards and
//! balances), with the trouble screens, cancel and timeouts. Each flow in
//! `flows!` runs twice, as `name::en` and `name::zh` (the language switched
//! at run time); text on screen is compared in the flow's language through
//! the catalogue the app uses. Run with cargo nextest (a process per test).

mod support;

use std::time::Duration;

use slint::Model;
use support::{start, ui};
use till_app::ui::{Field, NoticeKind, Screen, Till};
use till_hal::keypad::Key;

flows! {
    fn a_cashier_sells_with_pin_and_both_copies_print_with_the_card_masked(t) {
        t.login("li", "111111");
        assert!(t.till(|t| t.get_signed_in()));
        t.sale_to_pin("88.00", "cup-ok");
        assert!(
            t.text(|t| t.get_card()).contains("****"),
            "card shown masked"
        );
        t.pin_and_confirm("123456");
        t.assert_approved();
        assert_eq!(t.text(|t| t.get_amount()), "CNY 88.00");
        let rrn = t.text(|t| t.get_rrn());
        assert_eq!(rrn.len(), 12, "reference number shown");
        assert!(t.till(|t| t.get_printed()));
        t.click("ResultScreen::merchant-copy");
        t.wait("the merchant copy", |d| !d.till(|t| t.get_printing()));
        let receipts = t.receipts();
        assert_eq!(receipts.len(), 2, "customer and merchant copies");
        for r in &receipts {
            assert!(
                r.contains(&rrn) && r.contains("CNY88.00") && r.contains("TILL0001"),
                "{r}"
            );
            assert!(
                !r.contains("6222088800000000010"),
                "full card number printed: {r}"
            );
            assert!(r.contains("6222"), "{r}");
        }
        assert!(
            receipts[1].contains("持卡人签名"),
            "merchant copy: {}",
            receipts[1]
        );
        t.click("ResultScreen::done");
        t.wait_screen(Screen::Home);
        assert_eq!(t.till(|t| t.get_queue_depth()), 0);
    }

    fn a_wrong_pin_is_declined_in_plain_words_and_the_customer_enters_it_again(t) {
        t.login("li", "111111");
        t.sale_to_pin("10.00", "cup-ok");
        t.pin_and_confirm("999999");
        assert!(!t.till(|t| t.get_approved()));
        let reason = t.text(|t| t.get_reason_en()).to_lowercase();
        assert!(reason.contains("pin"), "{reason}");
        assert!(t.says("Declined"));
        assert!(t.receipts().is_empty(), "no receipt for a decline");
        // Re-entry: the same sale, a fresh tap (the card's cryptogram is
        // spent), the PIN again; the amount stays confirmed.
        t.click("ResultScreen::retry-pin");
        t.wait_screen(Screen::Tap);
        assert!(t.says("The PIN was wrong. Tap the same card again; then the customer enters the PIN again."));
        assert_eq!(t.text(|t| t.get_amount()), "CNY 10.00");
        t.click_label("card:cup-ok");
        t.wait_screen(Screen::Pin);
        assert!(t.says("The PIN was wrong. Please enter it again."));
        assert_eq!(t.till(|t| t.get_pin_length()), 0, "nothing of the old PIN kept");
        t.type_text("123456");
        t.enter();
        t.wait_screen(Screen::Result);
        t.wait("the receipt", |d| !d.till(|t| t.get_printing()));
        t.assert_approved();
        assert_eq!(t.text(|t| t.get_amount()), "CNY 10.00");
        assert!(!t.till(|t| t.get_pin_retry()));
        assert_eq!(t.receipts().len(), 1, "one sale, one customer copy");
        t.click("ResultScreen::done");
        t.wait_screen(Screen::Home);
        // Only the approved sale counts in the batch.
        t.wait("the batch totals", |d| d.till(|t| t.get_debit_count()) == 1);
        assert_eq!(t.text(|t| t.get_debit_amount()), "CNY 10.00");
    }

    fn too_many_wrong_pins_are_refused_by_the_host_and_not_offered_again(t) {
        t.login("li", "111111");
        t.sale_to_pin("10.00", "cup-ok");
        t.pin_and_confirm("999999");
        for _ in 0..2 {
            assert!(t.till(|t| t.get_pin_retry()));
            t.click("ResultScreen::retry-pin");
            t.tap_and_pin("cup-ok", "999999");
        }
        assert!(!t.till(|t| t.get_approved()));
        assert!(!t.till(|t| t.get_pin_retry()), "no fourth try");
        let reason = t.text(|t| t.get_reason_en()).to_lowercase();
        assert!(reason.contains("too many"), "{reason}");
        assert!(!t.says("Enter PIN again"));
        t.click("ResultScreen::done");
        t.wait_screen(Screen::Home);
    }

    fn too_little_money_is_declined_as_insufficient_funds(t) {
        t.login("li", "111111");
        t.sale_to_pin("80.00", "cup-low");
        t.pin_and_confirm("123456");
        assert!(!t.till(|t| t.get_approved()));
        let reason = t.text(|t| t.get_reason_en()).to_lowercase();
        assert!(
            reason.contains("insufficient") || reason.contains("funds"),
            "{reason}"
        );
    }

    fn a_lost_card_is_declined(t) {
        t.login("li", "111111");
        t.sale_to_pin("10.00", "cup-lost");
        t.pin_and_confirm("123456");
        assert!(!t.till(|t| t.get_approved()));
        assert!(
            t.text(|t| t.get_reason_en())
                .to_lowercase()
                .contains("lost")
        );
    }

    fn a_card_without_pin_goes_through_with_ok(t) {
        t.login("li", "111111");
        t.sale_to_pin("10.00", "cup-nopin");
        t.wait_screen(Screen::Pin);
        t.enter();
        t.wait_screen(Screen::Confirm);
        t.click("ConfirmScreen::confirm");
        t.wait_screen(Screen::Result);
        t.assert_approved();
    }

    fn a_short_pin_is_refused_on_the_keypad_and_only_dots_are_shown(t) {
        t.login("li", "111111");
        t.sale_to_pin("10.00", "cup-ok");
        t.type_text("12");
        t.enter();
        assert_eq!(t.screen(), Screen::Pin);
        assert!(t.till(|t| t.get_pin_too_short()));
        assert!(!t.shows("12"), "PIN digits never on screen");
        t.type_text("\u{8}");
        assert_eq!(t.till(|t| t.get_pin_length()), 1);
    }

    fn large_amounts_are_confirmed_twice(t) {
        t.login("li", "111111");
        t.sale_to_pin("1500.00", "cup-ok");
        t.wait_screen(Screen::Pin);
        t.type_text("123456");
        t.enter();
        t.wait_screen(Screen::Confirm);
        assert!(!t.till(|t| t.get_second_confirmation()));
        t.click("ConfirmScreen::confirm");
        assert_eq!(t.screen(), Screen::Confirm);
        assert!(t.till(|t| t.get_second_confirmation()));
        assert!(t.says(
            "This is a large amount. Check it with the customer and confirm it a second time."
        ));
        t.click("ConfirmScreen::confirm");
        t.wait_screen(Screen::Result);
        t.assert_approved();
    }

    fn an_amount_over_the_limit_gets_a_screen_saying_what_to_do(t) {
        t.login("li", "111111");
        t.sale_to_pin("60000.00", "cup-ok");
        t.pin_and_confirm_over_limit();
    }

    fn no_card_within_the_wait_times_out_and_nothing_is_charged(t) {
        t.login("li", "111111");
        t.sale_to_method("5.00");
        t.click("MethodScreen::card");
        t.wait_screen(Screen::Tap);
        assert_eq!(t.till(|t| t.get_tap_seconds_left()), 30);
        t.advance(Duration::from_secs(10));
        assert_eq!(t.till(|t| t.get_tap_seconds_left()), 20);
        t.advance(Duration::from_secs(21));
        t.wait_screen(Screen::Notice);
        assert_eq!(t.till(|t| t.get_notice()), NoticeKind::TapTimeout);
        assert!(t.says("Start the sale again when the customer is ready. Nothing was charged."));
    }

    fn pin_entry_times_out(t) {
        t.login("li", "111111");
        t.sale_to_pin("5.00", "cup-ok");
        t.wait_screen(Screen::Pin);
        t.type_text("12");
        t.advance(Duration::from_secs(61));
        t.wait_screen(Screen::Notice);
        assert_eq!(t.till(|t| t.get_notice()), NoticeKind::PinTimeout);
    }

    fn cancel_on_the_tap_screen_goes_home_and_cancel_on_the_pin_says_so(t) {
        t.login("li", "111111");
        t.sale_to_method("5.00");
        t.click("MethodScreen::card");
        t.click("TapScreen::cancel");
        t.wait_screen(Screen::Home);
        t.sale_to_pin("5.00", "cup-ok");
        t.click("PinScreen::cancel");
        t.wait_screen(Screen::Notice);
        assert_eq!(t.till(|t| t.get_notice()), NoticeKind::PinCancelled);
        assert!(t.says("The customer cancelled. Nothing was charged."));
    }

    fn a_card_pulled_away_early_or_unreadable_gets_a_retry_screen(t) {
        t.login("li", "111111");
        t.sale_to_pin("5.00", "pulled away early");
        t.wait_screen(Screen::Notice);
        assert_eq!(t.till(|t| t.get_notice()), NoticeKind::CardRemoved);
        t.click("NoticeScreen::ok");
        t.sale_to_pin("5.00", "dirty card");
        t.wait_screen(Screen::Notice);
        assert_eq!(t.till(|t| t.get_notice()), NoticeKind::CardUnreadable);
        assert!(t.says(
            "Hold the card flat on the reader until it beeps, or try another card. Nothing was charged."
        ));
    }

    fn a_qr_payment_is_scanned_sent_printed_masked_and_voided(t) {
        t.login("zhang", "222222");
        t.sale_to_method("25.00");
        t.click("MethodScreen::qr");
        t.wait_screen(Screen::Scan);
        assert!(t.says("Scan the customer's payment code"));
        t.click_label("code:WeChat Pay");
        t.wait_screen(Screen::Confirm);
        let shown = t.text(|t| t.get_card());
        assert!(shown.starts_with("13") && shown.contains("****"), "{shown}");
        // Wallet names come from the engine in the screen's language.
        let wallet = if t.till(|t| t.get_lang()) == "zh_CN" {
            "微信支付"
        } else {
            "WeChat Pay"
        };
        assert_eq!(t.text(|t| t.get_card_label()), wallet);
        assert!(
            t.shows(&format!("{wallet}  {shown}")),
            "wallet and masked code on the confirm screen"
        );
        t.click("ConfirmScreen::confirm");
        t.wait_screen(Screen::Result);
        t.assert_approved();
        t.shows_reason();
        let rrn = t.text(|t| t.get_rrn());
        assert_eq!(t.text(|t| t.get_card_label()), wallet);
        t.wait("the receipt", |d| !d.till(|t| t.get_printing()));
        t.click("ResultScreen::merchant-copy");
        t.wait("the merchant copy", |d| !d.till(|t| t.get_printing()));
        let receipts = t.receipts();
        assert_eq!(receipts.len(), 2);
        for r in &receipts {
            assert!(r.contains(&rrn) && r.contains("CNY25.00"), "{r}");
            assert!(r.contains("付款方式PAIDBY") && r.contains("微信支付WeChatPay"), "{r}");
            assert!(r.contains(&shown), "masked code printed: {r}");
            let longest_digits = r
                .split(|c: char| !c.is_ascii_digit())
                .map(str::len)
                .max()
                .unwrap_or(0);
            assert!(longest_digits < 18, "a full payment code printed: {r}");
        }
        t.click("ResultScreen::done");
        // Void by reference: no card, no code.
        t.click("HomeScreen::void");
        t.wait_screen(Screen::Pick);
        t.wait("the sale", |d| d.till(|t| t.get_history().row_count() == 1));
        t.click_label(&t.choose(&rrn));
        t.wait_screen(Screen::Confirm);
        t.click("ConfirmScreen::confirm");
        t.wait_screen(Screen::Result);
        t.assert_approved();
        assert_eq!(t.text(|t| t.get_card()), shown);
        assert_eq!(t.text(|t| t.get_card_label()), wallet);
        t.wait("the receipt", |d| !d.till(|t| t.get_printing()));
        t.click("ResultScreen::done");
        t.wait_screen(Screen::Home);
    }

    fn a_used_or_refused_payment_code_is_declined_with_what_to_do(t) {
        t.login("li", "111111");
        for (code, approved) in [
            ("WeChat Pay", true),
            ("used code", false),
            ("Alipay", false),
            ("QuickPass", false),
        ] {
            t.sale_to_method(if code == "QuickPass" { "300.01" } else { "9.00" });
            t.click("MethodScreen::qr");
            t.wait_screen(Screen::Scan);
            t.click_label(&format!("code:{code}"));
            t.wait_screen(Screen::Confirm);
            t.click("ConfirmScreen::confirm");
            t.display.pump();
            if t.screen() == Screen::Confirm {
                t.click("ConfirmScreen::confirm");
            }
            t.wait_screen(Screen::Result);
            assert_eq!(t.till(|t| t.get_approved()), approved, "{code}");
            let reason = t.shows_reason();
            if !approved {
                assert!(!t.till(|t| t.get_pin_retry()), "{code}: no PIN to retry");
                let action = t.text(|t| t.get_action_en());
                if code == "QuickPass" {
                    let en = t.text(|t| t.get_reason_en()).to_lowercase();
                    assert!(en.contains("insufficient"), "{code}: {en} ({reason})");
                } else {
                    assert!(action.contains("refresh the payment code"), "{code}: {action}");
                }
            }
            t.wait("the receipt", |d| !d.till(|t| t.get_printing()));
            t.click("ResultScreen::done");
            t.wait_screen(Screen::Home);
        }
    }

    fn no_payment_code_within_the_wait_times_out_and_cancel_goes_home(t) {
        t.login("li", "111111");
        t.sale_to_method("5.00");
        t.click("MethodScreen::qr");
        t.wait_screen(Screen::Scan);
        t.click("ScanScreen::cancel");
        t.wait_screen(Screen::Home);
        t.sale_to_method("5.00");
        t.click("MethodScreen::qr");
        t.wait_screen(Screen::Scan);
        assert_eq!(t.till(|t| t.get_tap_seconds_left()), 30);
        t.advance(Duration::from_secs(10));
        assert!(t.says_with(
            "WeChat Pay, Alipay or UnionPay QuickPass · waiting {} more seconds",
            &["20"]
        ));
        t.advance(Duration::from_secs(21));
        t.wait_screen(Screen::Notice);
        assert_eq!(t.till(|t| t.get_notice()), NoticeKind::ScanTimeout);
        assert!(t.says("No payment code was scanned in time"));
        t.click("NoticeScreen::ok");
        t.wait_screen(Screen::Home);
    }

    fn a_cashiers_void_needs_a_supervisors_password(t) {
        t.login("li", "111111");
        t.sale_to_pin("20.00", "cup-ok");
        t.pin_and_confirm("123456");
        let rrn = t.text(|t| t.get_rrn());
        t.click("ResultScreen::done");
        t.click("HomeScreen::void");
        t.wait_screen(Screen::Supervisor);
        // The supervisor's name opens the number pad; Done approves.
        t.click_label("zhang");
        t.tap_keys("000000");
        t.tap_done();
        assert_eq!(t.till(|t| t.get_login_tries_left()), 4);
        assert_eq!(t.screen(), Screen::Supervisor);
        assert!(t.editor().is_none());
        // Approve before a password opens its keys (no try spent).
        t.click("SupervisorScreen::approve");
        assert_eq!(t.till(|t| t.get_editing()), Field::SupervisorPassword);
        assert_eq!(t.till(|t| t.get_login_tries_left()), 4);
        t.tap_keys("222222");
        t.tap_done();
        t.wait_screen(Screen::Pick);
        t.wait("the sale in the list", |d| {
            d.till(|t| t.get_history().row_count() == 1)
        });
        t.click_label(&t.choose(&rrn));
        t.wait_screen(Screen::Confirm);
        assert_eq!(t.text(|t| t.get_amount()), "CNY 20.00");
        t.click("ConfirmScreen::confirm");
        t.wait_screen(Screen::Result);
        t.assert_approved();
        t.wait("the receipt", |d| !d.till(|t| t.get_printing()));
        t.click("ResultScreen::done");
        // The voided sale cannot be voided again.
        t.click("HomeScreen::void");
        t.click_label("zhang");
        t.tap_keys("222222");
        t.tap_done();
        t.wait_screen(Screen::Pick);
        t.wait("the list", |d| d.till(|t| t.get_history().row_count() == 0));
        assert!(t.says("Nothing in the open batch can be used for this."));
    }

    fn a_partial_refund_and_a_balance_inquiry(t) {
        t.login("zhang", "222222");
        t.sale_to_pin("30.00", "cup-ok");
        t.pin_and_confirm("123456");
        let rrn = t.text(|t| t.get_rrn());
        t.click("ResultScreen::done");
        // A supervisor needs no second approval.
        t.click("HomeScreen::refund");
        t.wait_screen(Screen::Pick);
        t.wait("the sale", |d| d.till(|t| t.get_history().row_count() == 1));
        t.click_label(&t.choose(&rrn));
        t.wait_screen(Screen::Amount);
        assert_eq!(t.text(|t| t.get_amount_entry()), "30.00");
        t.click("NumPad::clear");
        t.type_text("5.5");
        t.click("NumPad::enter");
        t.click("ConfirmScreen::confirm");
        t.wait_screen(Screen::Result);
        t.assert_approved();
        assert_eq!(t.text(|t| t.get_amount()), "CNY 5.50");
        t.wait("the receipt", |d| !d.till(|t| t.get_printing()));
        t.click("ResultScreen::done");

        t.click("HomeScreen::balance");
        t.tap_and_pin("cup-ok", "123456");
        assert!(t.till(|t| t.get_approved()));
        // 5000.00 − 30.00 + 5.50
        assert_eq!(t.text(|t| t.get_balance()), "CNY 4975.50");
    }

    fn a_pre_authorization_is_completed_and_another_voided(t) {
        t.login("zhang", "222222");
        for amount in ["100.00", "40.00"] {
            t.click("HomeScreen::preauth");
            t.wait_screen(Screen::Amount);
            t.type_text(amount);
            t.click("NumPad::enter");
            t.wait_screen(Screen::Tap);
            t.click_label("card:cup-ok");
            t.pin_and_confirm("123456");
            t.assert_approved();
            t.click("ResultScreen::done");
        }
        t.click("HomeScreen::completion");
        t.wait_screen(Screen::Pick);
        t.wait("two pre-authorizations", |d| {
            d.till(|t| t.get_history().row_count() == 2)
        });
        let first = t.till(|t| t.get_history().row_data(1).unwrap());
        assert_eq!(first.amount.as_str(), "CNY 100.00");
        t.click_label(&t.choose(&first.rrn));
        t.wait_screen(Screen::Amount);
        t.click("NumPad::clear");
        t.type_text("95.00");
        t.click("NumPad::enter");
        t.click("ConfirmScreen::confirm");
        t.wait_screen(Screen::Result);
        t.assert_approved();
        t.click("ResultScreen::done");
        t.click("HomeScreen::preauth-void");
        t.wait_screen(Screen::Pick);
        t.wait("one open pre-authorization", |d| {
            d.till(|t| t.get_history().row_count() == 1)
        });
        let other = t.till(|t| t.get_history().row_data(0).unwrap());
        assert_eq!(other.amount.as_str(), "CNY 40.00");
        t.click_label(&t.choose(&other.rrn));
        t.click("ConfirmScreen::confirm");
        t.wait_screen(Screen::Result);
        t.assert_approved();
    }

    fn history_is_searched_by_last_four_digits_amount_and_date_and_reprints(t) {
        t.login("li", "111111");
        t.sale_to_pin("11.00", "cup-ok");
        t.pin_and_confirm("123456");
        t.click("ResultScreen::done");
        t.sale_to_pin("22.00", "mc-ok");
        t.pin_and_confirm("4321");
        t.click("ResultScreen::done");
        t.click("HomeScreen::history");
        t.wait("two rows", |d| d.till(|t| t.get_history().row_count() == 2));
        let mc = t.till(|t| t.get_history().row_data(0).unwrap().card.to_string());
        let last4 = &mc[mc.len() - 4..];
        // Done on the search's keys searches; so does Search.
        t.type_into("HistoryScreen::filter", last4);
        assert_eq!(t.till(|t| t.get_history().row_count()), 1);
        t.type_into("HistoryScreen::filter", "11.00");
        t.click("HistoryScreen::search");
        let rows = t.till(|t| t.get_history());
        assert_eq!(rows.row_count(), 1);
        assert_eq!(rows.row_data(0).unwrap().amount.as_str(), "CNY 11.00");
        let today = chrono::Local::now().format("%Y-%m-%d").to_string();
        t.type_into("HistoryScreen::filter", &today);
        assert_eq!(t.till(|t| t.get_history().row_count()), 2);
        t.type_into("HistoryScreen::filter", "1999-01-01");
        assert_eq!(t.till(|t| t.get_history().row_count()), 0);
        assert!(t.says("No transactions match."));
        let before = t.receipts().len();
        t.click("HistoryScreen::last");
        t.wait("the reprint", |d| !d.till(|t| t.get_printing()));
        let receipts = t.receipts();
        assert_eq!(receipts.len(), before + 1);
        assert!(receipts.last().unwrap().contains("DUPLICATE"));
        assert!(receipts.last().unwrap().contains("22.00"));
    }

    fn paper_out_keeps_the_receipt_and_print_again_prints_it(t) {
        t.login("li", "111111");
        let printer = t.sim_printer();
        printer.lock().unwrap().model.state.paper_out = true;
        t.sale_to_pin("9.00", "cup-ok");
        t.pin_and_confirm("123456");
        assert!(t.till(|t| t.get_approved()));
        assert!(t.till(|t| t.get_print_failed()));
        assert_eq!(t.text(|t| t.get_print_problem()), "paper-out");
        assert!(t.says(
            "The printer is out of paper. Load a new roll, close the cover, then print again."
        ));
        assert!(t.receipts().is_empty());
        printer.lock().unwrap().model.state.paper_out = false;
        t.click("ResultScreen::print-again");
        t.wait("the reprint", |d| !d.till(|t| t.get_printing()));
        assert!(!t.till(|t| t.get_print_failed()));
        assert_eq!(t.receipts().len(), 1);
        assert!(t.receipts()[0].contains("9.00"));
    }

    fn five_wrong_passwords_lock_the_account_and_the_administrator_unlocks_it(t) {
        t.click_label(&t.login_label("li"));
        t.tap_keys("bad");
        t.tap_done();
        assert_eq!(t.till(|t| t.get_login_tries_left()), 4);
        for left in (1..4).rev() {
            t.type_into("LoginScreen::password", "bad");
            assert_eq!(t.till(|t| t.get_login_tries_left()), left);
        }
        t.type_into("LoginScreen::password", "bad");
        t.wait_screen(Screen::Notice);
        assert_eq!(t.till(|t| t.get_notice()), NoticeKind::AccountLocked);
        t.click("NoticeScreen::ok");
        // The right password does not open it now.
        t.click_label(&t.login_label("li"));
        t.tap_keys("111111");
        t.tap_done();
        t.wait_screen(Screen::Notice);
        assert_eq!(t.till(|t| t.get_notice()), NoticeKind::AccountLocked);
        t.click("NoticeScreen::ok");
        t.login("admin", "123456");
        t.click("HomeScreen::operators");
        t.wait_screen(Screen::Operators);
        let locked_li = format!("li · {} · {}", t.tr("cashier", &[]), t.tr("locked", &[]));
        assert!(t.shows(&locked_li));
        t.click_label("unlock:li");
        assert!(!t.shows(&locked_li));
        t.click("OperatorsScreen::back");
        t.click("HomeScreen::logout");
        t.wait_screen(Screen::Login);
        t.login("li", "111111");
    }

    fn the_keypad_types_into_the_open_field_and_a_password_never_shows(t) {
        // The name by touch; the password on the GPIO keypad: its first
        // digit opens the field, # is Done, B deletes.
        t.click_label(&t.login_label("li"));
        t.click("EditorScreen::cancel");
        assert!(t.editor().is_none());
        for d in [1, 1, 9] {
            t.keypad(Key::Digit(d));
        }
        assert_eq!(t.till(|t| t.get_editing()), Field::LoginPassword);
        assert_eq!(t.text(|t| t.get_edit_text()), "●●●");
        t.keypad(Key::B);
        for _ in 0..4 {
            t.keypad(Key::Digit(1));
        }
        assert!(!t.shows("111111"), "a password is only dots on screen");
        t.keypad(Key::Hash);
        t.after_login();
        t.click("HomeScreen::logout");
        t.login("admin", "123456");
        t.click("HomeScreen::settings");
        t.wait_screen(Screen::Settings);
        // A tapped amount field: * is the decimal point there, A cancels.
        t.click("SettingsScreen::floor");
        for k in [Key::Digit(5), Key::Digit(0), Key::Star, Key::Digit(2), Key::Digit(5)] {
            t.keypad(k);
        }
        assert_eq!(t.text(|t| t.get_edit_text()), "50.25");
        t.keypad(Key::A);
        assert!(t.editor().is_none());
        assert!(t.says("no offline sales"), "cancelled: the field is as it was");
        t.click("SettingsScreen::floor");
        for k in [Key::Digit(7), Key::Star, Key::Digit(5), Key::D] {
            t.keypad(k);
        }
        assert!(t.editor().is_none());
        assert!(t.shows("7.5"));
        // A desktop's keyboard (the simulator's window) types too.
        let host = t.text(|t| t.get_host());
        t.click("SettingsScreen::host");
        let port = host.rsplit(':').next().unwrap();
        t.d.type_text(&format!("{}7001\n", "\u{8}".repeat(port.len())));
        t.click("SettingsScreen::save");
        assert_eq!(t.text(|t| t.get_settings_message()), "saved");
        assert_eq!(t.text(|t| t.get_offline_floor()), "7.5");
        assert_eq!(
            t.text(|t| t.get_host()),
            format!("{}7001", &host[..host.len() - port.len()])
        );
    }

    fn roles_decide_what_is_on_home_and_what_is_refused(t) {
        t.login("li", "111111");
        assert!(!t.says("Settlement") && !t.says("Settings") && !t.says("Operators"));
        // Asking anyway (a stale button, a script) is refused with a screen.
        t.till(|t| t.invoke_go(Screen::Settle));
        t.wait_screen(Screen::Notice);
        assert_eq!(t.till(|t| t.get_notice()), NoticeKind::NotPermitted);
        t.click("NoticeScreen::ok");
        // The administrator's actions check the role themselves.
        let settings = std::fs::read(t.dir.path().join("state/settings.toml")).ok();
        let operators = std::fs::read(t.dir.path().join("state/operators.toml")).unwrap();
        let actions: [fn(&Till<'_>); 3] = [
            |t| t.invoke_save_settings(),
            |t| t.invoke_add_operator(),
            |t| t.invoke_set_clock(),
        ];
        for action in actions {
            t.wait_screen(Screen::Home);
            t.till(action);
            t.wait_screen(Screen::Notice);
            assert_eq!(t.till(|t| t.get_notice()), NoticeKind::NotPermitted);
            t.click("NoticeScreen::ok");
        }
        t.till(|t| t.invoke_remove_operator("zhang".into()));
        assert_eq!(t.till(|t| t.get_notice()), NoticeKind::NotPermitted);
        assert_eq!(std::fs::read(t.dir.path().join("state/settings.toml")).ok(), settings);
        assert_eq!(std::fs::read(t.dir.path().join("state/operators.toml")).unwrap(), operators);
    }

    fn an_operator_the_administrator_adds_chooses_a_new_password_at_the_first_login(t) {
        t.login("admin", "123456");
        t.click("HomeScreen::operators");
        t.type_into("OperatorsScreen::name", "wang");
        t.type_into("OperatorsScreen::password", "12345");
        t.click("OperatorsScreen::add");
        assert_eq!(t.text(|t| t.get_operators_message()), "short-password");
        assert!(t.shows("wang"), "the name stays for another try");
        t.type_into("OperatorsScreen::password", "wang-pass");
        t.click("OperatorsScreen::add");
        assert_eq!(t.text(|t| t.get_operators_message()), "added");
        assert!(t.says("Name"), "the fields are empty for the next");
        t.click("OperatorsScreen::back");
        t.click("HomeScreen::logout");
        // The first login: the administrator's password for wang is
        // replaced by one only wang knows, before anything else.
        t.click_label(&t.login_label("wang"));
        t.tap_keys("wang-pass");
        t.tap_done();
        t.wait_screen(Screen::NewPassword);
        assert!(t.says("Choose your own password"));
        // Done on the first field opens the second; Done there saves.
        let choose = |new: &str, again: &str| {
            t.click("NewPasswordScreen::new-password");
            t.tap_keys(new);
            t.tap_done();
            assert_eq!(t.till(|t| t.get_editing()), Field::NewPasswordAgain);
            t.tap_keys(again);
            t.tap_done();
            t.text(|t| t.get_password_message())
        };
        assert_eq!(choose("wang-own-1", "wang-own-2"), "mismatch");
        assert!(t.says("The two passwords differ. Type them again."));
        assert_eq!(choose("wang-pass", "wang-pass"), "same");
        assert_eq!(choose("wang", "wang"), "short");
        choose("wang-own-1", "wang-own-1");
        t.wait_screen(Screen::Home);
        t.click("HomeScreen::logout");
        t.wait_screen(Screen::Login);
        // The given password no longer works; the new one goes straight home.
        t.click_label(&t.login_label("wang"));
        t.tap_keys("wang-pass");
        t.tap_done();
        t.wait("the refusal", |d| d.till(|t| t.get_login_tries_left()) > 0);
        t.login("wang", "wang-own-1");
        let text = std::fs::read_to_string(t.dir.path().join("state/operators.toml")).unwrap();
        assert!(!text.contains("wang-pass") && !text.contains("wang-own-1"));
    }

    fn settings_are_checked_and_saved(t) {
        t.login("admin", "123456");
        t.click("HomeScreen::settings");
        t.type_into("SettingsScreen::per-txn", "1..5");
        t.click("SettingsScreen::save");
        assert_eq!(t.text(|t| t.get_settings_message()), "bad-amount");
        t.type_into("SettingsScreen::per-txn", "100.00");
        // The provisioned Chinese name is kept; what the keyboard types
        // (shift, the symbols page, space) goes after it.
        t.click("SettingsScreen::merchant");
        t.click("Keyboard::back");
        t.tap_keys("xyz");
        // Cancel leaves the field as it was.
        t.click("Keyboard::cancel");
        assert!(t.editor().is_none());
        t.click("SettingsScreen::save");
        assert_eq!(t.text(|t| t.get_merchant()), "Till Demo Shop 演示商店");
        t.click("SettingsScreen::merchant");
        t.tap_keys(" Wang's 2");
        t.tap_done();
        t.click("SettingsScreen::save");
        assert_eq!(t.text(|t| t.get_settings_message()), "saved");
        assert_eq!(t.text(|t| t.get_merchant()), "Till Demo Shop 演示商店 Wang's 2");
        // Date and time: checked before anything is touched; the
        // simulator never changes the computer's clock.
        // The clock's keys are digits; the separators come by themselves.
        t.type_into("SettingsScreen::new-time", "2026112");
        t.click("SettingsScreen::set-clock");
        assert_eq!(t.text(|t| t.get_settings_message()), "bad-time");
        assert!(t.says("Type the date and time as YYYY-MM-DD HH:MM, for example 2026-11-21 14:05. The clock was not changed."));
        t.type_into("SettingsScreen::new-time", "197001010000");
        assert!(t.shows("1970-01-01 00:00"));
        t.click("SettingsScreen::set-clock");
        assert_eq!(t.text(|t| t.get_settings_message()), "time-range");
        t.type_into("SettingsScreen::new-time", "202611210900");
        t.click("SettingsScreen::set-clock");
        assert_eq!(t.text(|t| t.get_settings_message()), "time-simulator");
        assert!(t.says("Simulator: the terminal uses this computer's clock and does not change it."));
        t.click("SettingsScreen::back");
        // The new limit is the engine's now.
        t.sale_to_pin("150.00", "cup-ok");
        t.wait_screen(Screen::Pin);
        t.type_text("123456");
        t.enter();
        t.click("ConfirmScreen::confirm");
        t.wait_screen(Screen::Notice);
        assert_eq!(t.till(|t| t.get_notice()), NoticeKind::OverTransactionLimit);
    }

    fn settlement_shows_the_totals_and_prints_the_report(t) {
        t.login("admin", "123456");
        for amount in ["10.00", "15.00"] {
            t.sale_to_pin(amount, "cup-ok");
            t.pin_and_confirm("123456");
            t.click("ResultScreen::done");
        }
        t.click("HomeScreen::settle");
        t.wait_screen(Screen::Settle);
        t.wait("the totals", |d| d.till(|t| t.get_debit_count() == 2));
        assert_eq!(t.text(|t| t.get_debit_amount()), "CNY 25.00");
        let batch = t.text(|t| t.get_batch());
        t.click("SettleScreen::settle");
        t.wait("the settlement", |d| d.till(|t| t.get_settled()));
        t.wait("the report", |d| !d.till(|t| t.get_printing()));
        assert!(t.till(|t| t.get_balanced()));
        assert_eq!(t.text(|t| t.get_settled_batch()), batch);
        assert_ne!(t.text(|t| t.get_batch()), batch, "a new batch is open");
        let report = t.receipts().pop().unwrap();
        assert!(
            report.contains("SETTLEMENT") && report.contains("CNY25.00"),
            "{report}"
        );
    }

    fn with_the_host_down_a_sale_is_refused_or_approved_offline_and_queued(t) {
        t.login("admin", "123456");
        t.click("HomeScreen::settings");
        t.type_into("SettingsScreen::floor", "50.00");
        t.click("SettingsScreen::save");
        assert_eq!(t.text(|t| t.get_settings_message()), "saved");
        t.click("SettingsScreen::back");
        t.sim.stop_host();
        // Above the floor: refused, and the screen says so.
        t.sale_to_pin("80.00", "cup-nopin");
        t.wait_screen(Screen::Pin);
        t.enter();
        t.click("ConfirmScreen::confirm");
        t.wait_screen(Screen::Notice);
        assert_eq!(t.till(|t| t.get_notice()), NoticeKind::OfflineRefused);
        t.click("NoticeScreen::ok");
        // Within the floor, no PIN: approved offline, queued for the host.
        t.sale_to_pin("20.00", "cup-nopin");
        t.wait_screen(Screen::Pin);
        t.enter();
        t.click("ConfirmScreen::confirm");
        t.wait_screen(Screen::Result);
        assert!(t.till(|t| t.get_approved() && t.get_offline_approved()));
        t.wait("the banner", |d| {
            d.till(|t| t.get_offline() && t.get_queue_depth() == 1)
        });
        assert!(t.says_with(
            "Offline: the host cannot be reached. {} message(s) wait to be sent.",
            &["1"]
        ));
    }

    fn when_the_answer_is_lost_the_sale_is_reversed_and_the_screen_says_nothing_was_charged(t) {
        t.login("li", "111111");
        std::fs::write(
            t.dir.path().join("faults.toml"),
            "[[fault]]\naction = \"close\"\nkind = \"sale\"\ncount = 1\n",
        )
        .unwrap();
        t.sale_to_pin("33.00", "cup-ok");
        t.pin_and_confirm("123456");
        assert!(!t.till(|t| t.get_approved()));
        assert!(t.till(|t| t.get_reversed()));
        assert!(t.says("Not completed: reversed"));
        assert!(
            t.text(|t| t.get_reason_en())
                .contains("nothing was charged")
        );
        assert!(t.receipts().is_empty());
        t.click("ResultScreen::done");
        // The next sale goes through (the reversal was acknowledged).
        t.sale_to_pin("33.00", "cup-ok");
        t.pin_and_confirm("123456");
        t.assert_approved();
    }

    fn device_status_lists_every_device_and_the_terminal(t) {
        t.login("li", "111111");
        t.click("HomeScreen::status");
        t.wait_screen(Screen::Status);
        t.wait("the devices", |d| {
            d.till(|t| t.get_devices().row_count() == 5)
        });
        for name in [
            "Card reader",
            "PIN keypad",
            "Receipt printer",
            "Code scanner",
            "Transaction journal",
        ] {
            assert!(t.says(name), "{name}");
        }
        assert!(t.text(|t| t.get_terminal_id()) == "TILL0001");
    }
}

#[test]
fn the_whole_sale_runs_in_chinese_after_switching_at_runtime() {
    ui(|| {
        let t = start();
        t.login("admin", "123456");
        assert!(t.shows("Sale"));
        t.to_chinese();
        assert!(t.shows("消费") && !t.shows("Sale"), "home in Chinese");
        t.sale_to_pin("12.50", "cup-ok");
        assert!(t.shows("请持卡人在密码键盘上输入密码，然后按确认"));
        t.pin_and_confirm("123456");
        assert!(t.shows("交易成功"));
        assert!(!t.text(|t| t.get_reason_zh()).is_empty());
        t.click("ResultScreen::done");
        // The language is a setting: it is still Chinese after a restart.
        let saved = std::fs::read_to_string(t.dir.path().join("state/settings.toml")).unwrap();
        assert!(saved.contains("language = \"zh_CN\""), "{saved}");
    });
}

#[test]
fn a_cashier_in_chinese_gets_the_supervisor_screen_and_notices_in_chinese() {
    ui(|| {
        let t = start();
        t.login("admin", "123456");
        t.to_chinese();
        t.click("HomeScreen::logout");
        t.wait_screen(Screen::Login);
        t.login("li", "111111");
        t.click("HomeScreen::refund");
        t.wait_screen(Screen::Supervisor);
        assert!(t.shows("需要主管授权"));
        t.click("SupervisorScreen::cancel");
        t.wait_screen(Screen::Home);
        t.sale_to_pin("5.00", "dirty card");
        t.wait_screen(Screen::Notice);
        assert!(t.shows("无法读取卡片"));
        assert!(t.shows("请将卡片平放在读卡区直到提示音响起，或换一张卡。未扣款。"));
    });
}

trait OverLimit {
    fn pin_and_confirm_over_limit(&self);
}

impl OverLimit for support::T {
    fn pin_and_confirm_over_limit(&self) {
        self.wait_screen(Screen::Pin);
        self.type_text("123456");
        self.enter();
        self.wait_screen(Screen::Confirm);
        self.click("ConfirmScreen::confirm");
        self.click("ConfirmScreen::confirm");
        self.wait_screen(Screen::Notice);
        assert_eq!(
            self.till(|t| t.get_notice()),
            NoticeKind::OverTransactionLimit
        );
        assert!(self.says("The amount is above the limit for one transaction"));
        assert_eq!(self.text(|t| t.get_notice_arg2()), "50000.00");
        self.click("NoticeScreen::ok");
        self.wait_screen(Screen::Home);
    }
}
