//! How a cache is attached to its fleet: its keys' encoding, what it publishes, and the
//! receiver through which the other processes' messages reach it.

use std::hash::Hash;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::shared::Shared;
use super::{Delivery, FleetChannel, FleetInfo, FleetReceiver, Message};
use crate::cache::Inner;
use crate::metrics::{Counters, Event};

/// Encodes one cache's keys.
pub(crate) type KeyEncoder<K> = fn(&K) -> Vec<u8>;

/// How one cache's keys cross processes.
pub(crate) struct KeyCodec<K> {
    encode: KeyEncoder<K>,
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
pub(crate) fn encode<T: Serialize + ?Sized>(key: &T) -> Vec<u8> {
    postcard::to_allocvec(key).unwrap_or_default()
}

/// A cache's link to its fleet: set by the builder, kept in the cache's shared state.
pub(crate) struct Attachment<K, V> {
    pub(crate) channel: Arc<dyn FleetChannel>,
    /// `None` for a cache that only follows the fleet's coherence (capped while degraded,
    /// flushed by its owner) and publishes nothing: agent-cache's tool caches, whose keys
    /// embed process-local resource versions.
    codec: Option<KeyCodec<K>>,
    /// The fleet's shared tier (L2), for a cache whose values live there too.
    shared: Option<Shared<V>>,
}

impl<K, V> Attachment<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub(crate) fn new(
        channel: Arc<dyn FleetChannel>,
        codec: Option<KeyCodec<K>>,
        shared: Option<Shared<V>>,
    ) -> Self {
        Attachment {
            channel,
            codec,
            shared,
        }
    }

    /// The shared tier and `key`'s bytes, when this cache has a tier it can use now.
    pub(crate) fn shared_key(&self, key: &K) -> Option<(&Shared<V>, Vec<u8>)> {
        let shared = self.shared.as_ref().filter(|shared| shared.usable())?;
        let codec = self.codec.as_ref()?;
        Some((shared, (codec.encode)(key)))
    }

    /// The shared tier, when this cache has one it can use now, and its key encoder.
    pub(crate) fn shared(&self) -> Option<(&Shared<V>, KeyEncoder<K>)> {
        let shared = self.shared.as_ref().filter(|shared| shared.usable())?;
        Some((shared, self.codec.as_ref()?.encode))
    }

    /// Subscribes `inner` to the channel's messages.
    pub(crate) fn subscribe(&self, inner: &Arc<Inner<K, V>>) {
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
                inner.fence(&key);
                drop(inner.store.remove(&key));
                // Counted once applied (as agent-cache counts): whoever sees the count sees
                // the entry gone, and a write made after that is not undone by this message.
                inner.counters.count_done(Event::RemoteInvalidation);
            }
            // Another deploy's key type, or a foreign write under the fleet's prefix: nothing
            // this cache holds can match it.
            None => inner.counters.count(Event::FleetError),
        }
    }

    fn clear(&self) {
        if let Some(inner) = self.inner.upgrade() {
            inner.drop_all();
            inner.counters.count_done(Event::RemoteInvalidation);
        }
    }

    fn flush(&self) {
        if let Some(inner) = self.inner.upgrade() {
            inner.counters.count(Event::FleetFlush);
            inner.drop_all();
        }
    }
}

impl<K, V> Attachment<K, V> {
    pub(crate) fn info(&self) -> FleetInfo {
        FleetInfo {
            name: self.channel.name().to_owned(),
            link: self.channel.link(),
        }
    }
}
