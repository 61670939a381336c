//! [`Fleet`], its builder, and [`FleetCache`], the channel of one named cache.

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use cache_core::fleet::{
    Delivered, Delivery, FleetAttach, FleetChannel, FleetLink, FleetProvider, FleetReceiver,
    FleetSetup, Message, Postcard, ResourceVersions, SharedTier, ValueCodec,
};
use redis::IntoConnectionInfo;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

use crate::outbox::{Kind, Versions};
use crate::resources::RedisResourceVersions;
use crate::shared::{Channel, Config, Shared};
use crate::status::FleetStatus;
use crate::tier::{RedisTier, TierConfig};

/// The fleet of one process: its link to Redis, shared by every cache attached to it.
///
/// Cheap to clone. Built with [`Fleet::builder`]; see the [crate docs](crate) for what it
/// promises.
#[derive(Clone)]
pub struct Fleet {
    handle: Arc<Handle>,
}

/// Shuts the link down when the last handle (fleet or fleet cache) is dropped.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.shut_down();
    }
}

impl fmt::Debug for Fleet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fleet")
            .field("namespace", &self.handle.shared.config.namespace)
            .field("status", &self.status())
            .finish()
    }
}

/// Why [`FleetBuilder::connect`] refused to build a fleet. A Redis that cannot be reached is
/// not one of them: the fleet starts degraded and keeps reconnecting.
#[derive(Debug)]
#[non_exhaustive]
pub enum FleetError {
    /// The URL does not parse as a Redis URL.
    BadUrl(redis::RedisError),
    /// An option is out of range.
    BadOption(String),
}

impl fmt::Display for FleetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FleetError::BadUrl(error) => write!(f, "not a Redis URL: {error}"),
            FleetError::BadOption(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for FleetError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FleetError::BadUrl(error) => Some(error),
            FleetError::BadOption(_) => None,
        }
    }
}

/// Configures a [`Fleet`].
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until `connect` is called"]
pub struct FleetBuilder {
    url: String,
    namespace: String,
    max_staleness: Duration,
    heartbeat: Option<Duration>,
    connect_timeout: Duration,
    max_queued: usize,
    max_backoff: Duration,
    version_ttl: Duration,
}

impl Fleet {
    /// Starts configuring the fleet that talks to the Redis (or Valkey) server at `url`
    /// (`redis://host:port/db`, with credentials if needed; RESP3 is always used).
    pub fn builder(url: impl Into<String>) -> FleetBuilder {
        FleetBuilder {
            url: url.into(),
            namespace: "async-cache".into(),
            max_staleness: Duration::from_secs(1),
            heartbeat: None,
            connect_timeout: Duration::from_secs(1),
            max_queued: 10_000,
            max_backoff: Duration::from_secs(1),
            version_ttl: Duration::from_secs(3600),
        }
    }

    /// The channel of the cache called `name` in this fleet, for
    /// [`AsyncCacheBuilder::fleet`](cache_core::AsyncCacheBuilder::fleet). Caches of the
    /// same name in different processes share their invalidations; a name identifies one
    /// cache per process.
    ///
    /// # Panics
    ///
    /// If `name` contains a NUL character (names are written into Redis keys, NUL-ended).
    pub fn cache(&self, name: &str) -> FleetCache {
        assert!(
            !name.contains('\0'),
            "a fleet cache's name cannot contain NUL: {name:?}"
        );
        FleetCache {
            handle: Arc::clone(&self.handle),
            channel: self.handle.shared.channel(name),
        }
    }

    /// Makes this the process's fleet: `#[async_lru(fleet = "...")]`, `#[async_ttl(fleet =
    /// "...")]` and agent-cache's global resource invalidations go through it from now on.
    /// Install it before the first call of a cached function that names a fleet.
    pub fn install(&self) {
        cache_core::fleet::install(Arc::new(self.clone()));
    }

    /// What the link is doing now.
    pub fn status(&self) -> FleetStatus {
        self.handle.shared.status()
    }

    /// Resolves once every invalidation this process issued before the call is acknowledged
    /// by Redis. While Redis cannot be reached it waits for the reconnection: bound it with a
    /// timeout if that matters.
    pub async fn flush(&self) {
        let shared = &self.handle.shared;
        let target = shared.outbox.lock().issued();
        let mut progress = shared.progress.subscribe();
        // The sender lives in `shared`, which this fleet holds: `wait_for` cannot fail.
        let _ = progress.wait_for(|p| p.acknowledged >= target).await;
    }

    /// The fleet's namespace: the prefix of every Redis key it uses.
    pub fn namespace(&self) -> &str {
        &self.handle.shared.config.namespace
    }

    /// The longest an entry may be served after an invalidation it did not hear, counted
    /// from when the fleet noticed it could not hear.
    pub fn max_staleness(&self) -> Duration {
        self.handle.shared.config.max_staleness
    }
}

impl FleetProvider for Fleet {
    fn channel(&self, name: &str) -> Arc<dyn FleetChannel> {
        Arc::new(self.cache(name))
    }

    fn shared(
        &self,
        name: &str,
        schema: u32,
    ) -> Option<(Arc<dyn FleetChannel>, Arc<dyn SharedTier>)> {
        let shared = self.cache(name).shared().version(schema);
        Some((Arc::new(shared.cache.clone()), Arc::new(shared.tier())))
    }

    fn resources(&self) -> Arc<dyn FleetChannel> {
        let cache = self.cache(cache_core::fleet::RESOURCES);
        cache.channel.set_versions(Versions::Resource);
        Arc::new(cache)
    }

    fn resource_versions(&self) -> Option<Arc<dyn ResourceVersions>> {
        Some(Arc::new(RedisResourceVersions {
            shared: Arc::clone(&self.handle.shared),
        }))
    }
}

impl FleetBuilder {
    /// The prefix of every Redis key the fleet uses (`<namespace>:i:...`). Default
    /// `"async-cache"`. Services sharing one Redis keep apart by their namespaces.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// The bound on staleness while coherence is lost: while this process cannot hear the
    /// fleet, it stores every entry for at most this long. Default 1 s.
    pub fn max_staleness(mut self, bound: Duration) -> Self {
        self.max_staleness = bound;
        self
    }

    /// How often a quiet link is checked with a PING, and how long any command may take
    /// before the link counts as lost. A half-open link is found within two heartbeats.
    /// Default: a quarter of `max_staleness`, between 10 ms and 5 s.
    pub fn heartbeat(mut self, interval: Duration) -> Self {
        self.heartbeat = Some(interval);
        self
    }

    /// How long one attempt to connect may take. Default 1 s. `connect` waits for the first
    /// attempt at most this long before returning a fleet that is still degraded.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How many undelivered invalidations to keep while Redis cannot be reached; past that,
    /// the cache with the most queued is sent as one clear instead. Default 10,000.
    pub fn max_queued(mut self, messages: usize) -> Self {
        self.max_queued = messages;
        self
    }

    /// The longest wait between two attempts to reconnect. Default 1 s.
    pub fn max_reconnect_backoff(mut self, wait: Duration) -> Self {
        self.max_backoff = wait;
        self
    }

    /// How long a shared cache's key keeps its version after its last invalidation (the
    /// version fences loads that began before it, so it must outlive the slowest load).
    /// Default 1 hour.
    pub fn version_ttl(mut self, ttl: Duration) -> Self {
        self.version_ttl = ttl;
        self
    }

    /// Builds the fleet and starts its link. Fails only on a bad URL or option: a Redis that
    /// cannot be reached leaves the fleet degraded and reconnecting in the background (this
    /// waits for the first attempt, at most the connect timeout).
    pub async fn connect(self) -> Result<Fleet, FleetError> {
        let config = self.config()?;
        let mut info = self
            .url
            .as_str()
            .into_connection_info()
            .map_err(FleetError::BadUrl)?;
        let redis = info
            .redis_settings()
            .clone()
            .set_protocol(redis::ProtocolVersion::RESP3);
        info = info.set_redis_settings(redis);
        let client = redis::Client::open(info).map_err(FleetError::BadUrl)?;
        let shared = Arc::new(Shared::new(config, client.clone()));
        let (first, attempted) = oneshot::channel();
        crate::link::spawn(Arc::clone(&shared), client, first);
        let _ = tokio::time::timeout(shared.config.connect_timeout * 2, attempted).await;
        Ok(Fleet {
            handle: Arc::new(Handle { shared }),
        })
    }

    fn config(&self) -> Result<Config, FleetError> {
        let bad = |why: String| Err(FleetError::BadOption(why));
        if self.namespace.is_empty() || self.namespace.contains('\0') {
            return bad(format!(
                "the namespace must be non-empty and without NUL, not {:?}",
                self.namespace
            ));
        }
        if self.max_staleness.is_zero() {
            return bad("max_staleness must be more than zero".into());
        }
        let heartbeat = self.heartbeat.unwrap_or_else(|| {
            (self.max_staleness / 4).clamp(Duration::from_millis(10), Duration::from_secs(5))
        });
        if heartbeat.is_zero() || self.connect_timeout.is_zero() {
            return bad("the heartbeat and the connect timeout must be more than zero".into());
        }
        Ok(Config {
            namespace: self.namespace.clone(),
            max_staleness: self.max_staleness,
            heartbeat,
            connect_timeout: self.connect_timeout,
            max_queued: self.max_queued,
            max_backoff: self.max_backoff.max(Duration::from_millis(20)),
            version_ttl: self.version_ttl.max(Duration::from_millis(1)),
        })
    }
}

/// The channel of one named cache of a [`Fleet`]: give it to
/// [`AsyncCacheBuilder::fleet`](cache_core::AsyncCacheBuilder::fleet).
#[derive(Clone)]
pub struct FleetCache {
    handle: Arc<Handle>,
    channel: Arc<Channel>,
}

impl fmt::Debug for FleetCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FleetCache")
            .field("name", &self.channel.name)
            .field("namespace", &self.handle.shared.config.namespace)
            .finish()
    }
}

impl FleetCache {
    /// This cache's values live in Redis too (the fleet's shared tier, L2): a key is loaded
    /// once for the whole fleet, and a process that misses locally reads it from Redis. See
    /// [`SharedFleetCache`] for its options. Every process must use the name shared.
    pub fn shared(self) -> SharedFleetCache {
        self.channel.set_versions(Versions::Key);
        SharedFleetCache {
            cache: self,
            config: TierConfig {
                schema: 0,
                lease: Duration::from_secs(5),
                timeout: Duration::from_millis(200),
                max_wait: Duration::from_secs(5) + Duration::from_millis(200),
                max_value_bytes: 1 << 20,
            },
            codec: std::marker::PhantomData,
        }
    }
}

/// A fleet cache whose values live in Redis too, from [`FleetCache::shared`]: give it to
/// [`AsyncCacheBuilder::fleet`](cache_core::AsyncCacheBuilder::fleet) (keys and values must
/// then be serde `Serialize + DeserializeOwned`). Values are encoded by `C`, postcard by
/// default.
#[derive(Clone)]
#[must_use = "a shared fleet cache does nothing until given to `AsyncCacheBuilder::fleet`"]
pub struct SharedFleetCache<C = Postcard> {
    cache: FleetCache,
    config: TierConfig,
    codec: std::marker::PhantomData<fn() -> C>,
}

impl<C> fmt::Debug for SharedFleetCache<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedFleetCache")
            .field("cache", &self.cache)
            .field("config", &self.config)
            .finish()
    }
}

impl<C: ValueCodec> SharedFleetCache<C> {
    /// The schema version of the values: a value stored by a process of another version is
    /// a miss here (counted in `decode_errors`) and overwritten, so a deploy that changes the
    /// value type never reads the old type. Default 0.
    pub fn version(mut self, schema: u32) -> Self {
        self.config.schema = schema;
        self
    }

    /// How long one process may load a key for the fleet before another may take over (its
    /// lease expires, as when it dies mid-load). Set it above the slowest load. Default 5 s.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.config.lease = lease;
        self.config.max_wait = lease + self.config.timeout;
        self
    }

    /// The longest one request to Redis may add to a call: past it, the call loads locally
    /// (counted in `fleet_errors`). Default 200 ms.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.timeout = timeout;
        self.config.max_wait = self.config.lease + timeout;
        self
    }

    /// Values larger than this, encoded, stay in each process only (counted in
    /// `l2_oversize`). Default 1 MiB.
    pub fn max_value_bytes(mut self, bytes: usize) -> Self {
        self.config.max_value_bytes = bytes;
        self
    }

    /// Encodes values with `C2` instead.
    pub fn codec<C2: ValueCodec>(self) -> SharedFleetCache<C2> {
        SharedFleetCache {
            cache: self.cache,
            config: self.config,
            codec: std::marker::PhantomData,
        }
    }

    fn tier(&self) -> RedisTier {
        RedisTier::new(
            Arc::clone(&self.cache.handle.shared),
            Arc::clone(&self.cache.channel),
            self.config.clone(),
        )
    }
}

impl<K, V, C> FleetAttach<K, V> for SharedFleetCache<C>
where
    K: std::hash::Hash + Eq + Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    V: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    C: ValueCodec,
{
    fn attach(self) -> FleetSetup<K, V> {
        let tier = Arc::new(self.tier());
        FleetSetup::shared::<C>(Arc::new(self.cache), tier)
    }
}

impl FleetChannel for FleetCache {
    fn name(&self) -> &str {
        &self.channel.name
    }

    fn publish(&self, message: Message<'_>) -> Delivery {
        let shared = &self.handle.shared;
        let kind = match message {
            Message::Invalidate(key) => Kind::Invalidate(key.into()),
            // `Clear`, and whatever message a later cache-core adds: a clear covers any.
            _ => Kind::Clear,
        };
        let seq = shared
            .outbox
            .lock()
            .push(&self.channel.name, kind, self.channel.versions());
        shared.outbox_ready.notify_one();
        if !shared.is_connected() {
            return Delivery::ready(Delivered::Queued);
        }
        let mut progress = shared.progress.subscribe();
        Delivery::pending(async move {
            match progress
                .wait_for(|p| p.acknowledged >= seq || !p.connected)
                .await
            {
                Ok(p) if p.acknowledged >= seq => Delivered::Acknowledged,
                _ => Delivered::Queued,
            }
        })
    }

    fn subscribe(&self, receiver: Weak<dyn FleetReceiver>) {
        self.channel.subscribe(receiver);
    }

    fn staleness_cap(&self) -> Option<Duration> {
        let shared = &self.handle.shared;
        (!shared.is_connected()).then_some(shared.config.max_staleness)
    }

    fn link(&self) -> FleetLink {
        if self.handle.shared.is_connected() {
            FleetLink::Connected
        } else {
            FleetLink::Degraded
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_bad_url_or_option_is_an_error_at_connect() {
        let error = Fleet::builder("http://example.com").connect().await;
        assert!(matches!(error, Err(FleetError::BadUrl(_))), "{error:?}");
        for builder in [
            Fleet::builder("redis://127.0.0.1:1").namespace(""),
            Fleet::builder("redis://127.0.0.1:1").namespace("a\0b"),
            Fleet::builder("redis://127.0.0.1:1").max_staleness(Duration::ZERO),
            Fleet::builder("redis://127.0.0.1:1").heartbeat(Duration::ZERO),
        ] {
            let error = builder.connect().await;
            assert!(matches!(error, Err(FleetError::BadOption(_))), "{error:?}");
        }
    }

    #[test]
    fn the_heartbeat_defaults_to_a_quarter_of_the_staleness_bound_within_limits() {
        let heartbeat = |staleness: Duration| {
            Fleet::builder("redis://127.0.0.1:1")
                .max_staleness(staleness)
                .config()
                .unwrap()
                .heartbeat
        };
        assert_eq!(
            heartbeat(Duration::from_secs(1)),
            Duration::from_millis(250)
        );
        assert_eq!(
            heartbeat(Duration::from_millis(20)),
            Duration::from_millis(10)
        );
        assert_eq!(heartbeat(Duration::from_secs(60)), Duration::from_secs(5));
    }

    #[test]
    #[should_panic(expected = "cannot contain NUL")]
    fn a_cache_name_with_nul_is_refused() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let fleet = runtime
            .block_on(Fleet::builder("redis://127.0.0.1:1").connect())
            .unwrap();
        let _ = fleet.cache("a\0b");
    }
}
