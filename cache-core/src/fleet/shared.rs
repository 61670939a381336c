//! The shared tier (L2): values that live in the fleet's server too, so that a key is loaded
//! once for the whole fleet.
//!
//! A fleet cache with a [`SharedTier`] (`fleet.cache("users").shared()` in `cache-redis`)
//! loads like this, after the local single flight has made one caller per process the leader
//! of the key:
//!
//! 1. it asks the tier for the value, or for the fleet-wide lease of the key when there is
//!    none ([`SharedTier::read_or_lease`], one request);
//! 2. a value becomes the local entry, its remaining time to live the local TTL;
//! 3. with the lease, it runs the loader and hands the value to the tier, which stores it only
//!    if the key's version is the one the lease was taken at (an invalidation anywhere since
//!    moves the version, so a slow load can never put back what it removed) and wakes the
//!    processes waiting for it;
//! 4. when another process holds the lease, it waits until that value arrives (woken, not
//!    polling) or the lease expires, and asks again. A leader whose loader fails releases the
//!    lease, so one waiter (not all) takes it next; a leader that dies lets it expire.
//!
//! Any error or timeout of the tier (at most [`SharedTier::timeout`] a request) and a fleet
//! that cannot be heard make the call load locally, as a cache without a tier does, counted
//! in `fleet_errors`. A value that does not decode (its type changed between deploys) is a
//! miss, counted in `decode_errors`, and is overwritten. A value larger than
//! [`SharedTier::max_value_bytes`] is kept locally only, counted in `l2_oversize`.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cache::Inner;
use crate::load::{Led, LoadGuard, run_loader};
use crate::metrics::Event;

/// The shared tier of one fleet cache, as cache-core sees it (implemented by `cache-redis`).
/// Keys and values are bytes here: cache-core encodes them.
pub trait SharedTier: Send + Sync + 'static {
    /// Whether the tier can be used now: `false` while the fleet cannot be heard.
    fn is_available(&self) -> bool;

    /// The longest one request to the tier may take before the call goes on without it.
    fn timeout(&self) -> Duration;

    /// The longest a call waits for other processes' loads of its key, in all.
    fn max_wait(&self) -> Duration;

    /// The largest encoded value the tier stores.
    fn max_value_bytes(&self) -> usize;

    /// The value of `key`, or else the fleet-wide lease to load it, or else a wait for the
    /// process that holds the lease. `discard`: the value stored could not be decoded; delete
    /// it and take the lease.
    fn read_or_lease(
        &self,
        key: &[u8],
        discard: bool,
    ) -> BoxFuture<'static, Result<ReadOrLease, TierError>>;

    /// Stores `value` for `ttl` (`None`: no expiry) if the key's version is still the one
    /// `lease` was taken at, releases the lease and wakes the processes waiting for the key.
    /// Returns at once: the store runs on its own.
    fn store(&self, key: &[u8], lease: Lease, value: Vec<u8>, ttl: Option<Duration>);

    /// Releases `lease` without storing (the load failed), waking one waiting process.
    fn release(&self, key: &[u8], lease: Lease);

    /// The values of many keys at once (a batch loader's window), with the version of each
    /// missing one for [`store_many`](Self::store_many).
    fn read_many(&self, keys: Vec<Vec<u8>>) -> BoxFuture<'static, Result<Vec<Found>, TierError>>;

    /// Stores many values at once, each only if its key's version is still the one read.
    /// Returns at once.
    fn store_many(&self, entries: Vec<(Vec<u8>, Version, Vec<u8>)>, ttl: Option<Duration>);
}

/// What [`SharedTier::read_or_lease`] found.
pub enum ReadOrLease {
    /// The key's value.
    Value(Read),
    /// No value: this process holds the fleet's lease and loads it.
    Leased(Lease),
    /// Another process holds the lease: resolves when its value arrives or its lease ends.
    Held(Waiting),
}

/// A value read from the tier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Read {
    /// The encoded value.
    pub value: Vec<u8>,
    /// How long it has left; `None` never expires.
    pub ttl: Option<Duration>,
}

/// What [`SharedTier::read_many`] found for one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// Its value, if the tier has one.
    pub read: Option<Read>,
    /// The key's version, to store a value loaded now under.
    pub version: Version,
}

/// A key's version in the tier, opaque: moved by every invalidation of the key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Version(pub Vec<u8>);

/// The fleet-wide right to load one key, taken at one version of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// Identifies the holder.
    pub token: Vec<u8>,
    /// The key's version when the lease was taken.
    pub version: Version,
    /// Whether a value stored under the key was discarded to take the lease because it could
    /// not be read as this cache's (another schema version): counted as undecodable.
    pub discarded: bool,
}

/// A wait for another process's load, from [`ReadOrLease::Held`].
pub struct Waiting(BoxFuture<'static, ()>);

impl Waiting {
    /// A wait that ends when `until` does.
    pub fn new(until: impl Future<Output = ()> + Send + 'static) -> Self {
        Waiting(Box::pin(until))
    }
}

impl Future for Waiting {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

impl fmt::Debug for Waiting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Waiting")
    }
}

/// Why the tier could not answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TierError(pub String);

impl fmt::Display for TierError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TierError {}

/// How values are encoded for the shared tier. Implement it to plug in another format.
///
/// The default, [`Postcard`], was chosen by measurement (`BENCHMARKS.md`): the smallest
/// encoding of the formats compared, and among the fastest both ways.
pub trait ValueCodec: Send + Sync + 'static {
    /// `value`'s bytes, or `None` if it cannot be encoded (it is then kept locally only).
    fn encode<V: Serialize>(value: &V) -> Option<Vec<u8>>;

    /// The value `bytes` encode, or `None` if they do not decode as a `V` (a miss).
    fn decode<V: DeserializeOwned>(bytes: &[u8]) -> Option<V>;
}

/// [postcard](https://docs.rs/postcard): compact, with a documented stable wire format.
#[derive(Clone, Copy, Debug, Default)]
pub struct Postcard;

impl ValueCodec for Postcard {
    fn encode<V: Serialize>(value: &V) -> Option<Vec<u8>> {
        postcard::to_allocvec(value).ok()
    }

    fn decode<V: DeserializeOwned>(bytes: &[u8]) -> Option<V> {
        postcard::from_bytes(bytes).ok()
    }
}

/// A cache's shared tier and how its values cross to it.
pub(crate) struct Shared<V> {
    pub(crate) tier: Arc<dyn SharedTier>,
    pub(crate) encode: fn(&V) -> Option<Vec<u8>>,
    pub(crate) decode: fn(&[u8]) -> Option<V>,
}

impl<V: Serialize + DeserializeOwned> Shared<V> {
    pub(crate) fn new<C: ValueCodec>(tier: Arc<dyn SharedTier>) -> Self {
        Shared {
            tier,
            encode: C::encode::<V>,
            decode: C::decode::<V>,
        }
    }
}

impl<V> Shared<V> {
    /// Whether a call can go through the tier now: the fleet is heard, and the caller runs in
    /// a tokio runtime (whose timer bounds every request).
    pub(crate) fn usable(&self) -> bool {
        self.tier.is_available() && tokio::runtime::Handle::try_current().is_ok()
    }

    /// `value`'s bytes for the tier, or `None` (counted) when it cannot or should not go.
    pub(crate) fn encoded(
        &self,
        value: &V,
        counters: &crate::metrics::Counters,
    ) -> Option<Vec<u8>> {
        let bytes = (self.encode)(value)?;
        if bytes.len() > self.tier.max_value_bytes() {
            counters.count(Event::L2Oversize);
            return None;
        }
        Some(bytes)
    }
}

/// What the shared tier had for the keys of one batch.
pub(crate) struct Batch<K, V> {
    /// The values found, decoded, with the time each has left.
    pub(crate) found: HashMap<K, (V, Option<Duration>)>,
    /// Each key not found: its bytes and its version, to store a value loaded now under.
    missing: Vec<(K, Vec<u8>, Version)>,
}

impl<K, V> Batch<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Nothing from the tier: every key goes to the batch function, nothing is stored.
    pub(crate) fn none() -> Self {
        Batch {
            found: HashMap::new(),
            missing: Vec::new(),
        }
    }

    /// Reads `keys` with one request (the batch loader's window). A failed or late request
    /// is counted and treated as [`none`](Self::none).
    pub(crate) async fn read(inner: &Inner<K, V>, keys: &[K]) -> Self {
        let Some((shared, encode)) = inner.fleet.as_ref().and_then(|fleet| fleet.shared()) else {
            return Self::none();
        };
        let encoded: Vec<Vec<u8>> = keys.iter().map(encode).collect();
        let tier = &shared.tier;
        let founds =
            match tokio::time::timeout(tier.timeout(), tier.read_many(encoded.clone())).await {
                Ok(Ok(founds)) if founds.len() == keys.len() => founds,
                _ => {
                    inner.counters.count(Event::FleetError);
                    return Self::none();
                }
            };
        let mut batch = Self::none();
        for ((key, bytes), found) in keys.iter().zip(encoded).zip(founds) {
            let value = found.read.and_then(|read| {
                let value = (shared.decode)(&read.value);
                if value.is_none() {
                    inner.counters.count(Event::DecodeError);
                }
                Some((value?, read.ttl))
            });
            match value {
                Some(value) => {
                    inner.counters.count(Event::L2Hit);
                    batch.found.insert(key.clone(), value);
                }
                None => {
                    inner.counters.count(Event::L2Miss);
                    batch.missing.push((key.clone(), bytes, found.version));
                }
            }
        }
        batch
    }

    /// Writes back, in one request, the values the batch function loaded for missing keys.
    pub(crate) fn store(&self, inner: &Inner<K, V>, loaded: &HashMap<K, V>) {
        let Some((shared, _)) = inner.fleet.as_ref().and_then(|fleet| fleet.shared()) else {
            return;
        };
        let entries: Vec<(Vec<u8>, Version, Vec<u8>)> = self
            .missing
            .iter()
            .filter_map(|(key, bytes, version)| {
                let value = shared.encoded(loaded.get(key)?, &inner.counters)?;
                Some((bytes.clone(), version.clone(), value))
            })
            .collect();
        if !entries.is_empty() {
            inner.counters.add(Event::FleetLoad, entries.len() as u64);
            shared.tier.store_many(entries, inner.config.default_ttl);
        }
    }
}

/// Loads the key of the flight `guard` owns through the shared tier (see the module docs),
/// settling the flight; the local load, `init`, runs only with the fleet's lease or without
/// the tier.
pub(crate) async fn lead<K, V, F, E>(
    inner: &Arc<Inner<K, V>>,
    shared: &Shared<V>,
    key: Vec<u8>,
    guard: LoadGuard<K, V>,
    init: F,
) -> Led<V, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    F: Future<Output = Result<V, E>>,
    E: Send + Sync + 'static,
{
    let tier = &shared.tier;
    let deadline = Instant::now() + tier.max_wait();
    let mut discard = false;
    loop {
        let read = tokio::time::timeout(tier.timeout(), tier.read_or_lease(&key, discard)).await;
        match read {
            Ok(Ok(ReadOrLease::Value(read))) => match (shared.decode)(&read.value) {
                Some(value) => {
                    inner.counters.count(Event::L2Hit);
                    guard.settle_stored(value.clone(), read.ttl);
                    return Led::Shared(value);
                }
                None => {
                    // Another deploy's type, or garbage: a miss, and overwritten.
                    inner.counters.count(Event::DecodeError);
                    discard = true;
                }
            },
            Ok(Ok(ReadOrLease::Leased(lease))) => {
                if lease.discarded {
                    inner.counters.count(Event::DecodeError);
                }
                inner.counters.count(Event::L2Miss);
                inner.counters.count(Event::FleetLoad);
                let ttl = inner.config.default_ttl;
                let (store_key, release_key) = (key.clone(), key);
                let (store_lease, release_lease) = (lease.clone(), lease);
                let counters = Arc::clone(&inner.counters);
                return run_loader(
                    guard,
                    init,
                    |value: &V| match shared.encoded(value, &counters) {
                        Some(bytes) => tier.store(&store_key, store_lease, bytes, ttl),
                        None => tier.release(&store_key, store_lease),
                    },
                    || tier.release(&release_key, release_lease),
                )
                .await;
            }
            Ok(Ok(ReadOrLease::Held(waiting))) => {
                inner.counters.count(Event::LeaseWait);
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                let _ = tokio::time::timeout(left, waiting).await;
            }
            Ok(Err(_)) | Err(_) => {
                inner.counters.count(Event::FleetError);
                break;
            }
        }
    }
    // The tier failed or other processes took too long: load here, as without a tier.
    run_loader(guard, init, |_: &V| {}, || {}).await
}
