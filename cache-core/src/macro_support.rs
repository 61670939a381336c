//! What the expansions of `#[async_lru]` and `#[async_ttl]` call, through `__private`.
//!
//! Each cached function owns one [`CacheSlot`]: a `static` that holds its cache, created on
//! first use. The slot erases the key and value types, so an expansion never has to spell
//! them: they are inferred from the key it builds and the body it caches, which is what lets
//! `impl Trait` returns and borrowed arguments work without the macro naming a type.

use std::any::{Any, TypeId};
use std::borrow::Borrow;
use std::hash::Hash;
use std::sync::OnceLock;
use std::time::Duration;

use crate::{AsyncCache, CacheMetrics, Engine};

/// The cache of one cached function, created on first use. Usable from any runtime.
pub struct CacheSlot {
    cache: OnceLock<Erased>,
}

struct Erased {
    /// The `TypeId` of the `AsyncCache<K, V>` in `cache`: comparing it is the whole cost of
    /// recovering the typed cache on a hit (no virtual call).
    type_id: TypeId,
    cache: Box<dyn ErasedCache>,
}

/// What the helpers (`invalidate`, `clear`, `metrics`) need, without the cache's types.
trait ErasedCache: Send + Sync {
    fn invalidate(&self, key: &dyn Any);
    fn clear(&self);
    fn metrics(&self) -> CacheMetrics;
}

impl<K, V> ErasedCache for AsyncCache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn invalidate(&self, key: &dyn Any) {
        match key.downcast_ref::<K>() {
            Some(key) => AsyncCache::invalidate(self, key),
            None => type_changed(),
        }
    }

    fn clear(&self) {
        AsyncCache::clear(self);
    }

    fn metrics(&self) -> CacheMetrics {
        AsyncCache::metrics(self)
    }
}

impl CacheSlot {
    /// An empty slot, for a `static`.
    #[allow(clippy::new_without_default)] // only ever built in a static
    pub const fn new() -> Self {
        CacheSlot {
            cache: OnceLock::new(),
        }
    }

    /// The slot's cache, made by `init` on first use.
    #[inline]
    pub fn get_or_init<K, V>(
        &'static self,
        init: impl FnOnce() -> AsyncCache<K, V>,
    ) -> &'static AsyncCache<K, V>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        let erased = self.cache.get_or_init(|| Erased {
            type_id: TypeId::of::<AsyncCache<K, V>>(),
            cache: Box::new(init()),
        });
        if erased.type_id != TypeId::of::<AsyncCache<K, V>>() {
            type_changed()
        }
        let cache: *const dyn ErasedCache = &*erased.cache;
        // SAFETY: `cache` points to the `AsyncCache<K, V>` boxed when the slot was filled, as
        // its recorded type id, just compared, proves (this is `Any::downcast_ref`).
        unsafe { &*cache.cast::<AsyncCache<K, V>>() }
    }

    /// Removes `key` (built exactly as a call builds it) and fences its load in flight.
    pub fn invalidate<K: 'static>(&self, key: &K) {
        if let Some(erased) = self.cache.get() {
            erased.cache.invalidate(key);
        }
    }

    /// Removes every entry and fences every load in flight.
    pub fn clear(&self) {
        if let Some(erased) = self.cache.get() {
            erased.cache.clear();
        }
    }

    /// [`invalidate`](Self::invalidate) for a cache of the installed fleet's cache `fleet`:
    /// the other processes are told even if this one never built its cache.
    pub fn invalidate_in_fleet<K: FleetKey>(&self, key: &K, fleet: &'static str) {
        match self.cache.get() {
            Some(erased) => erased.cache.invalidate(key),
            None => drop(crate::fleet::publish_unbuilt(fleet, Some(key), false)),
        }
    }

    /// [`clear`](Self::clear) for a cache of the installed fleet's cache `fleet`.
    pub fn clear_in_fleet(&self, fleet: &'static str) {
        match self.cache.get() {
            Some(erased) => erased.cache.clear(),
            None => drop(crate::fleet::publish_unbuilt::<()>(fleet, None, false)),
        }
    }

    /// [`invalidate_in_fleet`](Self::invalidate_in_fleet) for a cache whose values live in the
    /// fleet's shared tier (`shared = true`): the value there goes too, even if this process
    /// never built its cache.
    pub fn invalidate_in_shared_fleet<K: FleetKey>(&self, key: &K, fleet: &'static str) {
        match self.cache.get() {
            Some(erased) => erased.cache.invalidate(key),
            None => drop(crate::fleet::publish_unbuilt(fleet, Some(key), true)),
        }
    }

    /// [`clear_in_fleet`](Self::clear_in_fleet) for a cache with `shared = true`.
    pub fn clear_in_shared_fleet(&self, fleet: &'static str) {
        match self.cache.get() {
            Some(erased) => erased.cache.clear(),
            None => drop(crate::fleet::publish_unbuilt::<()>(fleet, None, true)),
        }
    }

    /// The cache's metrics; all zero before the function's first call.
    pub fn metrics(&self) -> CacheMetrics {
        self.cache
            .get()
            .map(|erased| erased.cache.metrics())
            .unwrap_or_default()
    }
}

#[cold]
fn type_changed() -> ! {
    panic!(
        "a cached function's key or value type differs between two of its instantiations; \
         a cached generic function keeps one cache, so its `key = ...` and return type must \
         not depend on its generic parameters"
    )
}

/// Builds the cache of a cached function: `maxsize` entries, each living `ttl_nanos`
/// (`None`: forever), stored in `engine` (`None`: the default engine).
pub fn build<K, V>(
    maxsize: u64,
    ttl_nanos: Option<u64>,
    engine: Option<Engine>,
    fresh: Freshness,
    hooks: EvictHooks<K, V>,
) -> AsyncCache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    builder(maxsize, ttl_nanos, engine, fresh, hooks).build()
}

/// The freshness options of a cached function (`refresh_after`, `stale_on_error`,
/// `time_to_idle`), in nanoseconds.
#[derive(Clone, Copy, Debug)]
pub struct Freshness {
    /// [`refresh_after`](crate::AsyncCacheBuilder::refresh_after).
    pub refresh_after: Option<u64>,
    /// [`stale_on_error`](crate::AsyncCacheBuilder::stale_on_error).
    pub stale_on_error: Option<u64>,
    /// [`time_to_idle`](crate::AsyncCacheBuilder::time_to_idle).
    pub time_to_idle: Option<u64>,
}

impl Freshness {
    /// None of them.
    pub const NONE: Freshness = Freshness {
        refresh_after: None,
        stale_on_error: None,
        time_to_idle: None,
    };
}

/// The `weigher = ..` and `on_evict = ..` options of a cached function (`max_weight = N` is its
/// `maxsize`).
pub struct EvictHooks<K, V> {
    /// [`weigher`](crate::AsyncCacheBuilder::weigher).
    pub weigher: Option<fn(&K, &V) -> u32>,
    /// [`on_evict`](crate::AsyncCacheBuilder::on_evict).
    pub on_evict: Option<fn(K, V, crate::RemovalCause)>,
}

impl<K, V> EvictHooks<K, V> {
    /// Neither.
    pub const NONE: EvictHooks<K, V> = EvictHooks {
        weigher: None,
        on_evict: None,
    };
}

/// [`build`], for a cached function with `fleet = "name"`: attached to the cache `name` of the
/// installed fleet, or process-local (saying so once) when no fleet is installed yet.
pub fn build_fleet<K, V>(
    maxsize: u64,
    ttl_nanos: Option<u64>,
    engine: Option<Engine>,
    fleet: &'static str,
    fresh: Freshness,
    hooks: EvictHooks<K, V>,
) -> AsyncCache<K, V>
where
    K: FleetKey,
    V: Clone + Send + Sync + 'static,
{
    builder(maxsize, ttl_nanos, engine, fresh, hooks)
        .fleet_channel(crate::fleet::installed_channel(fleet))
        .build()
}

/// [`build_fleet`] with `shared = true`: the values live in the installed fleet's shared tier
/// too, as schema version `schema`. Without an installed fleet, or one without a shared tier,
/// as [`build_fleet`].
pub fn build_fleet_shared<K, V>(
    maxsize: u64,
    ttl_nanos: Option<u64>,
    engine: Option<Engine>,
    fleet: &'static str,
    schema: u32,
    fresh: Freshness,
    hooks: EvictHooks<K, V>,
) -> AsyncCache<K, V>
where
    K: FleetKey,
    V: FleetValue,
{
    let builder = builder(maxsize, ttl_nanos, engine, fresh, hooks);
    match crate::fleet::installed().and_then(|provider| provider.shared(fleet, schema)) {
        Some((channel, tier)) => builder
            .fleet_setup(crate::fleet::FleetSetup::shared::<crate::fleet::Postcard>(
                channel, tier,
            ))
            .build(),
        None => builder
            .fleet_channel(crate::fleet::installed_channel(fleet))
            .build(),
    }
}

fn builder<K, V>(
    maxsize: u64,
    ttl_nanos: Option<u64>,
    engine: Option<Engine>,
    fresh: Freshness,
    hooks: EvictHooks<K, V>,
) -> crate::AsyncCacheBuilder<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    let mut builder = AsyncCache::builder()
        .maxsize(maxsize)
        .engine(engine.unwrap_or_default());
    if let Some(nanos) = ttl_nanos {
        builder = builder.default_ttl(Duration::from_nanos(nanos));
    }
    if let Some(nanos) = fresh.refresh_after {
        builder = builder.refresh_after(Duration::from_nanos(nanos));
    }
    if let Some(nanos) = fresh.stale_on_error {
        builder = builder.stale_on_error(Duration::from_nanos(nanos));
    }
    if let Some(nanos) = fresh.time_to_idle {
        builder = builder.time_to_idle(Duration::from_nanos(nanos));
    }
    if let Some(weigher) = hooks.weigher {
        builder = builder.weigher(weigher);
    }
    if let Some(listener) = hooks.on_evict {
        builder = builder.on_evict(listener);
    }
    builder
}

/// A builder whose caches follow `channel`'s coherence (capped while the fleet cannot be
/// heard) without publishing: for agent-cache's tool caches.
pub fn with_fleet_coherence<K, V>(
    builder: crate::AsyncCacheBuilder<K, V>,
    channel: std::sync::Arc<dyn crate::fleet::FleetChannel>,
) -> crate::AsyncCacheBuilder<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    builder.fleet_coherence(channel)
}

/// The live value of `key`, if any, for a caller that counts its hits and misses itself (the
/// agent layer's tools): as [`AsyncCache::get`] but counting nothing, so that such a hit
/// pays for one counter, not two. That cache's `metrics` then count no hits.
#[inline]
pub fn get_uncounted<K, V, Q>(cache: &AsyncCache<K, V>, key: &Q) -> Option<V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static + Borrow<Q>,
    V: Clone + Send + Sync + 'static,
    Q: Hash + Eq + ?Sized,
{
    cache.inner.store.get(key, cache.inner.generation())
}

/// [`get_uncounted`], handing the value (or `None`) to `then` while the cache still holds it,
/// for a caller whose own bookkeeping of the lookup (the agent layer's loop detection) can then
/// run alongside it.
#[inline(always)]
pub fn get_uncounted_then<K, V, Q, R>(
    cache: &AsyncCache<K, V>,
    key: &Q,
    then: impl FnOnce(Option<&V>) -> R,
) -> R
where
    K: Hash + Eq + Clone + Send + Sync + 'static + Borrow<Q>,
    V: Clone + Send + Sync + 'static,
    Q: Hash + Eq + ?Sized,
{
    cache
        .inner
        .store
        .get_then(key, cache.inner.generation(), then)
}

/// A hit on `probe`, the borrowed form of a key that is one argument (`name` for a `&str`
/// argument keyed as a `String`): a hit need not build, clone or allocate the owned key.
/// Counts a hit; a miss counts nothing, since the load that follows looks again and counts it.
#[inline]
pub fn hit<K, V, Q>(cache: &AsyncCache<K, V>, probe: &Q) -> Option<V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static + Borrow<Q>,
    V: Clone + Send + Sync + 'static,
    Q: Hash + Eq + ?Sized,
{
    let value = get_uncounted(cache, probe)?;
    cache.inner.counters.count(crate::metrics::Event::Hit);
    Some(value)
}

/// A type that can be part of a cache key.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be part of a cache key",
    label = "this argument is part of the cache key",
    note = "a key argument must be `Clone + Hash + Eq + Send + Sync + 'static` (a borrowed \
            argument `&T` is keyed by its owned form, `T::Owned`)",
    note = "leave it out of the key with `skip_args = N` (the first N parameters), or key the \
            call yourself with `key = <expression>`"
)]
pub trait KeyPart: Hash + Eq + Clone + Send + Sync + 'static {}

impl<T: Hash + Eq + Clone + Send + Sync + 'static> KeyPart for T {}

/// A key of a cache whose keys cross processes (`fleet = "..."`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the key of a fleet cache: it must cross processes",
    label = "the key of a cache with `fleet = \"...\"`",
    note = "a fleet cache's key must implement serde's `Serialize` and `DeserializeOwned`: \
            derive them for it (`#[derive(Serialize, Deserialize)]`)"
)]
pub trait FleetKey: KeyPart + serde::Serialize + serde::de::DeserializeOwned {}

impl<T: KeyPart + serde::Serialize + serde::de::DeserializeOwned> FleetKey for T {}

/// A value of a cache whose values live in the fleet's shared tier (`shared = true`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the value of a shared fleet cache: it must cross processes",
    label = "the value of a cache with `shared = true`, which lives in Redis too",
    note = "a shared cache's value (the function's return type, the `Ok` type of a `Result`) \
            must implement serde's `Serialize` and `DeserializeOwned`: derive them for it \
            (`#[derive(Serialize, Deserialize)]`), or drop `shared = true` to keep values in \
            each process"
)]
pub trait FleetValue:
    Clone + Send + Sync + serde::Serialize + serde::de::DeserializeOwned + 'static
{
}

impl<T: Clone + Send + Sync + serde::Serialize + serde::de::DeserializeOwned + 'static> FleetValue
    for T
{
}

/// A type that can be part of the key of a fleet cache.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be part of a fleet cache's key: it must cross processes",
    label = "this argument is part of the key, which a fleet cache sends to other processes",
    note = "a key argument of a cache with `fleet = \"...\"` must implement serde's `Serialize` \
            and `DeserializeOwned` (a borrowed argument `&T`: its owned form `T::Owned`)",
    note = "derive them (`#[derive(Serialize, Deserialize)]`), or leave the argument out of the \
            key with `skip_args = N`"
)]
pub trait FleetKeyPart: FleetKey {}

impl<T: FleetKey> FleetKeyPart for T {}

/// [`key_part`], for a fleet cache.
#[inline]
pub fn fleet_key_part<T: FleetKeyPart>(argument: &T) -> T {
    argument.clone()
}

/// [`borrowed_key_part`], for a fleet cache.
#[inline]
pub fn fleet_borrowed_key_part<T>(argument: &T) -> T::Owned
where
    T: ToOwned + ?Sized,
    T::Owned: FleetKeyPart,
{
    argument.to_owned()
}

/// The key part of an owned argument: a clone, so the body can still take the argument.
#[inline]
pub fn key_part<T: KeyPart>(argument: &T) -> T {
    argument.clone()
}

/// The key part of a borrowed argument `&T`: its owned form (`&str` becomes `String`).
#[inline]
pub fn borrowed_key_part<T>(argument: &T) -> T::Owned
where
    T: ToOwned + ?Sized,
    T::Owned: KeyPart,
{
    argument.to_owned()
}

/// Hands a load's shared error to each caller of a cached function, by the first of these
/// that the error type allows (chosen at compile time by autoref specialisation):
///
/// 1. `E: Clone`: a clone;
/// 2. `E: From<SharedError>` (`anyhow::Error`, `Box<dyn Error + Send + Sync>`, an enum with a
///    `#[from] SharedError` variant): `E::from(SharedError)`, which displays as the original;
/// 3. `std::io::Error`: an `io::Error` of the same kind wrapping the `SharedError`;
///
/// and otherwise a compile error that lists these. In every case a caller that held the only
/// reference (nobody else waited on its load) gets the original error itself.
pub mod unshare {
    use std::fmt;
    use std::io;
    use std::sync::Arc;

    use crate::SharedError;

    /// The error of one load, as one of its callers receives it.
    pub struct Unshare<E>(pub Arc<E>);

    /// Tier 1: clone.
    pub trait ViaClone<E> {
        /// The caller's error.
        fn unshare(self) -> E;
    }

    impl<E: Clone> ViaClone<E> for &&&Unshare<E> {
        fn unshare(self) -> E {
            (*self.0).clone()
        }
    }

    /// Tier 2: `From<SharedError>`.
    pub trait ViaFrom<E> {
        /// The caller's error.
        fn unshare(self) -> E;
    }

    impl<E> ViaFrom<E> for &&Unshare<E>
    where
        E: From<SharedError> + fmt::Display + fmt::Debug + Send + Sync + 'static,
    {
        fn unshare(self) -> E {
            E::from(SharedError::new(Arc::clone(&self.0)))
        }
    }

    /// Tier 3: `std::io::Error`.
    pub trait ViaIo {
        /// The caller's error.
        fn unshare(self) -> io::Error;
    }

    impl ViaIo for &Unshare<io::Error> {
        fn unshare(self) -> io::Error {
            io::Error::new(self.0.kind(), SharedError::new(Arc::clone(&self.0)))
        }
    }

    /// The last resort, found only when no tier applies. Its bound sits on the method, so it
    /// is checked after the method is chosen and fails with the diagnostic of
    /// [`CoalescableError`], which says what to do.
    pub trait Unsupported<E> {
        /// Never callable: no type implements `CoalescableError`.
        fn unshare(self) -> E
        where
            E: CoalescableError;
    }

    impl<E> Unsupported<E> for Unshare<E> {
        fn unshare(self) -> E
        where
            E: CoalescableError,
        {
            unreachable!("no type implements `CoalescableError`")
        }
    }

    /// Implemented by no type: its diagnostic explains how to make an error type coalescable.
    #[diagnostic::on_unimplemented(
        message = "the error type `{Self}` of a cached function cannot be given to the callers \
                   coalesced on a failed load",
        label = "one load serves every concurrent call with these arguments; when it fails, each \
                 caller needs its own `{Self}`",
        note = "make the error `Clone`, or implement `From<cache_core::SharedError>` for it \
                (`anyhow::Error` and `Box<dyn Error + Send + Sync>` already do; a `thiserror` \
                enum can add a `#[from] cache_core::SharedError` variant)",
        note = "or cache the whole `Result`, errors included, with `result = false`"
    )]
    pub trait CoalescableError {}

    impl<E> Unshare<E> {
        /// Gives the caller the original error when it holds the only reference.
        pub fn into_inner_or(self, share: impl FnOnce(&Unshare<E>) -> E) -> E {
            match Arc::try_unwrap(self.0) {
                Ok(error) => error,
                Err(shared) => share(&Unshare(shared)),
            }
        }
    }
}

/// The value a cached function returning `Result<T, E>` (or an alias of it) caches: `T`.
pub trait OkType {
    /// `T`.
    type Ok;
}

impl<T, E> OkType for Result<T, E> {
    type Ok = T;
}

/// A key or value of a cached function with `snapshot = true`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be written to a snapshot",
    label = "`snapshot = true` needs this key or value type to be serde's `Serialize` and `DeserializeOwned`",
    note = "derive `serde::Serialize` and `serde::Deserialize` for it, or drop `snapshot = true`"
)]
pub trait SnapshotPart: serde::Serialize + serde::de::DeserializeOwned {}

impl<T: serde::Serialize + serde::de::DeserializeOwned> SnapshotPart for T {}

/// `f::snapshot`: [`AsyncCache::snapshot`], with the bounds named for the attribute's user.
pub fn snapshot<K, V>(
    cache: &AsyncCache<K, V>,
    writer: impl std::io::Write,
) -> Result<usize, crate::SnapshotError>
where
    K: KeyPart + SnapshotPart,
    V: Clone + Send + Sync + 'static + SnapshotPart,
{
    cache.snapshot(writer)
}

/// `f::restore`: [`AsyncCache::restore_from`].
pub fn restore<K, V>(
    cache: &AsyncCache<K, V>,
    reader: impl std::io::Read,
) -> Result<crate::RestoreReport, crate::SnapshotError>
where
    K: KeyPart + SnapshotPart,
    V: Clone + Send + Sync + 'static + SnapshotPart,
{
    cache.restore_from(reader)
}
