//! Freshness policies beyond a fixed TTL: refresh-ahead, stale-on-error, time-to-idle and an
//! expiry chosen from the value.
//!
//! A cache that uses none of them has no [`Policy`] and its entries no [`Timing`]: a hit looks
//! at the entry's one deadline word exactly as before, and entries without a TTL never read a
//! clock. An entry of a cache with a policy carries a [`Timing`], and its deadline word is the
//! first instant a read must consult it (its refresh time, its expiry, or at once for an entry
//! with an idle timeout, whose every read moves its expiry). So the policy costs a cache that
//! uses it one branch on the reads that reach that instant, and nothing on the others.

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::clock::{self, NEVER};
use crate::{AsyncCacheBuilder, CacheMetrics};

/// Chooses an entry's time to live from its key and value (`None`: it never expires).
pub(crate) type ExpireAfter<K, V> = dyn Fn(&K, &V) -> Option<Duration> + Send + Sync;

/// A cache's freshness options, set on the builder. `None` of them set: the cache has no
/// policy at all.
pub(crate) struct Policy<K, V> {
    pub(crate) refresh_after: Option<Duration>,
    pub(crate) stale_on_error: Option<Duration>,
    pub(crate) time_to_idle: Option<Duration>,
    pub(crate) expire_after: Option<Arc<ExpireAfter<K, V>>>,
    /// Background reloads started by refresh-ahead.
    pub(crate) refreshes: AtomicU64,
    /// Background reloads that failed (the old value stayed).
    pub(crate) refresh_errors: AtomicU64,
    /// Failed loads answered with an expired value.
    pub(crate) stale_served: AtomicU64,
}

impl<K, V> Default for Policy<K, V> {
    fn default() -> Self {
        Policy {
            refresh_after: None,
            stale_on_error: None,
            time_to_idle: None,
            expire_after: None,
            refreshes: AtomicU64::new(0),
            refresh_errors: AtomicU64::new(0),
            stale_served: AtomicU64::new(0),
        }
    }
}

impl<K, V> Clone for Policy<K, V> {
    fn clone(&self) -> Self {
        Policy {
            refresh_after: self.refresh_after,
            stale_on_error: self.stale_on_error,
            time_to_idle: self.time_to_idle,
            expire_after: self.expire_after.clone(),
            ..Policy::default()
        }
    }
}

impl<K, V> fmt::Debug for Policy<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("refresh_after", &self.refresh_after)
            .field("stale_on_error", &self.stale_on_error)
            .field("time_to_idle", &self.time_to_idle)
            .field("expire_after", &self.expire_after.is_some())
            .finish()
    }
}

impl<K, V> Policy<K, V> {
    /// Whether any option is set (a cache without one keeps no policy).
    pub(crate) fn is_set(&self) -> bool {
        self.refresh_after.is_some()
            || self.stale_on_error.is_some()
            || self.time_to_idle.is_some()
            || self.expire_after.is_some()
    }

    /// Its counters, into `metrics`.
    pub(crate) fn add_to(&self, metrics: &mut CacheMetrics) {
        metrics.refreshes = self.refreshes.load(Ordering::Relaxed);
        metrics.refresh_errors = self.refresh_errors.load(Ordering::Relaxed);
        metrics.stale_served = self.stale_served.load(Ordering::Relaxed);
    }

    /// Whether its entries carry a [`Timing`] (every option but `expire_after` needs one).
    pub(crate) fn needs_timing(&self) -> bool {
        self.refresh_after.is_some() || self.stale_on_error.is_some() || self.time_to_idle.is_some()
    }

    /// The TTL of a value loaded or inserted for `key`: the `expire_after` function's choice,
    /// else `default`.
    pub(crate) fn ttl_of(&self, key: &K, value: &V, default: Option<Duration>) -> Option<Duration> {
        match &self.expire_after {
            Some(choose) => choose(key, value),
            None => default,
        }
    }

    /// The timing of an entry stored now to live `ttl`, and the deadline word of its
    /// [`Stored`](crate::store::Stored); `None` when the policy needs no timing (only
    /// `expire_after` is set).
    pub(crate) fn timing(&self, ttl: Option<Duration>) -> Option<(Arc<Timing>, u64)> {
        if !self.needs_timing() {
            return None;
        }
        let expires_at = clock::expiry(ttl);
        // Reads of this entry will read the clock even without a TTL: make sure its thread is
        // spawned now (parked), as `expiry` does for a TTL, so that no hit allocates.
        let now = clock::expiry(Some(Duration::ZERO));
        let refresh_at = self
            .refresh_after
            .map_or(NEVER, |after| now.saturating_add(nanos(after)));
        let idle = self.time_to_idle.map_or(0, nanos);
        // The idle deadline moves with every read, so every read looks at it.
        let due_at = if idle > 0 {
            0
        } else {
            expires_at.min(refresh_at)
        };
        let timing = Timing {
            expires_at,
            refresh_at,
            stale_for: self.stale_on_error.map_or(0, nanos),
            idle,
            last_read: AtomicU64::new(now),
            refreshing: AtomicBool::new(false),
        };
        Some((Arc::new(timing), due_at))
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(NEVER)
}

/// The deadlines of one entry of a cache with a [`Policy`], on the [`clock`].
pub(crate) struct Timing {
    /// When its time to live ends ([`NEVER`]: it has none).
    expires_at: u64,
    /// When a hit starts a background reload ([`NEVER`]: no refresh-ahead).
    refresh_at: u64,
    /// How long past its expiry the value may answer a failed load (0: never).
    stale_for: u64,
    /// Its idle timeout in nanoseconds (0: none).
    idle: u64,
    /// When it was last read (or stored), for the idle timeout.
    last_read: AtomicU64,
    /// Set while a background reload of it runs.
    refreshing: AtomicBool,
}

/// What a read at some instant finds an entry with a [`Timing`] to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reading {
    /// Serve it.
    Live,
    /// Serve it, and reload it in the background.
    RefreshDue,
    /// Do not serve it, but keep it: a failed load may still be answered with it.
    Stale,
    /// Gone: remove it.
    Dead,
}

impl Timing {
    /// When it expires now: its TTL or its idle timeout, whichever ends first.
    pub(crate) fn expiry(&self) -> u64 {
        if self.idle == 0 {
            return self.expires_at;
        }
        let idle_end = self
            .last_read
            .load(Ordering::Relaxed)
            .saturating_add(self.idle);
        self.expires_at.min(idle_end)
    }

    /// Until when the engine must keep it.
    pub(crate) fn keep_until(&self) -> u64 {
        self.expiry().saturating_add(self.stale_for)
    }

    /// [`keep_until`](Self::keep_until) once a read at `now` moved the idle deadline (an
    /// expired entry's read moves nothing).
    pub(crate) fn keep_until_after_read(&self, now: u64) -> u64 {
        if self.idle == 0 || self.is_expired_at(now) {
            return self.keep_until();
        }
        let idle_end = now.saturating_add(self.idle);
        self.expires_at.min(idle_end).saturating_add(self.stale_for)
    }

    /// Whether its time to live or idle timeout has passed at `now`.
    pub(crate) fn is_expired_at(&self, now: u64) -> bool {
        now >= self.expiry()
    }

    /// A read at `now`: what the entry is, and (a live one) the read recorded for its idle
    /// timeout.
    pub(crate) fn read_at(&self, now: u64) -> Reading {
        let expiry = self.expiry();
        if now >= expiry {
            return if now < expiry.saturating_add(self.stale_for) {
                Reading::Stale
            } else {
                Reading::Dead
            };
        }
        if self.idle > 0 {
            self.last_read.fetch_max(now, Ordering::Relaxed);
        }
        if now >= self.refresh_at {
            Reading::RefreshDue
        } else {
            Reading::Live
        }
    }

    /// Claims the entry's one background reload; `false` if one already runs.
    pub(crate) fn claim_refresh(&self) -> bool {
        !self.refreshing.swap(true, Ordering::AcqRel)
    }

    /// Lets a later hit start a reload again (the last one ended, in failure or otherwise).
    pub(crate) fn release_refresh(&self) {
        self.refreshing.store(false, Ordering::Release);
    }
}

/// What an engine found for a key.
pub(crate) enum Found<V> {
    /// A live value.
    Hit(V),
    /// A live value due for refresh-ahead: serve it, and reload it in the background (if the
    /// caller can) under the entry's timing.
    RefreshDue(V, Arc<Timing>),
    /// Nothing live.
    Miss,
}

impl<V> Found<V> {
    /// The value to serve, whatever is due.
    #[inline]
    pub(crate) fn value(self) -> Option<V> {
        match self {
            Found::Hit(value) | Found::RefreshDue(value, _) => Some(value),
            Found::Miss => None,
        }
    }
}

/// Freshness beyond a fixed TTL. None of these options costs a cache that does not set it
/// anything on a hit.
impl<K, V> AsyncCacheBuilder<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Refresh-ahead (Caffeine's `refreshAfterWrite`): a hit on an entry stored more than
    /// `after` ago returns its value at once and reloads it in the background, so that a key
    /// read steadily never waits for its expiry.
    ///
    /// The reload is one load of the key: callers that miss meanwhile wait on it, and a hit
    /// while it runs starts no other. It stores its value with a fresh TTL, unless an
    /// [`invalidate`](crate::AsyncCache::invalidate), [`insert`](crate::AsyncCache::insert) or
    /// [`clear`](crate::AsyncCache::clear) came after it began (it is then discarded). If it fails or
    /// panics, the old value stays until its TTL and a later hit tries again. Counted in
    /// [`CacheMetrics::refreshes`](crate::CacheMetrics::refreshes) and `refresh_errors`.
    ///
    /// A background reload needs a loader that outlives its caller: hits through
    /// [`get_with_detached`](crate::AsyncCache::get_with_detached),
    /// [`try_get_with_detached`](crate::AsyncCache::try_get_with_detached) and the attributes
    /// (`refresh_after = SECS`) start one; a hit through `get`, `get_with` or `try_get_with`
    /// serves the value and starts none. Outside a tokio runtime nothing is reloaded.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::time::Duration;
    /// use cache_core::AsyncCache;
    ///
    /// static VERSION: AtomicU64 = AtomicU64::new(0);
    /// async fn fetch(_key: u64) -> u64 {
    ///     VERSION.fetch_add(1, Ordering::SeqCst) // SELECT ...
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cache: AsyncCache<u64, u64> = AsyncCache::builder()
    ///     .default_ttl(Duration::from_secs(60))
    ///     .refresh_after(Duration::from_millis(20))
    ///     .build();
    /// assert_eq!(cache.get_with_detached(1, fetch(1)).await, 0);
    /// tokio::time::sleep(Duration::from_millis(40)).await;
    /// // Old enough: served at once, reloaded in the background.
    /// assert_eq!(cache.get_with_detached(1, fetch(1)).await, 0);
    /// while cache.metrics().refreshes == 0 || cache.get(&1) == Some(0) {
    ///     tokio::task::yield_now().await;
    /// }
    /// assert_eq!(cache.get(&1), Some(1));
    /// # }
    /// ```
    pub fn refresh_after(mut self, after: Duration) -> Self {
        self.policy.refresh_after = Some(after);
        self
    }

    /// Serves an expired value when its reload fails: a `get_with*` whose load returns an
    /// error gets the value that expired at most `max` ago instead of the error (every caller
    /// waiting on that load too), counted in
    /// [`CacheMetrics::stale_served`](crate::CacheMetrics::stale_served). The stale value is
    /// not stored again: the next call loads again.
    ///
    /// Never after an [`invalidate`](crate::AsyncCache::invalidate) or [`clear`](crate::AsyncCache::clear)
    /// of the key: those drop the value. `get` never returns an expired value, and a panicking
    /// loader still panics. An expired entry stays in the engine (and in `size`) until `max`
    /// past its expiry.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cache_core::AsyncCache;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cache: AsyncCache<&str, u64> = AsyncCache::builder()
    ///     .default_ttl(Duration::from_millis(10))
    ///     .stale_on_error(Duration::from_secs(60))
    ///     .build();
    /// cache.insert("rate", 42);
    /// tokio::time::sleep(Duration::from_millis(30)).await;
    /// assert_eq!(cache.get(&"rate"), None); // expired
    /// let served = cache.try_get_with("rate", async { Err::<u64, _>("backend down") }).await;
    /// assert_eq!(served, Ok(42));
    /// assert_eq!(cache.metrics().stale_served, 1);
    /// # }
    /// ```
    pub fn stale_on_error(mut self, max: Duration) -> Self {
        self.policy.stale_on_error = Some(max);
        self
    }

    /// Expires an entry `idle` after it was last read (or stored): each hit moves its expiry.
    /// With a TTL too, whichever comes first ends it. Measured on the coarse clock, so an
    /// entry read at the last moment may live one tick (1 ms) less than `idle` after that read.
    /// [`contains_key`](crate::AsyncCache::contains_key) does not count as a read.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cache_core::AsyncCache;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let sessions: AsyncCache<u64, String> = AsyncCache::builder()
    ///     .time_to_idle(Duration::from_millis(50))
    ///     .build();
    /// sessions.insert(1, "alice".into());
    /// for _ in 0..5 {
    ///     tokio::time::sleep(Duration::from_millis(20)).await;
    ///     assert!(sessions.get(&1).is_some()); // each read keeps it alive
    /// }
    /// tokio::time::sleep(Duration::from_millis(120)).await;
    /// assert_eq!(sessions.get(&1), None); // idle too long
    /// # }
    /// ```
    pub fn time_to_idle(mut self, idle: Duration) -> Self {
        self.policy.time_to_idle = Some(idle);
        self
    }

    /// Chooses each entry's TTL from what was stored (moka's `Expiry::expire_after_create`):
    /// `ttl(key, value)` runs for every value a load stores and every
    /// [`insert`](crate::AsyncCache::insert), and replaces
    /// [`default_ttl`](Self::default_ttl) there; `None` never expires.
    /// [`insert_with_ttl`](crate::AsyncCache::insert_with_ttl) keeps the TTL it is given.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cache_core::AsyncCache;
    ///
    /// // A token lives until just before it expires upstream.
    /// let tokens: AsyncCache<String, (String, u64)> = AsyncCache::builder()
    ///     .expire_after(|_user: &String, (_token, valid_secs): &(String, u64)| {
    ///         Some(Duration::from_secs(valid_secs.saturating_sub(5)))
    ///     })
    ///     .build();
    /// tokens.insert("alice".into(), ("t0k3n".into(), 3_600));
    /// assert!(tokens.get("alice").is_some());
    /// tokens.insert("bob".into(), ("expired".into(), 0));
    /// assert!(tokens.get("bob").is_none());
    /// ```
    pub fn expire_after(
        mut self,
        ttl: impl Fn(&K, &V) -> Option<Duration> + Send + Sync + 'static,
    ) -> Self {
        self.policy.expire_after = Some(Arc::new(ttl));
        self
    }
}
