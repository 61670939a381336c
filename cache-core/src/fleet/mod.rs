//! The fleet seam: how a cache stays coherent with the other processes of a service.
//!
//! cache-core knows nothing of Redis. A fleet tier (the `cache-redis` crate) implements
//! [`FleetChannel`]: one named channel per cache, which carries that cache's invalidations to
//! every other process and brings theirs back. A cache attached to a channel with
//! [`AsyncCacheBuilder::fleet`](crate::AsyncCacheBuilder::fleet):
//!
//! - publishes every [`invalidate`](crate::AsyncCache::invalidate),
//!   [`insert`](crate::AsyncCache::insert) and [`clear`](crate::AsyncCache::clear) after
//!   applying it locally (so they keep their local semantics and stay synchronous);
//! - applies the invalidations and clears of the other processes, which fence in-flight loads
//!   exactly as local ones do, through the [`FleetReceiver`] it subscribes;
//! - is flushed by the channel whenever the process stops or starts hearing the fleet, and
//!   while it cannot hear it, caps the life of every entry it stores at
//!   [`FleetChannel::staleness_cap`].
//!
//! The hit path never looks at any of this: a fleet cache's hit is a local cache's hit.
//!
//! # Keys on the wire
//!
//! Keys cross processes as [postcard](https://docs.rs/postcard): a compact binary encoding
//! (varint integers, length-prefixed strings, no field names or type tags) whose wire format
//! is documented and stable across postcard 1.x, and deterministic, so one key always encodes
//! to the same bytes in every process (a key is matched by its bytes in Redis). A `u64` key
//! takes 1 to 10 bytes, a `String` its length plus one or two.
//!
//! [`invalidate`](crate::AsyncCache::invalidate) takes any borrowed form `Q` of the key
//! (`K: Borrow<Q>`), which cannot be encoded in general. The key itself and the common
//! borrowed forms are: `Q = K`, `str` (for `String`, `Box<str>`, `Arc<str>` keys) and `[u8]`
//! (for `Vec<u8>` keys), whose encodings are those of the owned keys. Any other borrowed form
//! is applied locally and published as a [`clear`](crate::AsyncCache::clear) of the cache,
//! which is coarse but never stale, and counted in `fleet_errors`. None of this costs a
//! local cache anything: it runs only when a channel is attached.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::hash::Hash;

mod attach;
pub(crate) mod shared;

use attach::encode;
pub(crate) use attach::{Attachment, KeyCodec};
pub use shared::{
    Found, Lease, Postcard, Read, ReadOrLease, SharedTier, TierError, ValueCodec, Version, Waiting,
};

/// One cache's channel to the other processes of its fleet, implemented by a fleet tier.
///
/// Every process that attaches a cache to a channel of the same name (in one fleet) shares
/// that cache's invalidations. See the [module docs](self).
pub trait FleetChannel: Send + Sync + 'static {
    /// The cache's name: its identity across the processes of the fleet.
    fn name(&self) -> &str;

    /// Tells every other process of the fleet about `message`, which the caller has applied
    /// locally already. Returns at once; the [`Delivery`] resolves when the fleet tier has
    /// the message acknowledged, or has queued it because the fleet cannot be reached.
    fn publish(&self, message: Message<'_>) -> Delivery;

    /// Registers the cache that receives the other processes' messages on this channel. Held
    /// weakly: a dropped cache simply stops receiving.
    fn subscribe(&self, receiver: Weak<dyn FleetReceiver>);

    /// The longest an entry stored now may live: `None` while the process hears the fleet,
    /// the fleet's maximum staleness while it cannot (so that no entry outlives that bound
    /// past an invalidation it did not hear).
    fn staleness_cap(&self) -> Option<Duration>;

    /// Whether the process hears the fleet now, for metrics.
    fn link(&self) -> FleetLink;
}

/// A shared channel is a channel: `builder.fleet(provider.channel("users"))`.
impl<T: FleetChannel + ?Sized> FleetChannel for Arc<T> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn publish(&self, message: Message<'_>) -> Delivery {
        (**self).publish(message)
    }

    fn subscribe(&self, receiver: Weak<dyn FleetReceiver>) {
        (**self).subscribe(receiver);
    }

    fn staleness_cap(&self) -> Option<Duration> {
        (**self).staleness_cap()
    }

    fn link(&self) -> FleetLink {
        (**self).link()
    }
}

/// What a cache tells the other processes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message<'a> {
    /// The key encoded as these bytes was invalidated (or overwritten).
    Invalidate(&'a [u8]),
    /// Every entry was invalidated.
    Clear,
}

/// What the other processes tell a cache, delivered by its channel.
pub trait FleetReceiver: Send + Sync {
    /// Another process invalidated the key encoded as `key`: remove it and fence its load
    /// in flight, as a local [`invalidate`](crate::AsyncCache::invalidate) does.
    fn invalidate(&self, key: &[u8]);

    /// Another process cleared the cache: remove every entry and fence every load.
    fn clear(&self);

    /// The process stopped or started hearing the fleet, so it may have missed
    /// invalidations: drop every entry and fence every load (nothing is published).
    fn flush(&self);
}

/// Whether a fleet cache hears the other processes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FleetLink {
    /// Invalidations flow both ways.
    Connected,
    /// The fleet cannot be reached: entries are capped at the maximum staleness and
    /// outgoing invalidations are queued.
    Degraded,
    /// Built with a fleet name before any fleet was installed: the cache is process-local.
    NotInstalled,
}

/// How far a published message got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delivered {
    /// The fleet's server acknowledged it: every process that hears the fleet has it, or
    /// will within the propagation delay.
    Acknowledged,
    /// The fleet could not be reached: the message waits in a bounded queue and is sent on
    /// reconnect (an overflowing queue turns into a clear of the caches concerned).
    Queued,
}

/// A future that resolves when a published message is [`Delivered`]. Dropping it changes
/// nothing: the message is delivered all the same.
#[must_use = "a delivery does nothing when polled only to be dropped; drop it to not wait"]
pub struct Delivery {
    state: DeliveryState,
}

enum DeliveryState {
    Ready(Delivered),
    Pending(Pin<Box<dyn Future<Output = Delivered> + Send>>),
}

impl Delivery {
    /// A delivery that has already happened.
    pub fn ready(delivered: Delivered) -> Self {
        Delivery {
            state: DeliveryState::Ready(delivered),
        }
    }

    /// A delivery that resolves with `until`.
    pub fn pending(until: impl Future<Output = Delivered> + Send + 'static) -> Self {
        Delivery {
            state: DeliveryState::Pending(Box::pin(until)),
        }
    }
}

impl Future for Delivery {
    type Output = Delivered;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Delivered> {
        match &mut self.state {
            DeliveryState::Ready(delivered) => Poll::Ready(*delivered),
            DeliveryState::Pending(until) => until.as_mut().poll(cx),
        }
    }
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.state {
            DeliveryState::Ready(delivered) => f.debug_tuple("Delivery").field(delivered).finish(),
            DeliveryState::Pending(_) => f.write_str("Delivery(pending)"),
        }
    }
}

/// A process's fleet, as the attributes and agent-cache reach it: installed once by the fleet
/// tier (`cache_redis::Fleet::install`), it hands out the channel of each named cache.
pub trait FleetProvider: Send + Sync + 'static {
    /// The channel of the cache called `name`.
    fn channel(&self, name: &str) -> Arc<dyn FleetChannel>;

    /// The channel and the shared tier (L2) of the cache called `name`, whose values carry
    /// schema version `schema`; `None` for a fleet without a shared tier.
    fn shared(
        &self,
        name: &str,
        schema: u32,
    ) -> Option<(Arc<dyn FleetChannel>, Arc<dyn SharedTier>)> {
        let _ = (name, schema);
        None
    }

    /// The channel of agent-cache's resource invalidations: a key is a resource path
    /// (`cart:u1`), hierarchical on `:`.
    fn resources(&self) -> Arc<dyn FleetChannel> {
        self.channel(RESOURCES)
    }

    /// The fleet-wide versions of resources, for agent tools whose results live in the shared
    /// tier; `None` for a fleet without one.
    fn resource_versions(&self) -> Option<Arc<dyn ResourceVersions>> {
        None
    }
}

/// The name of the channel of agent-cache's resource invalidations.
pub const RESOURCES: &str = "agent-cache:resources";

/// Fleet-wide resource versions (implemented by a fleet tier with a shared tier): every
/// invalidation of a resource on the [`resources`](FleetProvider::resources) channel moves
/// the version of the entries it reaches, as agent-cache's process registry does (`cart`
/// reaches `cart:u1`, `cart:u1` reaches `cart`).
pub trait ResourceVersions: Send + Sync + 'static {
    /// The version of an entry tagged with `resources`, summed: it changes whenever one of
    /// them is invalidated anywhere in the fleet.
    fn version(&self, resources: Vec<String>) -> BoxFuture<'static, Result<u64, TierError>>;

    /// The longest one request may take before the call goes on without the shared tier.
    fn timeout(&self) -> Duration;
}

/// What [`AsyncCacheBuilder::fleet`](crate::AsyncCacheBuilder::fleet) takes: a fleet cache's
/// channel (any [`FleetChannel`]: coherence), or a fleet tier's shared cache (coherence and
/// an L2, for keys and values that cross processes).
pub trait FleetAttach<K, V> {
    /// How the cache attaches.
    fn attach(self) -> FleetSetup<K, V>;
}

/// How a cache attaches to its fleet, made by a [`FleetAttach`].
pub struct FleetSetup<K, V> {
    pub(crate) attachment: Attachment<K, V>,
}

impl<K, V> FleetSetup<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Coherence only: invalidations cross processes, values stay in each.
    pub fn coherent(channel: Arc<dyn FleetChannel>) -> Self {
        FleetSetup {
            attachment: Attachment::new(channel, Some(KeyCodec::postcard()), None),
        }
    }

    /// Coherence and a shared tier: values (encoded by `C`) live in the tier too.
    pub fn shared<C: ValueCodec>(channel: Arc<dyn FleetChannel>, tier: Arc<dyn SharedTier>) -> Self
    where
        V: Serialize + DeserializeOwned,
    {
        FleetSetup {
            attachment: Attachment::new(
                channel,
                Some(KeyCodec::postcard()),
                Some(shared::Shared::new::<C>(tier)),
            ),
        }
    }
}

/// A setup made by hand (`FleetSetup::shared::<Postcard>(channel, tier)`) attaches as made.
impl<K, V> FleetAttach<K, V> for FleetSetup<K, V> {
    fn attach(self) -> FleetSetup<K, V> {
        self
    }
}

impl<K, V, C> FleetAttach<K, V> for C
where
    C: FleetChannel,
    K: Hash + Eq + Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn attach(self) -> FleetSetup<K, V> {
        FleetSetup::coherent(Arc::new(self))
    }
}

static INSTALLED: RwLock<Option<Arc<dyn FleetProvider>>> = RwLock::new(None);

/// Makes `provider` this process's fleet, replacing any installed before. Caches built from
/// then on with a fleet name (`#[async_ttl(fleet = "...")]`) and agent-cache's resource
/// invalidations go through it; caches built earlier keep the channel they were built with.
pub fn install(provider: Arc<dyn FleetProvider>) {
    *INSTALLED
        .write()
        .unwrap_or_else(|poison| poison.into_inner()) = Some(provider);
}

/// This process's fleet, if one is installed.
pub fn installed() -> Option<Arc<dyn FleetProvider>> {
    INSTALLED
        .read()
        .unwrap_or_else(|poison| poison.into_inner())
        .clone()
}

/// The channel of `name` in the installed fleet, or a process-local stand-in (which says so,
/// once per process, in a `tracing` warning and in the cache's metrics).
pub(crate) fn installed_channel(name: &'static str) -> Arc<dyn FleetChannel> {
    if let Some(provider) = installed() {
        return provider.channel(name);
    }
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            target: "cache_core::fleet",
            cache = name,
            "a cache with `fleet = \"{name}\"` was first used before any fleet was installed: it \
             runs process-local (call `Fleet::install` before the first call of a cached fn)"
        );
    }
    Arc::new(NotInstalled { name })
}

/// Tells the installed fleet's cache `name` that `key` (or, for `None`, everything) was
/// invalidated, for a process that has not built its copy of that cache; for a `shared`
/// cache, through its shared channel, so that the value in the shared tier goes too.
pub(crate) fn publish_unbuilt<K: Serialize>(
    name: &'static str,
    key: Option<&K>,
    shared: bool,
) -> Delivery {
    let shared_channel = shared
        .then(|| installed().and_then(|provider| provider.shared(name, 0)))
        .flatten()
        .map(|(channel, _)| channel);
    let channel = shared_channel.unwrap_or_else(|| installed_channel(name));
    match key {
        Some(key) => channel.publish(Message::Invalidate(&encode(key))),
        None => channel.publish(Message::Clear),
    }
}

/// The channel of a cache that names a fleet none was installed for: process-local.
struct NotInstalled {
    name: &'static str,
}

impl FleetChannel for NotInstalled {
    fn name(&self) -> &str {
        self.name
    }

    fn publish(&self, _: Message<'_>) -> Delivery {
        Delivery::ready(Delivered::Acknowledged)
    }

    fn subscribe(&self, _: Weak<dyn FleetReceiver>) {}

    fn staleness_cap(&self) -> Option<Duration> {
        None
    }

    fn link(&self) -> FleetLink {
        FleetLink::NotInstalled
    }
}

/// A cache's fleet, as its metrics report it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct FleetInfo {
    /// The cache's name in its fleet.
    pub name: String,
    /// Whether it hears the fleet now.
    pub link: FleetLink,
}
