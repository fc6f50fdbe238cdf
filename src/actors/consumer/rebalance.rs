//! Partitions coming and going: the librdkafka callbacks (rebalances, statistics) and what
//! the consumer does on assignment (restore every symbol checkpointed there) and revocation
//! (retire its symbols, replay what they were fed from elsewhere).

use super::*;

/// What the rebalance callback reports to the loop.
pub(super) enum RebalanceEvent {
    Assigned(Vec<i32>),
    Revoked(Vec<i32>),
}

/// librdkafka callbacks: rebalances (to start and retire symbols) and statistics (lag, and
/// messages lost before they were committed).
pub(super) struct PipelineContext {
    pub(super) events: mpsc::UnboundedSender<RebalanceEvent>,
    pub(super) metrics: Metrics,
}

impl ClientContext for PipelineContext {
    /// Client errors, but for partition-EOF events, which are not errors here (the
    /// alignment asks for them: `config::pipeline_consumer`).
    fn error(&self, error: KafkaError, reason: &str) {
        if !config::is_partition_eof(&error) {
            tracing::error!(%error, reason, "Kafka client error");
        }
    }

    fn stats(&self, stats: Statistics) {
        let Some(topic) = stats.topics.get(topics::RAW) else {
            return;
        };
        for (id, p) in &topic.partitions {
            if *id < 0 {
                continue;
            }
            if p.consumer_lag >= 0 {
                self.metrics
                    .consumer_lag
                    .with_label_values(&[&id.to_string()])
                    .set(p.consumer_lag);
            }
        }
    }
}

impl ConsumerContext for PipelineContext {
    fn pre_rebalance(&self, _: &rdkafka::consumer::BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            let parts = list.elements().iter().map(|e| e.partition()).collect();
            // Unbounded but rare: one event per rebalance.
            let _ = self.events.send(RebalanceEvent::Revoked(parts));
        }
    }

    fn post_rebalance(&self, _: &rdkafka::consumer::BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(list) = rebalance {
            let parts = list.elements().iter().map(|e| e.partition()).collect();
            let _ = self.events.send(RebalanceEvent::Assigned(parts));
        }
    }
}

impl ConsumeLoop {
    /// Applies the rebalances the callbacks reported.
    pub(super) async fn handle_rebalances(
        &mut self,
        groups: &mut HashMap<Symbol, Vec<TickRecord>>,
    ) {
        while let Ok(event) = self.rebalances.try_recv() {
            self.on_rebalance(event, groups).await;
        }
    }

    pub(super) async fn on_rebalance(
        &mut self,
        event: RebalanceEvent,
        groups: &mut HashMap<Symbol, Vec<TickRecord>>,
    ) {
        match event {
            RebalanceEvent::Assigned(parts) => self.assigned(&parts, groups).await,
            RebalanceEvent::Revoked(parts) => self.revoked(&parts, groups),
        }
    }

    /// Takes `parts` on: notes where their logs end (a checkpoint past the end belongs to a
    /// replaced log), and restores every symbol checkpointed on them, so that quiet symbols
    /// close their bars on time after a failover.
    pub(super) async fn assigned(
        &mut self,
        parts: &[i32],
        groups: &mut HashMap<Symbol, Vec<TickRecord>>,
    ) {
        // No supervisor should exist for a symbol homed on a partition arriving now (a
        // revocation retires them, `dispatch` never starts one for a home read elsewhere).
        // One that did would hold a stale state — another instance may have checkpointed
        // and committed further since — so it is retired as a revocation would, and the
        // symbol restores the newest checkpoint below.
        let stale = self.retire_homed_on(parts, groups);
        for &p in parts {
            self.ledger.assign(p);
            self.aligner.assign(p);
            self.paused.remove(&p);
        }
        let (consumer, partitions, assigned) =
            (self.consumer.clone(), self.partitions, parts.to_vec());
        let (ends, committed) = tokio::task::spawn_blocking(move || {
            let ends: Vec<(i32, i64)> = (0..partitions)
                .filter_map(|p| {
                    consumer
                        .fetch_watermarks(topics::RAW, p, WATERMARK_TIMEOUT)
                        .map(|(_, high)| (p, high))
                        .map_err(|e| tracing::warn!(partition = p, error = %format!("{e:#}"), "cannot read the partition's end"))
                        .ok()
                })
                .collect();
            let mut tpl = TopicPartitionList::new();
            for p in &assigned {
                tpl.add_partition(topics::RAW, *p);
            }
            let committed: Vec<(i32, i64)> = consumer
                .committed_offsets(tpl, WATERMARK_TIMEOUT)
                .map(|list| {
                    list.elements()
                        .iter()
                        .filter_map(|e| match e.offset() {
                            Offset::Offset(o) => Some((e.partition(), o)),
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_else(|e| {
                    tracing::warn!(error = %format!("{e:#}"), "cannot read the committed offsets");
                    Vec::new()
                });
            (ends, committed)
        })
        .await
        .unwrap_or_default();
        self.supervisors.cx.view.set_log_ends(ends);
        // Reading starts at the commit: a first offset past it means the broker dropped what
        // lay between.
        for &p in parts {
            match committed.iter().find(|(q, _)| *q == p) {
                Some(&(_, offset)) => self.ledger.expect(p, offset),
                // Never committed: on an embedded broker the log is all ours from 0.
                None if self.settings.whole_log => self.ledger.expect(p, 0),
                None => {}
            }
        }
        let restored = match self.supervisors.cx.store.checkpointed_symbols().await {
            Ok(symbols) => symbols
                .into_iter()
                .filter(|s| parts.contains(&home_partition(*s, self.partitions)))
                .map(|s| self.supervisors.get(s))
                .count(),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "cannot list checkpointed symbols; quiet ones start with their next trade");
                0
            }
        };
        if stale > 0 {
            tracing::warn!(
                ?parts,
                stale,
                "retired supervisors of symbols homed on partitions this instance did not read"
            );
        }
        tracing::info!(?parts, restored, stale, "partitions assigned");
    }

    /// Gives `parts` up: their symbols retire (their new owner resumes them from the
    /// checkpoints), and the partitions they were also fed from are replayed, so their
    /// trades there since the last commit are forwarded to the new owner.
    pub(super) fn revoked(&mut self, parts: &[i32], groups: &mut HashMap<Symbol, Vec<TickRecord>>) {
        self.retire_homed_on(parts, groups);
        for &p in parts {
            self.aligner.revoke(p);
            self.ledger.revoke(p);
            self.quarantine.forget_partition(p);
            self.paused.remove(&p);
            for ticks in groups.values_mut() {
                ticks.retain(|r| r.at.partition != p);
            }
        }
        tracing::info!(?parts, "partitions revoked");
    }

    /// Retires the supervisors of the symbols homed on `parts`, drops their trades read but
    /// not yet sent, and replays the other partitions that fed them since the last commit
    /// or hold trades of them back (`routing::handover`): read again, those trades go to
    /// the symbols' owner. Returns how many were retired.
    fn retire_homed_on(
        &mut self,
        parts: &[i32],
        groups: &mut HashMap<Symbol, Vec<TickRecord>>,
    ) -> usize {
        let running = self.supervisors.symbols();
        let handover = routing::handover(
            parts,
            self.partitions,
            &running,
            &mut self.feeds,
            &self.aligner,
        );
        for &symbol in &handover.retire {
            self.supervisors.retire(symbol);
            self.quarantine.forget_symbol(symbol);
        }
        let partitions = self.partitions;
        groups.retain(|s, _| !parts.contains(&home_partition(*s, partitions)));
        for p in handover.replay {
            self.replay(p, groups);
        }
        handover.retire.len()
    }
}
