//! `EmbeddedKafka`: librdkafka's mock cluster, a real Kafka wire-protocol broker on
//! 127.0.0.1, for running tickflow (and its tests) without a Kafka installation.
//!
//! The mock cluster is `!Send` and dies with the client that hosts it, so it lives on a
//! thread of its own for as long as the `EmbeddedKafka` value; dropping the value stops it.
//! Limits (librdkafka's, not ours): about 5 MiB per partition, older data silently dropped.

use anyhow::{Context, bail};
use rdkafka_sys as rdsys;
use std::ffi::{CStr, CString};
use std::sync::mpsc;
use std::thread::JoinHandle;

/// A running mock cluster. Other processes (kcat, a second tickflow) can use it too.
pub struct EmbeddedKafka {
    bootstrap: String,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Topics to create on start: `(name, partitions)`.
pub type TopicSpec = (String, i32);

impl EmbeddedKafka {
    /// Starts a cluster of `brokers` brokers with `topics` created, and consumer groups that
    /// join at once (librdkafka's default makes a new group wait 3 s).
    ///
    /// # Errors
    /// When librdkafka cannot create the cluster or a topic.
    pub fn start(brokers: i32, topics: Vec<TopicSpec>) -> anyhow::Result<Self> {
        let (ready_tx, ready_rx) = mpsc::channel::<anyhow::Result<String>>();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("embedded-kafka".into())
            .spawn(move || {
                // SAFETY: the handles are created, used and destroyed on this thread only.
                let cluster = match unsafe { NativeCluster::new(brokers, &topics) } {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(cluster.bootstrap.clone()));
                // Runs until the owner drops (or the channel breaks because it did).
                let _ = stop_rx.recv();
                drop(cluster);
            })
            .context("cannot start the embedded Kafka thread")?;
        let bootstrap = ready_rx.recv().context("embedded Kafka thread died")??;
        Ok(Self {
            bootstrap,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// The `host:port` list clients connect to.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }
}

impl Drop for EmbeddedKafka {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The raw librdkafka handles. Not `Send`: stays on the embedded thread.
struct NativeCluster {
    client: *mut rdsys::rd_kafka_t,
    cluster: *mut rdsys::rd_kafka_mock_cluster_t,
    bootstrap: String,
}

impl NativeCluster {
    /// # Safety
    /// Must be dropped on the thread that created it.
    unsafe fn new(brokers: i32, topics: &[TopicSpec]) -> anyhow::Result<Self> {
        let mut errstr = [0 as std::os::raw::c_char; 512];
        // SAFETY: plain librdkafka C API use; every pointer is checked before use.
        unsafe {
            let conf = rdsys::rd_kafka_conf_new();
            // The hosting client has no bootstrap servers by design: silence its warning.
            let (key, value) = (c"log_level", c"3");
            rdsys::rd_kafka_conf_set(
                conf,
                key.as_ptr(),
                value.as_ptr(),
                errstr.as_mut_ptr(),
                errstr.len(),
            );
            let client = rdsys::rd_kafka_new(
                rdsys::rd_kafka_type_t::RD_KAFKA_PRODUCER,
                conf,
                errstr.as_mut_ptr(),
                errstr.len(),
            );
            if client.is_null() {
                bail!(
                    "rd_kafka_new: {}",
                    CStr::from_ptr(errstr.as_ptr()).to_string_lossy()
                );
            }
            let cluster = rdsys::rd_kafka_mock_cluster_new(client, brokers);
            if cluster.is_null() {
                rdsys::rd_kafka_destroy(client);
                bail!("rd_kafka_mock_cluster_new failed");
            }
            let me = Self {
                client,
                cluster,
                bootstrap: CStr::from_ptr(rdsys::rd_kafka_mock_cluster_bootstraps(cluster))
                    .to_string_lossy()
                    .into_owned(),
            };
            rdsys::rd_kafka_mock_group_initial_rebalance_delay_ms(cluster, 0);
            for (name, partitions) in topics {
                let cname = CString::new(name.as_str())?;
                let err =
                    rdsys::rd_kafka_mock_topic_create(cluster, cname.as_ptr(), *partitions, 1);
                if err != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                    bail!("cannot create topic {name}: {err:?}");
                }
            }
            Ok(me)
        }
    }
}

impl Drop for NativeCluster {
    fn drop(&mut self) {
        // SAFETY: both handles were created by `new` on this thread and are destroyed once.
        unsafe {
            rdsys::rd_kafka_mock_cluster_destroy(self.cluster);
            rdsys::rd_kafka_destroy(self.client);
        }
    }
}
