//! Budgets in money: a policy checked at the last moment, like caps. Before an action with a price is
//! attempted, its cost is reserved against its flow's budget; delivered, the reservation becomes spend (and the
//! outcome carries the cost, so the spend is settled durably with it, once); failed or deferred, the
//! reservation is released. Reserving before the send, not counting after it, keeps lanes in parallel from all
//! passing the check with the last of the money: a flow never spends past its budget, whatever the concurrency.
//!
//! The ledger starts from the settled spend ([`Budgets::load`]: the `spend` table, read once the dispatcher
//! settled what the journal held at start, before any attempt). A budget is the flow's current version's; spend is the flow's over all its versions, per
//! currency, and a price in another currency than the budget's is not charged against it but refused (the
//! action is skipped, saying why), since no rate of exchange is assumed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tutti_core::money::Money;
use tutti_flows::FlowDefinitions;
use tutti_store::{FlowReader, Spend};

/// Money held for an attempt under way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub flow: String,
    pub cost: Money,
}

#[derive(Debug, Default, Clone, Copy)]
struct Ledger {
    spent: i64,
    reserved: i64,
}

pub struct Budgets {
    definitions: Arc<FlowDefinitions>,
    flows: Option<Arc<dyn FlowReader>>,
    ledgers: Mutex<HashMap<(String, String), Ledger>>,
}

impl Budgets {
    /// An empty ledger, loaded from `flows` by [`Budgets::load`].
    pub fn new(definitions: Arc<FlowDefinitions>, flows: Option<Arc<dyn FlowReader>>) -> Budgets {
        Budgets { definitions, flows, ledgers: Mutex::default() }
    }

    /// The spend settled so far, as the ledger's start (what is reserved now is kept).
    pub fn load(&self) -> Result<(), String> {
        let Some(flows) = &self.flows else { return Ok(()) };
        let settled = flows.spend(None).map_err(|e| e.to_string())?;
        self.set(settled);
        Ok(())
    }

    fn set(&self, settled: Vec<Spend>) {
        let mut ledgers = self.lock();
        for s in settled {
            ledgers.entry((s.flow, s.currency)).or_default().spent = s.micros;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Ledger>> {
        self.ledgers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Holds `cost` for an action of `flow`, or says why not: its budget would be passed, or the price is in
    /// another currency than the budget.
    pub fn reserve(&self, flow: &str, cost: Money) -> Result<Reservation, String> {
        let budget = self
            .definitions
            .get()
            .flows
            .get(flow)
            .and_then(|versions| versions.values().next_back())
            .and_then(|f| f.budget.clone());
        let mut ledgers = self.lock();
        let ledger = ledgers.entry((flow.to_owned(), cost.currency.clone())).or_default();
        if let Some(budget) = budget {
            if budget.currency != cost.currency {
                return Err(format!(
                    "over budget: the price is in {} and the flow's budget in {}; Tutti assumes no exchange rate",
                    cost.currency, budget.currency
                ));
            }
            let committed = ledger.spent + ledger.reserved;
            if committed.saturating_add(cost.micros) > budget.micros {
                return Err(format!(
                    "over budget: flow {flow} has spent {} of its {budget} (and holds {} for deliveries under way); \
                     this costs {cost}",
                    Money::new(ledger.spent, &budget.currency),
                    Money::new(ledger.reserved, &budget.currency),
                ));
            }
        }
        ledger.reserved += cost.micros;
        Ok(Reservation { flow: flow.to_owned(), cost })
    }

    /// The attempt ended: delivered, the money is spent; otherwise it is free again.
    pub fn settle(&self, reservation: &Reservation, delivered: bool) {
        let mut ledgers = self.lock();
        let key = (reservation.flow.clone(), reservation.cost.currency.clone());
        let ledger = ledgers.entry(key).or_default();
        ledger.reserved = (ledger.reserved - reservation.cost.micros).max(0);
        if delivered {
            ledger.spent += reservation.cost.micros;
        }
    }

    /// What a flow has spent so far (delivered, per currency), including what is not yet settled.
    pub fn spent(&self, flow: &str) -> Vec<Money> {
        let mut out: Vec<Money> = self
            .lock()
            .iter()
            .filter(|((f, _), l)| f == flow && l.spent > 0)
            .map(|((_, currency), l)| Money::new(l.spent, currency))
            .collect();
        out.sort_by(|a, b| a.currency.cmp(&b.currency));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tutti_flows::Definitions;

    fn budgets(budget: &str, settled: Vec<Spend>) -> Budgets {
        let b = empty(budget);
        b.set(settled);
        b
    }

    fn empty(budget: &str) -> Budgets {
        let yaml = format!(
            "flow: winback\nbudget: {budget}\ntrigger: {{ event: X }}\nsteps:\n  - id: a\n    action: log.write\n    with: {{ message: hi }}\n"
        );
        let mut defs = Definitions::default();
        defs.insert(tutti_flows::compile(&yaml, &tutti_connectors::infos()).unwrap());
        let definitions = Arc::new(FlowDefinitions::default());
        definitions.set(defs);
        Budgets::new(definitions, None)
    }

    #[test]
    fn reservations_never_pass_the_budget_and_failures_give_the_money_back() {
        let b = budgets("{ amount: 1000, currency: VND }", Vec::new());
        let price = || Money::new(300_000_000, "VND");
        let r1 = b.reserve("winback", price()).unwrap();
        let r2 = b.reserve("winback", price()).unwrap();
        let r3 = b.reserve("winback", price()).unwrap();
        // Three in flight hold 900: a fourth would pass 1,000 even before any is delivered.
        let e = b.reserve("winback", price()).unwrap_err();
        assert!(e.contains("spent 0 VND of its 1,000 VND") && e.contains("holds 900 VND"), "{e}");
        b.settle(&r1, true);
        b.settle(&r2, false);
        let r4 = b.reserve("winback", price()).unwrap();
        b.settle(&r3, true);
        b.settle(&r4, true);
        assert_eq!(b.spent("winback"), [Money::new(900_000_000, "VND")]);
        assert!(b.reserve("winback", price()).is_err());
        assert!(b.reserve("winback", Money::new(100_000_000, "VND")).is_ok(), "exactly the budget is allowed");
    }

    #[test]
    fn the_ledger_starts_from_what_was_settled_and_currencies_are_never_mixed() {
        let settled = vec![Spend { flow: "winback".into(), currency: "VND".into(), micros: 990_000_000, actions: 3 }];
        let b = budgets("{ amount: 1000, currency: VND }", settled);
        assert!(b.reserve("winback", Money::new(20_000_000, "VND")).is_err());
        let e = b.reserve("winback", Money::new(1, "USD")).unwrap_err();
        assert!(e.contains("no exchange rate"), "{e}");
        // A flow without a budget is charged, never stopped.
        assert!(b.reserve("other", Money::new(i64::MAX / 2, "USD")).is_ok());
    }
}
