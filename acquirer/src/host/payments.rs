//! Card transactions: sale, balance inquiry, pre-authorization and its
//! completion and void, voids, refunds and advices, with the checks on
//! the card, its PIN and its funds that they share.

use chrono::{DateTime, Datelike, Local};
use till_pay::card::{Expiry, Track2, mask_pan};
use till_pay::crypto::pinblock;
use till_pay::emv::issuer::{CardKey, IccRequest, IssuerError};
use till_pay::iso8583::{Message, Outcome, TxnKind};
use till_pay::money::{Amount, Currency};
use till_pay::qr::PaymentCode;
use till_pay::security::WorkingKeys;

use super::{Approval, Decision, Host, PIN_TRIES, Refusal, Step, Txn, reference, request_pan};
use crate::cards::CardStatus;
use crate::ledger::Effect;

/// A completion may exceed its pre-authorization by up to 15 %.
const COMPLETION_PERCENT: u128 = 115;

/// What a card transaction handler found out, for the transaction record.
#[derive(Debug, Default)]
pub(super) struct Draft {
    card: Option<usize>,
    amount: Option<Amount>,
    original: Option<usize>,
    /// A verified ARQC, to answer with an ARPC.
    icc: Option<VerifiedIcc>,
}

/// An ARQC that verified, and the key that verified it.
#[derive(Debug)]
struct VerifiedIcc {
    key: CardKey,
    request: IccRequest,
}

impl Host {
    /// Runs a transaction on a card and records it, approved or not.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn card_transaction(
        &mut self,
        terminal: &str,
        batch: u32,
        stan: u32,
        kind: TxnKind,
        req: &Message,
        keys: &WorkingKeys,
        now: DateTime<Local>,
        ans: &mut Message,
    ) -> Decision {
        let mut draft = Draft::default();
        let step = match kind {
            TxnKind::Sale if self.dialect.get_text(req, "payment_code").is_some() => {
                self.qr_sale(&mut draft, req)
            }
            TxnKind::Sale => self.sale(&mut draft, req, keys, now),
            TxnKind::Balance => self.balance(&mut draft, req, keys, now, ans),
            TxnKind::Preauth => self.preauth(&mut draft, req, keys, now),
            TxnKind::Completion => self.completion(&mut draft, terminal, req),
            TxnKind::PreauthVoid => self.preauth_void(&mut draft, terminal, req),
            TxnKind::Void | TxnKind::CompletionVoid => {
                self.void(&mut draft, terminal, batch, kind, req)
            }
            TxnKind::Refund => self.refund(&mut draft, terminal, req),
            TxnKind::Advice => self.advice(&mut draft, req, now),
            _ => Err(Refusal::new(
                Outcome::InvalidTransaction,
                format!("{kind} is not a card transaction"),
            )),
        };
        let (mut decision, approved) = match step {
            Ok(a) => (
                Decision {
                    note: a.note,
                    ..Decision::approved(a.effect)
                },
                true,
            ),
            Err(r) => (r.into(), false),
        };
        if approved {
            let rrn = self.rrns.next(now);
            let offline_code = (kind == TxnKind::Advice)
                .then(|| self.dialect.get_text(req, "auth_code"))
                .flatten()
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty());
            decision.rrn = Some(rrn);
            decision.auth_code = Some(offline_code.unwrap_or_else(reference::auth_code));
        }
        if let Some(icc) = &draft.icc {
            self.answer_icc(icc, decision.outcome, ans, &mut decision);
        }
        let index = self.txns.len();
        self.txns.push(Txn {
            terminal: terminal.to_string(),
            batch,
            kind,
            card: draft.card,
            amount: draft.amount.unwrap_or_default(),
            outcome: decision.outcome,
            rrn: decision.rrn.clone(),
            auth_code: decision.auth_code.clone(),
            original: draft.original,
            voided: false,
            completed: false,
            reversed: false,
            refunded: Amount(0),
        });
        if let Some(rrn) = &decision.rrn {
            self.by_rrn.insert(rrn.clone(), index);
        }
        self.state(terminal)
            .txn_by_stan
            .insert((batch, stan), index);
        decision
    }

    /// The checks a sale and a pre-authorization share: amount, card
    /// status and expiry, chip cryptogram, PIN, funds. The card and amount
    /// to charge or hold.
    fn authorize(
        &mut self,
        draft: &mut Draft,
        req: &Message,
        keys: &WorkingKeys,
        now: DateTime<Local>,
    ) -> Step<(usize, Amount)> {
        let amount = self.positive_amount(draft, req)?;
        let card = self.card(draft, req)?;
        self.check_card(card, req, now)?;
        self.check_icc(draft, card, req, amount)?;
        self.check_pin(card, req, keys)?;
        self.check_funds(card, amount)?;
        Ok((card, amount))
    }

    fn sale(
        &mut self,
        draft: &mut Draft,
        req: &Message,
        keys: &WorkingKeys,
        now: DateTime<Local>,
    ) -> Step<Approval> {
        let (card, amount) = self.authorize(draft, req, keys, now)?;
        self.debit(card, amount);
        Ok(Approval::new(Effect::Debit))
    }

    fn balance(
        &mut self,
        draft: &mut Draft,
        req: &Message,
        keys: &WorkingKeys,
        now: DateTime<Local>,
        ans: &mut Message,
    ) -> Step<Approval> {
        self.check_currency(req)?;
        let card = self.card(draft, req)?;
        self.check_card(card, req, now)?;
        self.check_pin(card, req, keys)?;
        let available = self.accounts[card].available();
        // Account type 00 (unspecified), amount type 02 (available balance),
        // currency, C (credit balance), twelve digits.
        let text = format!(
            "0002{}C{:012}",
            self.cards.currency().numeric_code(),
            available.0
        );
        self.put(ans, "additional_amounts", &text)?;
        Ok(Approval::new(Effect::None))
    }

    fn preauth(
        &mut self,
        draft: &mut Draft,
        req: &Message,
        keys: &WorkingKeys,
        now: DateTime<Local>,
    ) -> Step<Approval> {
        let (card, amount) = self.authorize(draft, req, keys, now)?;
        self.accounts[card].held.0 += amount.0;
        Ok(Approval::new(Effect::Hold))
    }

    fn completion(&mut self, draft: &mut Draft, terminal: &str, req: &Message) -> Step<Approval> {
        let amount = self.positive_amount(draft, req)?;
        let card = self.card(draft, req)?;
        let o = self.original(draft, terminal, Some(card), req)?;
        let hold = self.open_hold(o)?;
        if u128::from(amount.0) * 100 > u128::from(hold.0) * COMPLETION_PERCENT {
            return Err(Refusal::new(
                Outcome::InvalidAmount,
                format!(
                    "completion of {} exceeds 115 % of the hold of {}",
                    amount.0, hold.0
                ),
            ));
        }
        let acc = &mut self.accounts[card];
        let available = acc
            .balance
            .0
            .saturating_sub(acc.held.0.saturating_sub(hold.0));
        if amount.0 > available {
            return Err(Refusal::new(
                Outcome::InsufficientFunds,
                "the completion exceeds the hold and the rest of the balance",
            ));
        }
        acc.held.0 = acc.held.0.saturating_sub(hold.0);
        self.debit(card, amount);
        self.txns[o].completed = true;
        Ok(Approval::new(Effect::ReleaseDebit))
    }

    fn preauth_void(&mut self, draft: &mut Draft, terminal: &str, req: &Message) -> Step<Approval> {
        let amount = self.amount(draft, req)?;
        let card = self.card(draft, req)?;
        let o = self.original(draft, terminal, Some(card), req)?;
        let hold = self.open_hold(o)?;
        if amount != hold {
            return Err(Refusal::new(
                Outcome::InvalidAmount,
                format!("the void is for {} but the hold is {}", amount.0, hold.0),
            ));
        }
        let acc = &mut self.accounts[card];
        acc.held.0 = acc.held.0.saturating_sub(hold.0);
        self.txns[o].voided = true;
        Ok(Approval::new(Effect::Release))
    }

    /// The amount a pre-authorization still holds, or why it holds nothing.
    fn open_hold(&self, o: usize) -> Step<Amount> {
        let p = &self.txns[o];
        let refuse = |why: &str| Err(Refusal::new(Outcome::InvalidTransaction, why));
        if p.kind != TxnKind::Preauth || !p.approved() {
            return refuse("the original is not an approved pre-authorization");
        }
        if p.reversed {
            return refuse("the pre-authorization was reversed");
        }
        if p.voided {
            return refuse("the pre-authorization was voided");
        }
        if p.completed {
            return refuse("the pre-authorization was already completed");
        }
        Ok(p.amount)
    }

    fn void(
        &mut self,
        draft: &mut Draft,
        terminal: &str,
        batch: u32,
        kind: TxnKind,
        req: &Message,
    ) -> Step<Approval> {
        let amount = self.amount(draft, req)?;
        let (card, o) = self.payer_and_original(draft, terminal, req)?;
        let target = if kind == TxnKind::Void {
            TxnKind::Sale
        } else {
            TxnKind::Completion
        };
        let orig = &self.txns[o];
        let refuse = |why: String| Err(Refusal::new(Outcome::InvalidTransaction, why));
        if orig.kind != target || !orig.approved() {
            return refuse(format!("the original is not an approved {target}"));
        }
        if orig.batch != batch {
            return refuse(format!(
                "the original is in batch {}, a void must be in the same batch",
                orig.batch
            ));
        }
        if orig.voided {
            return refuse("the original was already voided".into());
        }
        if orig.reversed {
            return refuse("the original was reversed".into());
        }
        if orig.refunded.0 > 0 {
            return refuse("the original was partly refunded; refund the rest instead".into());
        }
        if amount != orig.amount {
            return Err(Refusal::new(
                Outcome::InvalidAmount,
                format!(
                    "the void is for {} but the original was {}",
                    amount.0, orig.amount.0
                ),
            ));
        }
        self.accounts[card].balance.0 += amount.0;
        self.txns[o].voided = true;
        Ok(Approval::new(Effect::Credit))
    }

    fn refund(&mut self, draft: &mut Draft, terminal: &str, req: &Message) -> Step<Approval> {
        let amount = self.positive_amount(draft, req)?;
        let (card, o) = self.payer_and_original(draft, terminal, req)?;
        let orig = &self.txns[o];
        let refuse = |why: &str| Err(Refusal::new(Outcome::InvalidTransaction, why));
        if !matches!(
            orig.kind,
            TxnKind::Sale | TxnKind::Completion | TxnKind::Advice
        ) || !orig.approved()
        {
            return refuse("the original is not an approved sale, completion or advice");
        }
        if orig.voided {
            return refuse("the original was voided");
        }
        if orig.reversed {
            return refuse("the original was reversed");
        }
        let left = orig.amount.0.saturating_sub(orig.refunded.0);
        if amount.0 > left {
            return Err(Refusal::new(
                Outcome::InvalidAmount,
                format!("only {left} of the original is left to refund"),
            ));
        }
        self.accounts[card].balance.0 += amount.0;
        self.txns[o].refunded.0 += amount.0;
        Ok(Approval::new(Effect::Credit))
    }

    fn advice(&mut self, draft: &mut Draft, req: &Message, now: DateTime<Local>) -> Step<Approval> {
        let amount = self.positive_amount(draft, req)?;
        let card = self.card(draft, req)?;
        self.check_card(card, req, now)?;
        self.check_funds(card, amount)?;
        self.debit(card, amount);
        Ok(Approval::new(Effect::Debit))
    }

    fn amount(&self, draft: &mut Draft, req: &Message) -> Step<Amount> {
        self.check_currency(req)?;
        let amount = Amount(self.required_number(req, "amount")?);
        draft.amount = Some(amount);
        Ok(amount)
    }

    fn positive_amount(&self, draft: &mut Draft, req: &Message) -> Step<Amount> {
        let amount = self.amount(draft, req)?;
        if amount.0 == 0 {
            return Err(Refusal::new(Outcome::InvalidAmount, "the amount is zero"));
        }
        Ok(amount)
    }

    fn check_currency(&self, req: &Message) -> Step<()> {
        let Some(code) = self.dialect.get_text(req, "currency") else {
            return Ok(());
        };
        let host = self.cards.currency();
        match Currency::find(code) {
            Some(c) if c == host => Ok(()),
            _ => Err(Refusal::new(
                Outcome::InvalidTransaction,
                format!(
                    "currency {code:?} is not the host currency {} ({})",
                    host.alpha,
                    host.numeric_code()
                ),
            )),
        }
    }

    /// The card the request is for: its PAN, or track 2's.
    fn card(&self, draft: &mut Draft, req: &Message) -> Step<usize> {
        let pan = request_pan(&self.dialect, req).ok_or_else(|| {
            Refusal::new(Outcome::FormatError, "the request carries no card number")
        })?;
        let card = self.cards.find(&pan).ok_or_else(|| {
            Refusal::new(
                Outcome::InvalidCard,
                format!("card {} is not in the card database", mask_pan(&pan)),
            )
        })?;
        draft.card = Some(card);
        Ok(card)
    }

    /// The account a void or refund pays back and its original: the card
    /// the request names, or, for a QR code payment's original (whose
    /// void or refund carries no card and no code), the wallet it paid
    /// from.
    fn payer_and_original(
        &self,
        draft: &mut Draft,
        terminal: &str,
        req: &Message,
    ) -> Step<(usize, usize)> {
        if request_pan(&self.dialect, req).is_some() {
            let card = self.card(draft, req)?;
            let o = self.original(draft, terminal, Some(card), req)?;
            return Ok((card, o));
        }
        let o = self.original(draft, terminal, None, req)?;
        let payer = self.txns[o]
            .card
            .filter(|&a| self.is_wallet(a))
            .ok_or_else(|| {
                Refusal::new(Outcome::FormatError, "the request carries no card number")
            })?;
        draft.card = Some(payer);
        Ok((payer, o))
    }

    /// A QR code payment: the wallet (by the code's length and prefix)
    /// pays if it has an account here, the code was not used before and
    /// the account has the money. A code pays once.
    fn qr_sale(&mut self, draft: &mut Draft, req: &Message) -> Step<Approval> {
        let amount = self.positive_amount(draft, req)?;
        let scan = self.dialect.get_text(req, "payment_code").unwrap_or("");
        let code = PaymentCode::parse(scan)
            .map_err(|e| Refusal::new(Outcome::InvalidPaymentCode, e.to_string()))?;
        let wallet = self.cards.find_wallet(code.wallet()).ok_or_else(|| {
            Refusal::new(
                Outcome::InvalidPaymentCode,
                format!(
                    "{} is not accepted here (no account in the card file)",
                    code.wallet()
                ),
            )
        })?;
        let account = self.wallet_account(wallet);
        draft.card = Some(account);
        if self.used_codes.contains(code.expose()) {
            return Err(Refusal::new(
                Outcome::InvalidPaymentCode,
                format!("payment code {code} was already used"),
            ));
        }
        self.check_funds(account, amount)?;
        self.used_codes.insert(code.expose().to_string());
        self.debit(account, amount);
        Ok(Approval::new(Effect::Debit))
    }

    /// Issuer status and expiry.
    fn check_card(&self, card: usize, req: &Message, now: DateTime<Local>) -> Step<()> {
        let c = &self.cards.cards()[card];
        let status = match c.status {
            CardStatus::Ok => None,
            CardStatus::Lost => Some(Outcome::LostCard),
            CardStatus::Stolen => Some(Outcome::StolenCard),
            CardStatus::Expired => Some(Outcome::ExpiredCard),
            CardStatus::Blocked => Some(Outcome::DoNotHonour),
            CardStatus::IssuerUnavailable => Some(Outcome::IssuerUnavailable),
        };
        if let Some(outcome) = status {
            return Err(Refusal::new(
                outcome,
                format!("card status is {}", c.status),
            ));
        }
        let (year, month) = (now.year(), now.month());
        if c.expiry.is_expired_at(year, month) {
            return Err(Refusal::new(
                Outcome::ExpiredCard,
                "the card's expiry date has passed",
            ));
        }
        let read =
            match self.dialect.get_text(req, "expiry") {
                Some(text) => Some(Expiry::parse_yymm(text).map_err(|_| {
                    Refusal::new(Outcome::FormatError, "the expiry date is not YYMM")
                })?),
                None => self
                    .dialect
                    .get_text(req, "track2")
                    .and_then(|t| Track2::parse(t).ok())
                    .map(|t| t.expiry()),
            };
        if read.is_some_and(|e| e.is_expired_at(year, month)) {
            return Err(Refusal::new(
                Outcome::ExpiredCard,
                "the expiry date the terminal read has passed",
            ));
        }
        Ok(())
    }

    /// The chip's ARQC, when the request carries ICC data (field 55): the
    /// card must have EMV keys on file, the data must be readable, its
    /// amount (9F02) must be the request's, the cryptogram must verify
    /// under the card's key, and its counter (9F36) must be above any the
    /// host has seen for the card (else it is a replay). A cryptogram
    /// that fails is a decline (`do_not_honour`), unreadable data a
    /// `format_error`.
    fn check_icc(
        &mut self,
        draft: &mut Draft,
        card: usize,
        req: &Message,
        amount: Amount,
    ) -> Step<()> {
        let Some(icc) = self.dialect.get_bytes(req, "icc_data") else {
            return Ok(());
        };
        let decline = |note: String| Refusal::new(Outcome::DoNotHonour, note);
        let Some(emv) = &self.cards.cards()[card].emv else {
            return Err(decline(
                "the request carries ICC data but the card has no chip keys on file".into(),
            ));
        };
        let request = IccRequest::parse(&icc)
            .map_err(|e| Refusal::new(Outcome::FormatError, format!("ICC data (field 55): {e}")))?;
        let icc_amount = bcd_number(&request.input.amount_authorised);
        if icc_amount != Some(amount.0) {
            return Err(decline(
                "the ICC data's amount (9F02) is not the request's amount: \
                 the cryptogram was made for another transaction"
                    .into(),
            ));
        }
        match emv.key().verify(&request) {
            Ok(()) => {}
            Err(
                e @ (IssuerError::CryptogramMismatch { .. }
                | IssuerError::NotArqc(_)
                | IssuerError::IssuerApplicationData { .. }),
            ) => {
                return Err(decline(format!("chip cryptogram refused: {e}")));
            }
            Err(e) => {
                return Err(Refusal::new(
                    Outcome::FormatError,
                    format!("ICC data (field 55): {e}"),
                ));
            }
        }
        let atc = request.input.atc_value();
        if let Some(&last) = self.atcs.get(&card)
            && atc <= last
        {
            return Err(decline(format!(
                "chip cryptogram refused: its counter (ATC {atc:04X}) is not above the last one \
                 seen for the card ({last:04X}); a replayed cryptogram"
            )));
        }
        self.atcs.insert(card, atc);
        draft.icc = Some(VerifiedIcc {
            key: emv.key().clone(),
            request,
        });
        Ok(())
    }

    /// Puts the ARPC for the decision's response code into the answer's
    /// field 55 (tag 91), so the card can tell the answer is the issuer's.
    fn answer_icc(
        &self,
        icc: &VerifiedIcc,
        outcome: Outcome,
        ans: &mut Message,
        decision: &mut super::Decision,
    ) {
        let code = self.dialect.profile.code_for(outcome);
        let set = icc
            .key
            .authorise(&icc.request, code)
            .map_err(|e| e.to_string())
            .and_then(|auth| {
                self.dialect
                    .set_bytes(ans, "icc_data", &auth.to_icc_data())
                    .map_err(|e| e.to_string())
            });
        match set {
            Ok(()) => {
                let note = format!(
                    "ARQC verified ({}, ATC {:04X}); ARPC for {code}",
                    icc.key.version(),
                    icc.request.input.atc_value()
                );
                decision.note = Some(match decision.note.take() {
                    Some(n) => format!("{n}; {note}"),
                    None => note,
                });
            }
            Err(e) => tracing::warn!(error = %e, "cannot answer with an ARPC"),
        }
    }

    /// The PIN, where the card has one: deciphered from the PIN block with
    /// the session's PIN key and the card number (format detected), and
    /// counted towards the lock when wrong.
    fn check_pin(&mut self, card: usize, req: &Message, keys: &WorkingKeys) -> Step<()> {
        let c = &self.cards.cards()[card];
        if !c.has_pin() {
            return Ok(());
        }
        let account = &mut self.accounts[card];
        if account.pin_locked() {
            return Err(Refusal::new(
                Outcome::PinTriesExceeded,
                format!("PIN locked after {PIN_TRIES} wrong PINs"),
            ));
        }
        let block = self.dialect.get_bytes(req, "pin_block");
        let Some(block) = block else {
            if c.pin_required {
                return Err(Refusal::new(
                    Outcome::IncorrectPin,
                    "the card needs a PIN and none was sent",
                ));
            }
            return Ok(());
        };
        let right = pinblock::decipher(&block, c.pan().expose(), &keys.pin)
            .is_ok_and(|(_, pin)| c.pin_matches(&pin));
        if right {
            account.wrong_pins = 0;
            return Ok(());
        }
        account.wrong_pins += 1;
        if account.pin_locked() {
            Err(Refusal::new(
                Outcome::PinTriesExceeded,
                format!("wrong PIN {PIN_TRIES} times in a row; PIN locked for this run"),
            ))
        } else {
            Err(Refusal::new(
                Outcome::IncorrectPin,
                format!("wrong PIN ({} of {PIN_TRIES})", account.wrong_pins),
            ))
        }
    }

    /// Takes `amount` off the card's balance; callers have checked the
    /// funds, and the balance never goes below zero either way.
    fn debit(&mut self, card: usize, amount: Amount) {
        let balance = &mut self.accounts[card].balance;
        balance.0 = balance.0.saturating_sub(amount.0);
    }

    fn check_funds(&self, card: usize, amount: Amount) -> Step<()> {
        let available = self.accounts[card].available();
        if amount > available {
            return Err(Refusal::new(
                Outcome::InsufficientFunds,
                format!("{} requested, {} available", amount.0, available.0),
            ));
        }
        Ok(())
    }

    /// The original a completion, void or refund refers to, by RRN; it must
    /// be the same terminal's and, when a card is given, the same card's.
    fn original(
        &self,
        draft: &mut Draft,
        terminal: &str,
        card: Option<usize>,
        req: &Message,
    ) -> Step<usize> {
        let rrn = self
            .dialect
            .get_text(req, "rrn")
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .ok_or_else(|| {
                Refusal::new(Outcome::FormatError, "the request carries no original RRN")
            })?;
        let not_found = || {
            Err(Refusal::new(
                Outcome::OriginalNotFound,
                format!("no transaction with RRN {rrn} for this terminal and card"),
            ))
        };
        let Some(&o) = self.by_rrn.get(rrn) else {
            return not_found();
        };
        let orig = &self.txns[o];
        if orig.terminal != terminal || card.is_some_and(|c| orig.card != Some(c)) {
            return not_found();
        }
        draft.original = Some(o);
        Ok(o)
    }
}

/// The number in packed BCD digits; `None` if a nibble is not a digit.
fn bcd_number(bytes: &[u8]) -> Option<u64> {
    bytes.iter().try_fold(0u64, |acc, b| {
        let (hi, lo) = (u64::from(b >> 4), u64::from(b & 0x0F));
        (hi < 10 && lo < 10).then_some(acc * 100 + hi * 10 + lo)
    })
}
