//! The registry of the supervisors of the symbols processed here.

use super::*;

/// The supervisors of the symbols processed here, spread over the worker arbiters.
pub(super) struct Supervisors {
    pub(super) addrs: HashMap<Symbol, Addr<SymbolSupervisor>>,
    arbiters: Vec<ArbiterHandle>,
    next: usize,
    /// What every supervisor shares (settings, store, outputs, the consumer's view).
    pub(super) cx: SupervisorContext,
}

impl Supervisors {
    pub(super) fn new(cx: SupervisorContext, arbiters: Vec<ArbiterHandle>) -> Self {
        Self {
            addrs: HashMap::new(),
            arbiters,
            next: 0,
            cx,
        }
    }

    /// The supervisor of `symbol`, started on first use (round-robin over the arbiters).
    pub(super) fn get(&mut self, symbol: Symbol) -> Addr<SymbolSupervisor> {
        if let Some(a) = self.addrs.get(&symbol) {
            return a.clone();
        }
        let arbiter = &self.arbiters[self.next % self.arbiters.len()];
        self.next += 1;
        let cx = self.cx.clone();
        let addr = actix::Supervisor::start_in_arbiter(arbiter, move |_| {
            SymbolSupervisor::new(symbol, cx)
        });
        self.addrs.insert(symbol, addr.clone());
        addr
    }

    pub(super) fn contains(&self, symbol: Symbol) -> bool {
        self.addrs.contains_key(&symbol)
    }

    /// Retires `symbol`'s supervisor (its home partition moved away).
    pub(super) fn retire(&mut self, symbol: Symbol) {
        if let Some(addr) = self.addrs.remove(&symbol) {
            // do_send: one message per symbol lost, and it must not be dropped.
            addr.do_send(Retire);
        }
    }

    /// Forgets an unreachable supervisor (a new one starts on next use).
    pub(super) fn forget(&mut self, symbol: Symbol) {
        self.addrs.remove(&symbol);
    }

    pub(super) fn symbols(&self) -> Vec<Symbol> {
        self.addrs.keys().copied().collect()
    }
}
