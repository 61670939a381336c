//! [`Shared`]: the state of one fleet, shared by its handles, its caches and its link task.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use cache_core::fleet::{FleetReceiver, TierError};
use parking_lot::{Mutex, RwLock};
use redis::aio::MultiplexedConnection;
use tokio::sync::{Notify, watch};

use crate::keys::{Keys, Marker};
use crate::outbox::{Outbox, Versions};
use crate::status::{FleetStatus, Link};
use crate::tier::Scripts;
use crate::waiters::Waiters;

/// A fleet's settings, fixed by its builder.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) namespace: String,
    pub(crate) max_staleness: Duration,
    pub(crate) heartbeat: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) max_queued: usize,
    pub(crate) max_backoff: Duration,
    /// How long a shared key's version outlives its last invalidation.
    pub(crate) version_ttl: Duration,
}

/// How far the outbox got, and whether the fleet is heard: what deliveries wait on.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Progress {
    pub(crate) acknowledged: u64,
    pub(crate) connected: bool,
}

pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) keys: Keys,
    channels: RwLock<HashMap<Arc<str>, Arc<Channel>>>,
    pub(crate) outbox: Mutex<Outbox>,
    /// Woken when a message is queued.
    pub(crate) outbox_ready: Notify,
    pub(crate) progress: watch::Sender<Progress>,
    /// Whether the process hears the fleet: read by every cache store (the staleness cap).
    connected: AtomicBool,
    link: Mutex<Link>,
    pub(crate) stats: Stats,
    shutdown: AtomicBool,
    pub(crate) shutdown_signal: Notify,
    pub(crate) scripts: Scripts,
    pub(crate) waiters: Waiters,
    /// Opens the shared tier's connections, one per thread that calls it.
    client: redis::Client,
    /// Tells this fleet's connections apart in each thread's list.
    id: u64,
}

thread_local! {
    /// This thread's connection to each fleet, for its shared tier's requests: driven by this
    /// thread's runtime, so a request and its answer never wait for another thread to be
    /// scheduled (what a redis-rs user's own connection gives them).
    static CALLER_CONNECTIONS: std::cell::RefCell<Vec<(u64, MultiplexedConnection)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

#[derive(Default)]
pub(crate) struct Stats {
    ever_connected: AtomicBool,
    pub(crate) received: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) flushes: AtomicU64,
    /// Shared tier writes (stores, releases) that failed.
    pub(crate) tier_errors: AtomicU64,
}

/// The caches of one name in this process.
pub(crate) struct Channel {
    pub(crate) name: Arc<str>,
    receivers: RwLock<Vec<Weak<dyn FleetReceiver>>>,
    /// What its invalidations move in Redis besides telling the processes: a shared
    /// cache's key versions, or agent-cache's resource versions.
    versions: Mutex<Versions>,
}

impl Channel {
    pub(crate) fn set_versions(&self, versions: Versions) {
        *self.versions.lock() = versions;
    }

    pub(crate) fn versions(&self) -> Versions {
        *self.versions.lock()
    }

    pub(crate) fn subscribe(&self, receiver: Weak<dyn FleetReceiver>) {
        let mut receivers = self.receivers.write();
        receivers.retain(|r| r.strong_count() > 0);
        receivers.push(receiver);
    }

    fn each(&self, apply: impl Fn(&dyn FleetReceiver)) {
        for receiver in self.receivers.read().iter() {
            if let Some(receiver) = receiver.upgrade() {
                apply(&*receiver);
            }
        }
    }
}

impl Shared {
    pub(crate) fn new(config: Config, client: redis::Client) -> Self {
        static IDS: AtomicU64 = AtomicU64::new(0);
        let keys = Keys::new(&config.namespace, &writer_token());
        let outbox = Outbox::new(config.max_queued);
        let (progress, _) = watch::channel(Progress {
            acknowledged: 0,
            connected: false,
        });
        Shared {
            keys,
            channels: RwLock::new(HashMap::new()),
            outbox: Mutex::new(outbox),
            outbox_ready: Notify::new(),
            progress,
            connected: AtomicBool::new(false),
            link: Mutex::new(Link::Degraded {
                since: Instant::now(),
                reason: "connecting".into(),
            }),
            stats: Stats::default(),
            shutdown: AtomicBool::new(false),
            shutdown_signal: Notify::new(),
            scripts: Scripts::new(),
            waiters: Waiters::default(),
            client,
            id: IDS.fetch_add(1, Ordering::Relaxed),
            config,
        }
    }

    /// This thread's connection for the shared tier, opened on first use. One that failed is
    /// forgotten by [`failed`](Self::failed).
    pub(crate) async fn caller_connection(&self) -> Result<MultiplexedConnection, TierError> {
        let id = self.id;
        let known = CALLER_CONNECTIONS.with(|all| {
            all.borrow()
                .iter()
                .find(|(fleet, _)| *fleet == id)
                .map(|(_, connection)| connection.clone())
        });
        if let Some(connection) = known {
            return Ok(connection);
        }
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.config.connect_timeout))
            .set_response_timeout(Some(self.config.connect_timeout));
        let connection = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|error| TierError(error.to_string()))?;
        CALLER_CONNECTIONS.with(|all| all.borrow_mut().push((id, connection.clone())));
        Ok(connection)
    }

    /// A shared tier request failed: this thread's connection is dropped (the next request
    /// opens another), and the error is what the cache sees.
    pub(crate) fn failed(&self, error: redis::RedisError) -> TierError {
        let id = self.id;
        CALLER_CONNECTIONS.with(|all| all.borrow_mut().retain(|(fleet, _)| *fleet != id));
        TierError(error.to_string())
    }

    /// The caches named `name` in this process.
    pub(crate) fn channel(&self, name: &str) -> Arc<Channel> {
        if let Some(channel) = self.channels.read().get(name) {
            return Arc::clone(channel);
        }
        let mut channels = self.channels.write();
        let channel = channels.entry(name.into()).or_insert_with(|| {
            Arc::new(Channel {
                name: name.into(),
                receivers: RwLock::new(Vec::new()),
                versions: Mutex::new(Versions::None),
            })
        });
        Arc::clone(channel)
    }

    /// Whether the process hears the fleet now.
    pub(crate) fn is_connected(&self) -> bool {
        self.connected.load(Ordering::SeqCst)
    }

    /// Applies one key that Redis reported written under the tracked prefix.
    pub(crate) fn apply(&self, key: &[u8]) {
        self.stats.received.fetch_add(1, Ordering::Relaxed);
        let channel = |name: &str| self.channels.read().get(name).cloned();
        match self.keys.parse(key) {
            Some(Marker::Invalidate { channel: name, key }) => {
                if let Some(channel) = channel(name) {
                    channel.each(|receiver| receiver.invalidate(key));
                }
            }
            Some(Marker::Clear { channel: name }) => {
                if let Some(channel) = channel(name) {
                    channel.each(|receiver| receiver.clear());
                }
            }
            None => {}
        }
    }

    /// Drops every entry of every cache of the fleet: invalidations may have been missed.
    pub(crate) fn flush_all(&self) {
        self.stats.flushes.fetch_add(1, Ordering::Relaxed);
        let channels: Vec<Arc<Channel>> = self.channels.read().values().cloned().collect();
        for channel in channels {
            channel.each(|receiver| receiver.flush());
        }
    }

    /// The process hears the fleet (again): tracking is on, so flush what it may have missed
    /// while it did not, then lift the staleness cap.
    pub(crate) fn set_connected(&self) {
        self.flush_all();
        self.connected.store(true, Ordering::SeqCst);
        let was = std::mem::replace(
            &mut *self.link.lock(),
            Link::Connected {
                since: Instant::now(),
            },
        );
        if self.stats.ever_connected.swap(true, Ordering::Relaxed) {
            self.stats.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        if let Link::Degraded { since, .. } = was {
            tracing::info!(
                target: "cache_redis",
                namespace = %self.config.namespace,
                degraded_for_ms = since.elapsed().as_millis() as u64,
                "fleet connected: invalidations flow both ways"
            );
        }
        self.progress.send_modify(|p| p.connected = true);
    }

    /// The process cannot hear the fleet: cap every entry stored from now on, then flush,
    /// in this order (a cache reads its generation before the cap, so an entry stored after
    /// the flush is always capped).
    pub(crate) fn set_degraded(&self, reason: String) {
        self.connected.store(false, Ordering::SeqCst);
        {
            let mut link = self.link.lock();
            if let Link::Degraded { reason: old, .. } = &mut *link {
                // Already degraded (and flushed): a failed reconnect only updates the reason.
                *old = reason;
                return;
            }
            *link = Link::Degraded {
                since: Instant::now(),
                reason: reason.clone(),
            };
        }
        self.flush_all();
        self.progress.send_modify(|p| p.connected = false);
        tracing::warn!(
            target: "cache_redis",
            namespace = %self.config.namespace,
            reason = %reason,
            max_staleness_ms = self.config.max_staleness.as_millis() as u64,
            "fleet degraded: caches flushed, entries capped at max_staleness, invalidations queued"
        );
    }

    /// Publishes the outbox's progress to the deliveries waiting on it.
    pub(crate) fn publish_progress(&self, acknowledged: u64) {
        self.progress.send_modify(|p| p.acknowledged = acknowledged);
    }

    pub(crate) fn status(&self) -> FleetStatus {
        let (queued, acknowledged, issued, overflows) = {
            let outbox = self.outbox.lock();
            (
                outbox.len(),
                outbox.acknowledged(),
                outbox.issued(),
                outbox.overflows,
            )
        };
        FleetStatus {
            link: self.link.lock().clone(),
            queued,
            issued,
            acknowledged,
            received: self.stats.received.load(Ordering::Relaxed),
            reconnects: self.stats.reconnects.load(Ordering::Relaxed),
            flushes: self.stats.flushes.load(Ordering::Relaxed),
            overflows,
            shared_write_errors: self.stats.tier_errors.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn shut_down(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        self.shutdown_signal.notify_one();
    }

    pub(crate) fn is_shut_down(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }
}

/// A name unique to this fleet instance among all of the fleet's: the process id, when the
/// instance was made, and how many instances this process made before it.
fn writer_token() -> String {
    static INSTANCES: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let instance = INSTANCES.fetch_add(1, Ordering::Relaxed);
    format!("{:x}-{nanos:x}-{instance:x}", std::process::id())
}
