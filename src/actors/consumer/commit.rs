//! The commit protocol: checkpoints of the symbols fed since the last commit, every output,
//! dead letter and forward confirmed durable, then the offsets; a failed flush redoes
//! everything since the last commit.

use super::*;

impl ConsumeLoop {
    /// Checkpoints the symbols fed since the last commit, waits until everything is
    /// durable, commits offsets. On a failed flush, nothing is committed and everything
    /// since the last commit is done again.
    pub(super) async fn commit(&mut self, groups: &mut HashMap<Symbol, Vec<TickRecord>>) {
        let touched: Vec<Symbol> = self.feeds.symbols().collect();
        let checkpoints: Vec<_> = touched
            .iter()
            .filter_map(|s| {
                let request = self.supervisors.addrs.get(s)?.send(TakeCheckpoint);
                Some(async move { (*s, request.await) })
            })
            .collect();
        let mut checkpointed = true;
        for (symbol, r) in futures_util::future::join_all(checkpoints).await {
            match r {
                Ok(Ok(())) => {}
                Ok(Err(StageError::Restarted)) => {
                    // It went back to its checkpoint on its own: rebuild it by replaying.
                    tracing::warn!(%symbol, "symbol back at its checkpoint; replaying its partitions");
                    self.replay_symbol(symbol, groups);
                    checkpointed = false;
                }
                Ok(Err(e)) => {
                    tracing::error!(%symbol, error = %format!("{e:#}"), "checkpoint failed; not committing");
                    checkpointed = false;
                }
                Err(e) => {
                    // Its mailbox is gone: start it again from its checkpoint by replaying
                    // (otherwise no commit could ever succeed again).
                    tracing::error!(%symbol, error = %format!("{e:#}"), "symbol unreachable; not committing, replaying its partitions");
                    self.supervisors.forget(symbol);
                    self.replay_symbol(symbol, groups);
                    checkpointed = false;
                }
            }
        }
        if !checkpointed {
            // The symbols stay in `feeds`: they are asked again next time.
            return;
        }
        let outputs = self.supervisors.cx.outputs.flush().await;
        let letters = self.producer.flush().await.map_err(|e| e.to_string());
        if let Err(e) = outputs.and(letters) {
            tracing::error!(error = %format!("{e:#}"), "not everything since the last commit is durable; not committing, doing it again");
            self.metrics.commits_failed.inc();
            self.redo_since_commit(&touched, groups);
            return;
        }
        let aligner = &self.aligner;
        let plan = self.ledger.to_commit(|p| aligner.oldest_held(p));
        if !plan.is_empty() {
            let mut tpl = TopicPartitionList::new();
            for (p, next) in &plan {
                if let Err(e) = tpl.add_partition_offset(topics::RAW, *p, Offset::Offset(*next)) {
                    tracing::error!(error = %format!("{e:#}"), "bad offset");
                }
            }
            if let Err(e) = self.consumer.commit(&tpl, CommitMode::Async) {
                tracing::warn!(error = %format!("{e:#}"), "offset commit failed; will retry with the next one");
            }
        }
        // Everything before these positions is in the checkpoints and durable, whether or
        // not the asynchronous commit lands: replays can start there.
        self.ledger.committed(&plan);
        let position = |p: i32| plan.iter().find(|(q, _)| *q == p).map(|(_, o)| *o);
        self.quarantine.committed(position);
        self.feeds.clear();
    }

    /// A flush failed: outputs, dead letters or forwards since the last commit may be
    /// missing. The symbols fed since then go back to their checkpoints and every partition
    /// is read again from the last commit, with its malformed messages dead-lettered again
    /// (a duplicate letter is better than a lost one).
    pub(super) fn redo_since_commit(
        &mut self,
        touched: &[Symbol],
        groups: &mut HashMap<Symbol, Vec<TickRecord>>,
    ) {
        for symbol in touched {
            if self.supervisors.contains(*symbol) {
                // do_send: the reset must not be dropped, and a full mailbox drains.
                self.supervisors.get(*symbol).do_send(Reset);
            }
        }
        let owned: Vec<i32> = self.ledger.owned().collect();
        for p in owned {
            self.ledger.forget_seen(p);
            self.replay(p, groups);
        }
    }
}
