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
use std::hash::Hash;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cache::Inner;
use crate::metrics::{Counters, Event};

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
/// invalidated, for a process that has not built its copy of that cache.
pub(crate) fn publish_unbuilt<K: Serialize>(name: &'static str, key: Option<&K>) -> Delivery {
    let channel = installed_channel(name);
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

/// How one cache's keys cross processes.
pub(crate) struct KeyCodec<K> {
    encode: fn(&K) -> Vec<u8>,
    decode: fn(&[u8]) -> Option<K>,
}

// Derived `Clone` would require `K: Clone`; two fn pointers are always `Copy`.
impl<K> Clone for KeyCodec<K> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K> Copy for KeyCodec<K> {}

impl<K: Serialize + DeserializeOwned> KeyCodec<K> {
    pub(crate) fn postcard() -> Self {
        KeyCodec {
            encode: |key| encode(key),
            decode: |bytes| postcard::from_bytes(bytes).ok(),
        }
    }
}

/// A key's bytes on the wire. Serializing into a `Vec` fails only for a type whose own
/// `Serialize` fails (a map with non-string keys does not, in postcard): such a key has no
/// bytes, and is published as a clear.
fn encode<T: Serialize + ?Sized>(key: &T) -> Vec<u8> {
    postcard::to_allocvec(key).unwrap_or_default()
}

/// A cache's link to its fleet: set by the builder, kept in the cache's shared state.
pub(crate) struct Attachment<K> {
    pub(crate) channel: Arc<dyn FleetChannel>,
    /// `None` for a cache that only follows the fleet's coherence (capped while degraded,
    /// flushed by its owner) and publishes nothing: agent-cache's tool caches, whose keys
    /// embed process-local resource versions.
    codec: Option<KeyCodec<K>>,
}

impl<K> Attachment<K>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
{
    pub(crate) fn new(channel: Arc<dyn FleetChannel>, codec: Option<KeyCodec<K>>) -> Self {
        Attachment { channel, codec }
    }

    /// Subscribes `inner` to the channel's messages.
    pub(crate) fn subscribe<V>(&self, inner: &Arc<Inner<K, V>>)
    where
        V: Clone + Send + Sync + 'static,
    {
        let Some(codec) = self.codec else { return };
        let receiver: Arc<dyn FleetReceiver> = Arc::new(Remote {
            inner: Arc::downgrade(inner),
            decode: codec.decode,
        });
        // The channel holds the receiver weakly, the cache strongly: it lives as the cache.
        self.channel.subscribe(Arc::downgrade(&receiver));
        inner
            .fleet_receiver
            .set(receiver)
            .unwrap_or_else(|_| unreachable!("a cache subscribes once, when it is built"));
    }

    /// `ttl`, shortened to the staleness cap while the fleet cannot be heard.
    pub(crate) fn cap(&self, ttl: Option<Duration>) -> Option<Duration> {
        match self.channel.staleness_cap() {
            None => ttl,
            Some(cap) => Some(ttl.map_or(cap, |ttl| ttl.min(cap))),
        }
    }

    /// Tells the fleet that `key` (any borrowed form of a key) was invalidated; `None` for a
    /// cache that publishes nothing. A key that cannot be encoded is published as a clear of
    /// the whole cache, which is never stale, and counted as a fleet error.
    pub(crate) fn publish_invalidate<Q>(&self, key: &Q, counters: &Counters) -> Option<Delivery>
    where
        Q: ?Sized,
    {
        let codec = self.codec.as_ref()?;
        match encode_borrowed::<K, Q>(codec, key) {
            Some(bytes) if !bytes.is_empty() || is_unit::<K>() => {
                Some(self.channel.publish(Message::Invalidate(&bytes)))
            }
            _ => {
                counters.count(Event::FleetError);
                static WARNED: AtomicBool = AtomicBool::new(false);
                if !WARNED.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        target: "cache_core::fleet",
                        cache = self.channel.name(),
                        "a fleet cache was invalidated by a borrowed form of its key that cannot \
                         be encoded (only the key itself, `str` and `[u8]` can): the whole cache \
                         was cleared across the fleet instead"
                    );
                }
                Some(self.channel.publish(Message::Clear))
            }
        }
    }

    pub(crate) fn publish_clear(&self) -> Option<Delivery> {
        self.codec?;
        Some(self.channel.publish(Message::Clear))
    }
}

/// An encoding of `key` that decodes as the `K` it borrows from: `key` itself when `Q` is
/// `K`, and the borrowed forms whose serde form is the owned one's (`str`, `[u8]`).
fn encode_borrowed<K, Q>(codec: &KeyCodec<K>, key: &Q) -> Option<Vec<u8>>
where
    K: 'static,
    Q: ?Sized,
{
    let q = typeid::of::<Q>();
    if q == typeid::of::<K>() {
        // SAFETY: `Q` is `K` (their type ids are equal), so `key` points to a `K`.
        let key = unsafe { &*std::ptr::from_ref(key).cast::<K>() };
        return Some((codec.encode)(key));
    }
    if q == typeid::of::<str>() {
        // SAFETY: `Q` is `str`, so `&Q` is a `&str` (the same fat pointer).
        let key: &str = unsafe { std::mem::transmute_copy(&key) };
        return Some(encode(key));
    }
    if q == typeid::of::<[u8]>() {
        // SAFETY: `Q` is `[u8]`, so `&Q` is a `&[u8]`.
        let key: &[u8] = unsafe { std::mem::transmute_copy(&key) };
        return Some(encode(key));
    }
    None
}

/// `()` is the one key type whose encoding is empty (an empty encoding otherwise means the
/// key's `Serialize` failed).
fn is_unit<K: 'static>() -> bool {
    typeid::of::<K>() == typeid::of::<()>()
}

/// A cache as its channel delivers the other processes' messages to it.
struct Remote<K, V> {
    inner: Weak<Inner<K, V>>,
    decode: fn(&[u8]) -> Option<K>,
}

impl<K, V> FleetReceiver for Remote<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn invalidate(&self, key: &[u8]) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        match (self.decode)(key) {
            Some(key) => {
                // Counted first, so whoever sees the entry gone sees it counted.
                inner.counters.count(Event::RemoteInvalidation);
                inner.fence(&key);
                inner.store.remove(&key);
            }
            // Another deploy's key type, or a foreign write under the fleet's prefix: nothing
            // this cache holds can match it.
            None => inner.counters.count(Event::FleetError),
        }
    }

    fn clear(&self) {
        if let Some(inner) = self.inner.upgrade() {
            inner.counters.count(Event::RemoteInvalidation);
            inner.drop_all();
        }
    }

    fn flush(&self) {
        if let Some(inner) = self.inner.upgrade() {
            inner.counters.count(Event::FleetFlush);
            inner.drop_all();
        }
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

impl<K> Attachment<K> {
    pub(crate) fn info(&self) -> FleetInfo {
        FleetInfo {
            name: self.channel.name().to_owned(),
            link: self.channel.link(),
        }
    }
}
