//! One round of the consumer: each symbol's trades handed over (in one message, or one by
//! one to find a trade a symbol keeps failing on), the outcomes settled, failed symbols
//! replayed from the last commit.

use super::*;

/// A round handed to the symbols: each symbol's trades and the answer to come.
pub(super) type Dispatched = Vec<(Symbol, Arc<[TickRecord]>, Delivery)>;

/// How a symbol's trades of a round went out.
pub(super) enum Delivery {
    /// All in one message (the normal case).
    Batch(actix::dev::Request<SymbolSupervisor, TickBatch>),
    /// One message per trade, each answered before the next goes (to find the trade a symbol
    /// keeps failing on); stops at the first failure.
    OneByOne(futures_util::future::LocalBoxFuture<'static, Result<(), Failure>>),
}

/// Why a symbol's trades of a round were not processed.
pub(super) enum Failure {
    /// The supervisor's mailbox is gone (its arbiter stopped): not the trades' fault.
    Unreachable(String),
    /// The supervisor went back to its checkpoint for a reason other than these trades (a
    /// subscriber or child failed, or it restarted on its own): replay, blame nothing.
    NotTheTicks(String),
    /// Domain code panicked on these trades; `at` is the trade when they went one by one.
    Stage { error: String, at: Option<Seq> },
}

impl Failure {
    fn of(e: StageError, at: Option<Seq>) -> Self {
        match e {
            StageError::Panicked(_) => Self::Stage {
                error: e.to_string(),
                at,
            },
            _ => Self::NotTheTicks(e.to_string()),
        }
    }
}

impl Delivery {
    async fn outcome(self) -> Result<(), Failure> {
        match self {
            Self::Batch(request) => match request.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(Failure::of(e, None)),
                Err(e) => Err(Failure::Unreachable(e.to_string())),
            },
            Self::OneByOne(ticks) => ticks.await,
        }
    }
}

/// Sends `ticks[..=through]` to `addr` one at a time, each after the previous one succeeded,
/// then the rest in one message.
pub(super) async fn one_by_one(
    addr: Addr<SymbolSupervisor>,
    ticks: Arc<[TickRecord]>,
    through: usize,
) -> Result<(), Failure> {
    let split = (through + 1).min(ticks.len());
    for r in &ticks[..split] {
        match addr.send(TickBatch(Arc::from([*r]))).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(Failure::of(e, Some(r.at))),
            Err(e) => return Err(Failure::Unreachable(e.to_string())),
        }
    }
    if split < ticks.len() {
        match addr.send(TickBatch(ticks[split..].into())).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(Failure::of(e, None)),
            Err(e) => return Err(Failure::Unreachable(e.to_string())),
        }
    }
    Ok(())
}

impl ConsumeLoop {
    /// Hands each symbol its trades of the round now (into its mailbox, or waiting for room
    /// when the mailbox is full); [`Self::settle`] collects the outcomes.
    pub(super) fn dispatch(&mut self, groups: &mut HashMap<Symbol, Vec<TickRecord>>) -> Dispatched {
        let mut sends = Vec::with_capacity(groups.len());
        let mut misrouted = BTreeSet::new();
        for (symbol, ticks) in groups.drain() {
            if ticks.is_empty() {
                continue;
            }
            if !self.ledger.owns(home_partition(symbol, self.partitions)) {
                // Never start a supervisor for a symbol whose home another instance reads:
                // it would build from a stale checkpoint beside the owner's. A revocation
                // drops such trades (`routing::handover`); should any still come here,
                // their partitions are read again and the trades forwarded to the owner.
                tracing::warn!(%symbol, trades = ticks.len(), "trades of a symbol whose home partition is read elsewhere; reading their partitions again to forward them");
                misrouted.extend(ticks.iter().map(|r| r.at.partition));
                continue;
            }
            let addr = self.supervisors.get(symbol);
            let batch: Arc<[TickRecord]> = ticks.into();
            let delivery = match self.quarantine.delivery(symbol, &batch) {
                Mode::OneByOne { through } => {
                    Delivery::OneByOne(Box::pin(one_by_one(addr, batch.clone(), through)))
                }
                Mode::Batch => Delivery::Batch(addr.send(TickBatch(batch.clone()))),
            };
            sends.push((symbol, batch, delivery));
        }
        for p in misrouted {
            self.replay(p, groups);
        }
        sends
    }

    /// Waits for a dispatched round; a symbol that failed is restarted and replayed.
    pub(super) async fn settle(
        &mut self,
        sends: Dispatched,
        groups: &mut HashMap<Symbol, Vec<TickRecord>>,
    ) {
        let outcomes = futures_util::future::join_all(sends.into_iter().map(
            |(symbol, batch, delivery)| async move { (symbol, batch, delivery.outcome().await) },
        ))
        .await;
        let mut blameless = false;
        for (symbol, batch, result) in outcomes {
            let Err(failure) = result else { continue };
            if !self.supervisors.contains(symbol) {
                // Retired meanwhile: its new owner resumes from the checkpoint.
                continue;
            }
            match failure {
                Failure::Stage { error, at } => {
                    match self.quarantine.on_failure(symbol, &batch, at) {
                        Verdict::Replay => {
                            tracing::error!(%symbol, error, "symbol failed; restarting it from its checkpoint and replaying its partitions")
                        }
                        Verdict::ReplayOneByOne => {
                            tracing::error!(%symbol, error, "symbol failed again on the same trades; replaying them one by one")
                        }
                        Verdict::DeadLetter(dead) => {
                            tracing::error!(%symbol, error, trades = dead.len(), "found the trades the symbol fails on; dead-lettering them");
                            for r in &dead {
                                self.dead_letter_tick(symbol, r, &error).await;
                            }
                        }
                    }
                    self.replay_symbol(symbol, groups);
                }
                Failure::NotTheTicks(e) => {
                    tracing::warn!(%symbol, error = e, "symbol back at its checkpoint; replaying its partitions");
                    self.replay_symbol(symbol, groups);
                    blameless = true;
                }
                Failure::Unreachable(e) => {
                    // The mailbox is gone (its arbiter stopped): not the trades' fault. A new
                    // supervisor resumes from the checkpoint; nothing is dead-lettered.
                    tracing::warn!(%symbol, error = e, "symbol unreachable; starting it again and replaying its partitions");
                    self.supervisors.forget(symbol);
                    self.replay_symbol(symbol, groups);
                }
            }
        }
        if blameless {
            self.blameless.wait().await;
        } else {
            self.blameless.reset();
        }
    }

    /// Replays every partition `symbol` was fed from since the last commit, and its home.
    pub(super) fn replay_symbol(
        &mut self,
        symbol: Symbol,
        groups: &mut HashMap<Symbol, Vec<TickRecord>>,
    ) {
        let mut parts: BTreeSet<i32> = self.feeds.of(symbol).iter().copied().collect();
        parts.insert(home_partition(symbol, self.partitions));
        for p in parts {
            self.replay(p, groups);
        }
    }

    /// Reads `partition` again from the last commit (or from where this consumer started
    /// it). Its trades read for the next round or held back are dropped: they come again.
    pub(super) fn replay(&mut self, partition: i32, groups: &mut HashMap<Symbol, Vec<TickRecord>>) {
        if !self.ledger.owns(partition) {
            return;
        }
        let offset = self
            .ledger
            .replay_from(partition)
            .map_or(Offset::Beginning, Offset::Offset);
        // A zero timeout makes the seek asynchronous (nothing blocks the arbiter); messages
        // fetched from the old position are discarded by librdkafka all the same.
        if let Err(e) = self
            .consumer
            .seek(topics::RAW, partition, offset, Duration::ZERO)
        {
            // Reading goes on from where it was: keep what was read.
            tracing::error!(error = %format!("{e:#}"), partition, "cannot seek back for replay");
            return;
        }
        self.ledger.rewind(partition);
        self.aligner.rewind(partition);
        for ticks in groups.values_mut() {
            ticks.retain(|r| r.at.partition != partition);
        }
    }
}
