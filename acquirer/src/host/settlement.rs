//! Settlement and batch upload: totals compared per (terminal, batch),
//! upload items recorded once, and the batch closed.

use till_pay::iso8583::{Message, Outcome};

use super::{Decision, Host, Refusal, Step, Totals, UploadItem};
use crate::ledger::Effect;

impl Host {
    /// Compares the terminal's totals with the host's; balanced closes the
    /// batch, out of balance is answered as the dialect's `[settlement]`
    /// says and leaves the batch open for upload.
    pub(super) fn settlement(
        &mut self,
        terminal: &str,
        batch: u32,
        req: &Message,
        ans: &mut Message,
    ) -> Step<Decision> {
        let theirs = Totals {
            debit_count: self.required_number(req, "debit_count")?,
            debit_amount: self.required_number(req, "debit_amount")?,
            credit_count: self.required_number(req, "credit_count")?,
            credit_amount: self.required_number(req, "credit_amount")?,
        };
        for element in [
            "debit_amount",
            "debit_count",
            "credit_amount",
            "credit_count",
        ] {
            if let Some(v) = self.dialect.get_text(req, element) {
                let v = v.to_string();
                self.put(ans, element, &v)?;
            }
        }
        let ours = self.totals(terminal, batch);
        let shown = format!(
            "host totals: {} debits {}, {} credits {}; terminal: {} debits {}, {} credits {}",
            ours.debit_count,
            ours.debit_amount,
            ours.credit_count,
            ours.credit_amount,
            theirs.debit_count,
            theirs.debit_amount,
            theirs.credit_count,
            theirs.credit_amount
        );
        let rules = self.dialect.profile.settlement.clone();
        if theirs == ours {
            if let Some(v) = &rules.balanced_value {
                self.put(ans, "settle_result", v)?;
            }
            self.state(terminal).close_batch(batch);
            return Ok(Decision::approved(Effect::BatchClosed)
                .with_note(format!("balanced, batch {batch} closed; {shown}")));
        }
        let oob = &rules.out_of_balance;
        let note = format!("out of balance; batch {batch} stays open for upload; {shown}");
        match (&oob.element, &oob.value, &oob.response_code) {
            (_, _, Some(code)) => Ok(Decision {
                code: Some(code.clone()),
                ..Decision::from(Refusal::new(Outcome::ReconcileError, note))
            }),
            (Some(element), Some(value), None) => {
                self.put(ans, element, value)?;
                Ok(Decision::approved(Effect::None).with_note(note))
            }
            _ => Err(Refusal::new(Outcome::ReconcileError, note)),
        }
    }

    pub(super) fn batch_upload(
        &mut self,
        terminal: &str,
        batch: u32,
        stan: u32,
        req: &Message,
    ) -> Step<Decision> {
        let amount = self.number(req, "amount")?;
        let state = self.state(terminal);
        if state.uploads.contains_key(&(batch, stan)) {
            return Ok(Decision::approved(Effect::Repeat).with_note(format!(
                "item STAN {stan} of batch {batch} was already recorded"
            )));
        }
        if let Some(r) = state.batch_refusal(batch) {
            return Err(r);
        }
        let known = state.txn_by_stan.get(&(batch, stan)).copied();
        state.uploads.insert((batch, stan), UploadItem { amount });
        let note = match known.map(|i| &self.txns[i]) {
            Some(t) if t.approved() && !t.reversed && Some(t.amount.0) == amount => {
                format!("item STAN {stan} matches the host's {}", t.kind)
            }
            Some(t) => format!(
                "item STAN {stan} differs from the host's {} ({}, amount {})",
                t.kind,
                if t.reversed {
                    "reversed"
                } else if t.approved() {
                    "approved"
                } else {
                    "declined"
                },
                t.amount.0
            ),
            None => format!("item STAN {stan} is unknown to the host"),
        };
        Ok(Decision::approved(Effect::Recorded).with_note(note))
    }
}
