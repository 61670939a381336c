//! DataLoader-style batching fused with the cache.
//!
//! A [`BatchLoader`] gathers the keys that miss within one window (or until `max_batch_size`
//! keys are waiting) and sends them to the batch function in one call. Each waiting key is an
//! ordinary flight of the cache, so single loads and batch loads of one key coalesce, and
//! `invalidate`/`clear` fence batch loads exactly like single ones.
//!
//! No timer task owns a window. Every caller waiting on a queued key sleeps until the window's
//! deadline itself and the first to wake sends the batch, so a window never depends on one
//! runtime staying alive (the Python original hangs once the event loop that started its
//! timer has closed). The batch call itself runs in a task of its own; if that task is dropped
//! with its runtime, its keys are settled as abandoned and their waiters queue them again.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::mem;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Weak};

use futures_util::FutureExt;
use parking_lot::Mutex;

use crate::cache::Inner;
use crate::fleet::shared::Batch as Shared;
use crate::flight::{Flight, Outcome, WindowTicket, WindowTrigger, panic_message, propagate_panic};
use crate::load::{Join, LoadGuard};
use crate::metrics::Event;

type BatchFuture<K, V, E> = Pin<Box<dyn Future<Output = Result<HashMap<K, V>, E>> + Send>>;
type BatchFn<K, V, E> = dyn Fn(Vec<K>) -> BatchFuture<K, V, E> + Send + Sync;

/// Loads keys through a cache, many at a time. Made by
/// [`AsyncCache::batch_loader`](crate::AsyncCache::batch_loader); cheap to clone.
///
/// ```
/// use std::collections::HashMap;
/// use cache_core::AsyncCache;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let cache = AsyncCache::<u64, String>::new();
/// let users = cache.batch_loader(|ids: Vec<u64>| async move {
///     // One query for the whole window: SELECT ... WHERE id IN (...)
///     Ok::<_, std::io::Error>(ids.into_iter().filter(|id| *id != 0).map(|id| (id, format!("user-{id}"))).collect::<HashMap<_, _>>())
/// });
/// let (a, b, missing) = tokio::join!(users.load(1), users.load(2), users.load(0));
/// assert_eq!(a.unwrap().as_deref(), Some("user-1"));
/// assert_eq!(b.unwrap().as_deref(), Some("user-2"));
/// assert_eq!(missing.unwrap(), None); // absent from the map: not cached
/// assert_eq!(cache.metrics().loads, 1); // one batch call
/// # }
/// ```
pub struct BatchLoader<K, V, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    window: Arc<BatchWindow<K, V, E>>,
}

impl<K, V, E> Clone for BatchLoader<K, V, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn clone(&self) -> Self {
        BatchLoader {
            window: Arc::clone(&self.window),
        }
    }
}

impl<K, V, E> fmt::Debug for BatchLoader<K, V, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchLoader")
            .field("window", &self.window.inner.config.batch_window)
            .field("max_batch_size", &self.window.inner.config.max_batch_size)
            .finish_non_exhaustive()
    }
}

/// The open window of one batch loader and what it needs to send it.
struct BatchWindow<K, V, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    inner: Arc<Inner<K, V>>,
    load: Box<BatchFn<K, V, E>>,
    open: Mutex<OpenWindow<K, V>>,
}

struct OpenWindow<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Bumped each time a window is sent; a stale ticket fires nothing.
    id: u64,
    deadline: tokio::time::Instant,
    queued: Vec<LoadGuard<K, V>>,
}

impl<K, V, E> BatchLoader<K, V, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    pub(crate) fn new<F, Fut>(inner: Arc<Inner<K, V>>, load: F) -> Self
    where
        F: Fn(Vec<K>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<HashMap<K, V>, E>> + Send + 'static,
    {
        BatchLoader {
            window: Arc::new(BatchWindow {
                inner,
                load: Box::new(move |keys| Box::pin(load(keys))),
                open: Mutex::new(OpenWindow {
                    id: 0,
                    deadline: tokio::time::Instant::now(),
                    queued: Vec::new(),
                }),
            }),
        }
    }

    /// The value of `key`: from the cache, or from the next batch call.
    ///
    /// `Ok(None)` when the batch function's map has no entry for `key` (nothing is cached);
    /// `Err` with the batch's error, shared by every key of that batch. Must be called within
    /// a tokio runtime with the time driver enabled.
    ///
    /// # Panics
    ///
    /// If the batch function panicked, every caller waiting on that batch panics too.
    pub async fn load(&self, key: K) -> Result<Option<V>, Arc<E>> {
        let inner = &self.window.inner;
        if let Some(value) = inner.lookup(&key) {
            return Ok(Some(value));
        }
        loop {
            let mut full = None;
            let flight = match inner.join_or_lead(&key, |generation| {
                self.window.enqueue(&key, generation, &mut full)
            }) {
                Join::Ready(value) => return Ok(Some(value)),
                Join::Wait(flight) | Join::Lead(flight) => flight,
            };
            if let Some(batch) = full {
                Arc::clone(&self.window).send(batch);
            }
            match flight.wait().await {
                Outcome::Value(value) | Outcome::Stale(value) => return Ok(Some(value)),
                Outcome::Missing => return Ok(None),
                Outcome::Error(error) => {
                    if let Ok(error) = error.downcast::<E>() {
                        return Err(error);
                    }
                }
                Outcome::Abandoned => {}
                Outcome::Panicked(message) => propagate_panic(&message),
            }
        }
    }
}

impl<K, V, E> BatchWindow<K, V, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    /// Queues `key` in the open window (called under the key's shard lock) and returns its
    /// flight. If that fills the window, the batch to send is put in `full`.
    fn enqueue(
        self: &Arc<Self>,
        key: &K,
        generation: u64,
        full: &mut Option<Vec<LoadGuard<K, V>>>,
    ) -> Arc<Flight<V>> {
        let config = &self.inner.config;
        let mut open = self.open.lock();
        if open.queued.is_empty() {
            open.deadline = tokio::time::Instant::now() + config.batch_window;
        }
        let ticket = WindowTicket {
            window: Arc::downgrade(self) as Weak<dyn WindowTrigger>,
            id: open.id,
            deadline: open.deadline,
        };
        let flight = Flight::new(generation, Some(ticket));
        let guard = LoadGuard::new(Arc::clone(&self.inner), key.clone(), Arc::clone(&flight));
        open.queued.push(guard);
        if open.queued.len() >= config.max_batch_size {
            *full = Some(open.take());
        }
        flight
    }

    /// Calls the batch function for `batch` in a task of its own and settles every key.
    fn send(self: Arc<Self>, batch: Vec<LoadGuard<K, V>>) {
        let task = async move {
            let counters = Arc::clone(&self.inner.counters);
            let mut seen = HashSet::with_capacity(batch.len());
            // A key fenced and queued again can sit in one window twice: send it once.
            let keys: Vec<K> = batch
                .iter()
                .map(LoadGuard::key)
                .filter(|key| seen.insert(*key))
                .cloned()
                .collect();
            // A shared cache asks the fleet's tier first, in one request; the batch function
            // gets only the keys it did not have.
            let mut shared = Shared::read(&self.inner, &keys).await;
            let rest: Vec<K> = keys
                .into_iter()
                .filter(|key| !shared.found.contains_key(key))
                .collect();
            let result = if rest.is_empty() {
                Ok(Ok(HashMap::new()))
            } else {
                counters.count(Event::Load);
                AssertUnwindSafe(async { (self.load)(rest).await })
                    .catch_unwind()
                    .await
            };
            let from_tier = |guard: LoadGuard<K, V>, shared: &mut Shared<K, V>| match shared
                .found
                .get(guard.key())
                .cloned()
            {
                Some((value, ttl)) => {
                    guard.settle_stored(value, ttl);
                    None
                }
                None => Some(guard),
            };
            match result {
                Ok(Ok(values)) => {
                    shared.store(&self.inner, &values);
                    for guard in batch {
                        let Some(guard) = from_tier(guard, &mut shared) else {
                            continue;
                        };
                        let outcome = match values.get(guard.key()) {
                            Some(value) => Outcome::Value(value.clone()),
                            None => Outcome::Missing,
                        };
                        guard.settle(outcome);
                    }
                }
                Ok(Err(error)) => {
                    counters.count(Event::LoadError);
                    let error: Arc<dyn std::any::Any + Send + Sync> = Arc::new(error);
                    for guard in batch {
                        if let Some(guard) = from_tier(guard, &mut shared) {
                            guard.settle(Outcome::Error(Arc::clone(&error)));
                        }
                    }
                }
                Err(payload) => {
                    counters.count(Event::LoadError);
                    let message = panic_message(&*payload);
                    for guard in batch {
                        if let Some(guard) = from_tier(guard, &mut shared) {
                            guard.settle(Outcome::Panicked(Arc::clone(&message)));
                        }
                    }
                }
            }
        };
        // Waiters call this from within tokio (they sleep on its timer).
        drop(tokio::spawn(task));
    }
}

impl<K, V> OpenWindow<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn take(&mut self) -> Vec<LoadGuard<K, V>> {
        self.id += 1;
        mem::take(&mut self.queued)
    }
}

impl<K, V, E> WindowTrigger for BatchWindow<K, V, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    fn fire(self: Arc<Self>, id: u64) {
        let batch = {
            let mut open = self.open.lock();
            if open.id != id || open.queued.is_empty() {
                return;
            }
            open.take()
        };
        self.send(batch);
    }
}
