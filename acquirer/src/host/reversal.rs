//! Reversals: found by (terminal, batch, original STAN), applied once,
//! always approved so the terminal can stop sending them.

use till_pay::iso8583::{Message, TxnKind};

use super::{Decision, Host, Step};
use crate::ledger::Effect;

impl Host {
    /// Undoes the request a reversal names, once; repeats and reversals of
    /// requests that were never seen or not approved are approved too.
    pub(super) fn reversal(
        &mut self,
        terminal: &str,
        batch: u32,
        stan: u32,
        req: &Message,
    ) -> Step<Decision> {
        let original_stan = if self.dialect.profile.reversal.new_stan {
            self.required_u32(req, "original_stan")?
        } else {
            stan
        };
        let key = (batch, original_stan);
        let state = self.state(terminal);
        state.used_stans.insert((batch, stan));
        // A request that never arrived must not be applied if it turns up
        // after its reversal: its STAN now counts as used.
        state.used_stans.insert(key);
        if !state.reversed.insert(key) {
            return Ok(Decision::approved(Effect::Repeat).with_note(format!(
                "STAN {original_stan} of batch {batch} was already reversed"
            )));
        }
        let closed = state.closed.contains(&batch);
        let Some(&index) = state.txn_by_stan.get(&key) else {
            return Ok(Decision::approved(Effect::None).with_note(format!(
                "no request with STAN {original_stan} in batch {batch}; nothing to undo"
            )));
        };
        if closed {
            return Ok(Decision::approved(Effect::None)
                .with_note(format!("batch {batch} is already settled; nothing undone")));
        }
        let effect = self.undo(index);
        let note = match effect {
            Effect::Reversed => {
                format!("{} with STAN {original_stan} undone", self.txns[index].kind)
            }
            _ => format!(
                "{} with STAN {original_stan} was not approved; nothing to undo",
                self.txns[index].kind
            ),
        };
        Ok(Decision::approved(effect).with_note(note))
    }

    /// Undoes an approved transaction's effect on balances and holds.
    fn undo(&mut self, index: usize) -> Effect {
        let txn = self.txns[index].clone();
        if !txn.approved() || txn.reversed {
            return Effect::None;
        }
        self.txns[index].reversed = true;
        let Some(card) = txn.card else {
            return Effect::Reversed;
        };
        let amount = txn.amount.0;
        match txn.kind {
            TxnKind::Sale | TxnKind::Advice if !txn.voided => {
                self.accounts[card].balance.0 += amount;
            }
            TxnKind::Preauth if !txn.voided && !txn.completed => {
                let acc = &mut self.accounts[card];
                acc.held.0 = acc.held.0.saturating_sub(amount);
            }
            TxnKind::Completion => {
                if !txn.voided {
                    self.accounts[card].balance.0 += amount;
                }
                if let Some(p) = txn.original
                    && !self.txns[p].reversed
                {
                    self.txns[p].completed = false;
                    self.accounts[card].held.0 += self.txns[p].amount.0;
                }
            }
            TxnKind::PreauthVoid => {
                if let Some(p) = txn.original
                    && !self.txns[p].reversed
                {
                    self.txns[p].voided = false;
                    self.accounts[card].held.0 += self.txns[p].amount.0;
                }
            }
            TxnKind::Void | TxnKind::CompletionVoid => {
                if let Some(o) = txn.original {
                    self.txns[o].voided = false;
                    let acc = &mut self.accounts[card];
                    acc.balance.0 = acc.balance.0.saturating_sub(amount);
                }
            }
            TxnKind::Refund => {
                let acc = &mut self.accounts[card];
                acc.balance.0 = acc.balance.0.saturating_sub(amount);
                if let Some(o) = txn.original {
                    let r = &mut self.txns[o].refunded;
                    r.0 = r.0.saturating_sub(amount);
                }
            }
            _ => {}
        }
        Effect::Reversed
    }
}
