//! Loads in flight: one [`Flight`] per key being loaded, shared by every caller of that key.
//!
//! A flight is registered in [`SingleFlight`] while its load runs. Callers that miss join the
//! registered flight instead of loading. The flight is *settled* exactly once with an
//! [`Outcome`]; settling removes it from the registry and, if it is still the key's current
//! flight, stores the value, both under the key's shard lock. `invalidate`, `insert` and
//! `clear` fence a flight by removing it from the registry (or, for `clear`, by moving to a new
//! generation): a fenced flight still answers the callers already waiting on it but can no
//! longer store, and later callers never join it.

use std::any::Any;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::pin::pin;
use std::sync::{Arc, OnceLock, Weak};

use parking_lot::{Mutex, MutexGuard};
use tokio::sync::Notify;

/// How a flight ended, as every caller waiting on it sees it.
pub(crate) enum Outcome<V> {
    Value(V),
    /// The loader's error, type-erased so that flights of one key can be shared by callers with
    /// different error types; a caller whose error type differs loads again itself.
    Error(Arc<dyn Any + Send + Sync>),
    /// A batch loader's map had no entry for the key.
    Missing,
    /// The load was dropped before it finished (its driver was cancelled, or the runtime that
    /// ran it shut down). Waiters load again.
    Abandoned,
    /// The loader panicked, with this message.
    Panicked(Arc<str>),
    /// The loader failed and its key's expired value answers instead (stale-on-error): given
    /// to the waiters, not stored.
    Stale(V),
}

impl<V: Clone> Clone for Outcome<V> {
    fn clone(&self) -> Self {
        match self {
            Outcome::Value(value) => Outcome::Value(value.clone()),
            Outcome::Error(error) => Outcome::Error(Arc::clone(error)),
            Outcome::Missing => Outcome::Missing,
            Outcome::Abandoned => Outcome::Abandoned,
            Outcome::Panicked(message) => Outcome::Panicked(Arc::clone(message)),
            Outcome::Stale(value) => Outcome::Stale(value.clone()),
        }
    }
}

/// A batch window a queued flight belongs to: when its deadline passes, whoever waits on the
/// flight nudges the window, so the batch goes out even if the caller that opened it is gone.
pub(crate) struct WindowTicket {
    /// Weak: a window whose loader is gone drops its queued keys, which settles them as
    /// abandoned, instead of living on through the flights that point at it.
    pub(crate) window: Weak<dyn WindowTrigger>,
    pub(crate) id: u64,
    pub(crate) deadline: tokio::time::Instant,
}

pub(crate) trait WindowTrigger: Send + Sync {
    /// Sends window `id` if it is still open.
    fn fire(self: Arc<Self>, id: u64);
}

/// One load of one key.
pub(crate) struct Flight<V> {
    /// The cache generation the load began in; a `clear` since makes it stale.
    pub(crate) generation: u64,
    outcome: OnceLock<Outcome<V>>,
    settled: Notify,
    ticket: Option<WindowTicket>,
}

impl<V: Clone> Flight<V> {
    pub(crate) fn new(generation: u64, ticket: Option<WindowTicket>) -> Arc<Self> {
        Arc::new(Flight {
            generation,
            outcome: OnceLock::new(),
            settled: Notify::new(),
            ticket,
        })
    }

    /// Publishes the outcome to every waiter. Only the first call has an effect.
    pub(crate) fn complete(&self, outcome: Outcome<V>) {
        if self.outcome.set(outcome).is_ok() {
            self.settled.notify_waiters();
        }
    }

    /// Waits for the outcome. Cancel-safe: dropping a waiter affects no one else.
    pub(crate) async fn wait(&self) -> Outcome<V> {
        if let Some(ticket) = &self.ticket {
            tokio::select! {
                outcome = self.settled() => return outcome,
                () = tokio::time::sleep_until(ticket.deadline) => {
                    if let Some(window) = ticket.window.upgrade() {
                        window.fire(ticket.id);
                    }
                }
            }
        }
        self.settled().await
    }

    async fn settled(&self) -> Outcome<V> {
        loop {
            let mut notified = pin!(self.settled.notified());
            // Register before looking, so a `complete` between the look and the await is seen.
            notified.as_mut().enable();
            if let Some(outcome) = self.outcome.get() {
                return outcome.clone();
            }
            notified.await;
        }
    }
}

/// The flights of the keys that hash to one shard.
pub(crate) type Shard<K, V> = HashMap<K, Arc<Flight<V>>>;

/// The registry of flights, sharded by key hash so that loads of different keys do not
/// contend on one lock.
pub(crate) struct SingleFlight<K, V> {
    shards: Box<[Mutex<Shard<K, V>>]>,
    hasher: RandomState,
}

const SHARDS: usize = 32;

impl<K, V> SingleFlight<K, V>
where
    K: Hash + Eq,
{
    pub(crate) fn new() -> Self {
        SingleFlight {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
        }
    }

    /// Locks the shard that holds `key`'s flight. Never held across an await.
    pub(crate) fn shard<Q>(&self, key: &Q) -> MutexGuard<'_, Shard<K, V>>
    where
        Q: Hash + ?Sized,
    {
        // The low bits pick the shard; the map inside uses its own hasher.
        #[allow(clippy::cast_possible_truncation)]
        let index = self.hasher.hash_one(key) as usize % SHARDS;
        self.shards[index].lock()
    }
}

/// Extracts a readable message from a panic payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> Arc<str> {
    if let Some(message) = payload.downcast_ref::<&str>() {
        Arc::from(*message)
    } else if let Some(message) = payload.downcast_ref::<String>() {
        Arc::from(message.as_str())
    } else {
        Arc::from("Box<dyn Any>")
    }
}

/// Re-raises, in a caller that waited on a load, the panic of the task that drove it.
pub(crate) fn propagate_panic(message: &str) -> ! {
    panic!("the cache loader this call was waiting on panicked: {message}")
}
