//! Single-flight loading: how a caller that missed joins a load in flight or leads one.

use std::any::Any;
use std::borrow::Borrow;
use std::future::Future;
use std::hash::Hash;
use std::panic::{AssertUnwindSafe, resume_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::FutureExt;

use crate::cache::Inner;
use crate::flight::{Flight, Outcome, Shard, panic_message, propagate_panic};
use crate::metrics::Event;

/// The "error" of an `optionally_get_with` loader that found nothing: shared with the callers
/// waiting on that load (who return `None` too), never counted as a load error, never cached.
pub(crate) struct Absent;

/// How a load ended, for the caller that drove it.
pub(crate) enum Led<V, E> {
    Value(V),
    /// The value came from the fleet's shared tier: no loader ran.
    Shared(V),
    Error(Arc<E>),
    /// The loader panicked: its payload, to resume in the driving caller.
    Panicked(Box<dyn Any + Send>),
}

/// What a caller that missed does next, decided under the key's shard lock.
pub(crate) enum Join<V> {
    /// The value was stored after the caller's first look.
    Ready(V),
    /// Wait on the load in flight.
    Wait(Arc<Flight<V>>),
    /// Lead this new flight, already registered.
    Lead(Arc<Flight<V>>),
}

impl<K, V> Inner<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Joins the current flight of `key`, or registers a new one made by `make`, which is given
    /// the current generation and runs under the shard lock.
    pub(crate) fn join_or_lead(
        &self,
        key: &K,
        make: impl FnOnce(u64) -> Arc<Flight<V>>,
    ) -> Join<V> {
        let generation = self.generation();
        if let Some(joined) = self.join(key, generation, &self.flights.shard(key)) {
            return joined;
        }
        // Leading: clone the key with no lock held (a `String` key allocates), then look
        // again, since another caller may have started or finished a load meanwhile.
        let owned = key.clone();
        let mut shard = self.flights.shard(key);
        if let Some(joined) = self.join(key, generation, &shard) {
            return joined;
        }
        let flight = make(generation);
        shard.insert(owned, Arc::clone(&flight));
        Join::Lead(flight)
    }

    /// The value stored for `key`, or its load of `generation` in flight. Called under the
    /// shard lock that `settle` stores under, which makes "one load per key" exact: a caller
    /// that missed just before a load settled takes its value.
    fn join(&self, key: &K, generation: u64, shard: &Shard<K, V>) -> Option<Join<V>> {
        if let Some(value) = self.store.get(key, generation) {
            return Some(Join::Ready(value));
        }
        shard
            .get(key)
            .filter(|flight| flight.generation == generation)
            .map(|flight| Join::Wait(Arc::clone(flight)))
    }

    /// Ends `flight`: stores the value (for `ttl`) if the flight is still the key's current
    /// one and no `clear` came since it began, then wakes every waiter.
    pub(crate) fn settle(
        &self,
        key: &K,
        flight: &Arc<Flight<V>>,
        outcome: Outcome<V>,
        ttl: Option<Duration>,
    ) {
        // What the store removed, delivered to the eviction listener once the shard is free.
        let (mut replaced, mut unstored) = (None, None);
        {
            let mut shard = self.flights.shard(key);
            match shard.remove_entry(key) {
                Some((owned, current)) if Arc::ptr_eq(&current, flight) => {
                    if let Outcome::Value(value) = &outcome
                        && flight.generation == self.generation()
                    {
                        // Capped after the generation check: see `insert_with_ttl`.
                        let stored = self.stored(value.clone(), flight.generation, ttl);
                        // The registry's own copy of the key: no clone under the lock.
                        replaced = Some(self.store.insert(owned, stored));
                        // A `clear` that came between the check and the insert: lookups
                        // ignore the entry already (wrong generation); drop it too.
                        if flight.generation != self.generation() {
                            unstored = Some(self.store.remove(key));
                        }
                    }
                }
                // Fenced: a newer flight has the key; leave it registered.
                Some((key, newer)) => {
                    shard.insert(key, newer);
                }
                None => {}
            }
        }
        drop((replaced, unstored));
        flight.complete(outcome);
    }

    /// Stops the flight of `key`, if any, from storing its value, and lets later callers start
    /// a fresh one.
    pub(crate) fn fence<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.flights.shard(key).remove(key);
    }

    /// Loads `key` in the calling task; if this caller is dropped mid-load, a waiter starts over.
    pub(crate) async fn load_inline<F, E>(self: &Arc<Self>, key: K, init: F) -> Result<V, Arc<E>>
    where
        F: Future<Output = Result<V, E>>,
        E: Send + Sync + 'static,
    {
        self.load_inline_from(key, init)
            .await
            .map(|(value, _)| value)
    }

    /// [`load_inline`](Self::load_inline), also telling whether the value came from the
    /// fleet's shared tier (for warmup, which skips keys the fleet already has).
    pub(crate) async fn load_inline_from<F, E>(
        self: &Arc<Self>,
        key: K,
        init: F,
    ) -> Result<(V, bool), Arc<E>>
    where
        F: Future<Output = Result<V, E>>,
        E: Send + Sync + 'static,
    {
        let flight = loop {
            match self.join_or_lead(&key, |generation| Flight::new(generation, None)) {
                Join::Ready(value) => return Ok((value, false)),
                Join::Wait(flight) => {
                    if let Some(result) = waited(flight.wait().await) {
                        return result.map(|value| (value, false));
                    }
                }
                Join::Lead(flight) => break flight,
            }
        };
        let guard = LoadGuard::new(Arc::clone(self), key, flight);
        match self.lead(guard, init).await {
            Led::Value(value) => Ok((value, false)),
            Led::Shared(value) => Ok((value, true)),
            Led::Error(error) => Err(error),
            Led::Panicked(payload) => resume_unwind(payload),
        }
    }

    /// Runs the load of the flight `guard` owns and settles it: through the fleet's shared
    /// tier when the cache has one it can use now, else `init` here.
    pub(crate) async fn lead<F, E>(self: &Arc<Self>, guard: LoadGuard<K, V>, init: F) -> Led<V, E>
    where
        F: Future<Output = Result<V, E>>,
        E: Send + Sync + 'static,
    {
        let shared = self
            .fleet
            .as_ref()
            .and_then(|fleet| fleet.shared_key(guard.key()));
        match shared {
            Some((shared, key)) => crate::fleet::shared::lead(self, shared, key, guard, init).await,
            None => run_loader(guard, init, |_: &V| {}, || {}).await,
        }
    }

    /// Loads `key` in a task of its own that no caller owns: dropping any caller, the one that
    /// started it included, neither strands nor restarts it.
    pub(crate) async fn load_detached<F, E>(self: &Arc<Self>, key: K, init: F) -> Result<V, Arc<E>>
    where
        F: Future<Output = Result<V, E>> + Send + 'static,
        E: Send + Sync + 'static,
    {
        let mut init = Some(init);
        loop {
            let flight = match self.join_or_lead(&key, |generation| Flight::new(generation, None)) {
                Join::Ready(value) => return Ok(value),
                Join::Wait(flight) => flight,
                Join::Lead(flight) => {
                    let guard = LoadGuard::new(Arc::clone(self), key.clone(), Arc::clone(&flight));
                    let Some(init) = init.take() else {
                        // Only reachable when the runtime that ran this caller's own load shut
                        // down under it while this caller lives on elsewhere.
                        drop(guard);
                        panic!("a detached cache load was dropped with the runtime that ran it");
                    };
                    let inner = Arc::clone(self);
                    // The outcome reaches every caller through the flight; a panic was caught
                    // and settled, so this task has nothing to resume.
                    let task = async move { drop(inner.lead(guard, init).await) };
                    match tokio::runtime::Handle::try_current() {
                        Ok(runtime) => drop(runtime.spawn(task)),
                        // Outside tokio there is nowhere to detach to: load in place.
                        Err(_) => task.await,
                    }
                    flight
                }
            };
            if let Some(result) = waited(flight.wait().await) {
                return result;
            }
        }
    }
}

/// What a caller that waited on a flight returns, or `None` to try again.
fn waited<V, E>(outcome: Outcome<V>) -> Option<Result<V, Arc<E>>>
where
    E: Send + Sync + 'static,
{
    match outcome {
        Outcome::Value(value) | Outcome::Stale(value) => Some(Ok(value)),
        // An error of another type belongs to a caller with another loader: load again.
        Outcome::Error(error) => error.downcast::<E>().ok().map(Err),
        Outcome::Missing | Outcome::Abandoned => None,
        Outcome::Panicked(message) => propagate_panic(&message),
    }
}

/// Owns a flight's right to settle. Dropped unsettled (its load cancelled, or its task dropped
/// with a runtime), it settles the flight as abandoned so waiters never hang.
pub(crate) struct LoadGuard<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    inner: Arc<Inner<K, V>>,
    key: K,
    flight: Arc<Flight<V>>,
    armed: bool,
    /// Whether a failure may be answered with the key's expired value (stale-on-error); not
    /// for a background reload, whose failure keeps the live value anyway.
    stale_ok: bool,
}

impl<K, V> LoadGuard<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub(crate) fn new(inner: Arc<Inner<K, V>>, key: K, flight: Arc<Flight<V>>) -> Self {
        LoadGuard {
            inner,
            key,
            flight,
            armed: true,
            stale_ok: true,
        }
    }

    /// A guard whose load's failure is never answered with a stale value.
    pub(crate) fn without_stale(mut self) -> Self {
        self.stale_ok = false;
        self
    }

    /// The value to answer this load's failure with, if the cache serves stale values on
    /// error and the key still has one within its window (an invalidation or clear dropped
    /// it, so none then).
    fn stale(&self) -> Option<V> {
        self.inner.policy.as_ref()?.stale_on_error?;
        if !self.stale_ok {
            return None;
        }
        self.inner.store.stale(&self.key, self.flight.generation)
    }

    pub(crate) fn key(&self) -> &K {
        &self.key
    }

    pub(crate) fn settle(mut self, outcome: Outcome<V>) {
        self.armed = false;
        let ttl = match &outcome {
            Outcome::Value(value) => self.inner.ttl_of(&self.key, value),
            _ => None,
        };
        self.inner.settle(&self.key, &self.flight, outcome, ttl);
    }

    /// Settles with a value read from the fleet's shared tier, which has `ttl` left.
    pub(crate) fn settle_stored(mut self, value: V, ttl: Option<Duration>) {
        self.armed = false;
        self.inner
            .settle(&self.key, &self.flight, Outcome::Value(value), ttl);
    }
}

/// Runs `init` for the flight `guard` owns and settles it with what it gives; `on_value`
/// sees the value first, `on_failure` runs when the loader fails or panics.
pub(crate) async fn run_loader<K, V, F, E>(
    guard: LoadGuard<K, V>,
    init: F,
    on_value: impl FnOnce(&V),
    on_failure: impl FnOnce(),
) -> Led<V, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    F: Future<Output = Result<V, E>>,
    E: Send + Sync + 'static,
{
    let counters = Arc::clone(&guard.inner.counters);
    counters.count(Event::Load);
    match AssertUnwindSafe(init).catch_unwind().await {
        Ok(Ok(value)) => {
            on_value(&value);
            guard.settle(Outcome::Value(value.clone()));
            Led::Value(value)
        }
        Ok(Err(error)) => {
            // `optionally_get_with`'s `None`: not a failure, and not cached.
            let absent = (&error as &dyn Any).is::<Absent>();
            if !absent {
                counters.count(Event::LoadError);
                if let Some(value) = guard.stale() {
                    on_failure();
                    if let Some(policy) = &guard.inner.policy {
                        policy.stale_served.fetch_add(1, Ordering::Relaxed);
                    }
                    guard.settle(Outcome::Stale(value.clone()));
                    return Led::Value(value);
                }
            }
            on_failure();
            let error = Arc::new(error);
            guard.settle(Outcome::Error(Arc::clone(&error) as _));
            Led::Error(error)
        }
        Err(payload) => {
            counters.count(Event::LoadError);
            on_failure();
            guard.settle(Outcome::Panicked(panic_message(&*payload)));
            Led::Panicked(payload)
        }
    }
}

impl<K, V> Drop for LoadGuard<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn drop(&mut self) {
        if self.armed {
            self.inner
                .settle(&self.key, &self.flight, Outcome::Abandoned, None);
        }
    }
}
