//! Global resource invalidations across every process of a fleet.
//!
//! With a fleet installed (`cache_redis::Fleet::install`), every global-scope invalidation is
//! also published on the fleet's resource channel, and the other processes' invalidations
//! arrive here and invalidate the same resource in [`GLOBAL_RESOURCES`], which reaches the
//! global entries of that resource and the session-scoped entries of every live session
//! (their versions include the global nodes). Session-scope invalidations stay in their
//! process, as sessions do.
//!
//! When the process stops or starts hearing the fleet (or the fleet's Redis is flushed), the
//! registry's epoch moves, which changes the version of every entry at once: every tool
//! result cached so far is dropped, in O(1).
//!
//! The channel is taken on the first invalidation or read miss after a fleet is installed,
//! never on a hit; so install the fleet before the first tool call.
//!
//! A tool with `shared = true` keeps its results in the fleet's shared tier too, keyed by its
//! arguments and the fleet-wide version of its resources (read from Redis on each local
//! miss), so a result cached by one process is reused by another only while none of its
//! resources changed anywhere.

use std::sync::Arc;

use cache_core::fleet::{Delivery, FleetChannel, FleetProvider, FleetReceiver, Message};
use parking_lot::RwLock;

use crate::metrics::GLOBAL;
use crate::resource::ResourceRegistry;

/// The installed fleet's resource channel, once this process has subscribed to it.
struct Subscription {
    provider: Arc<dyn FleetProvider>,
    channel: Arc<dyn FleetChannel>,
    /// Kept alive here: the channel holds it weakly.
    _receiver: Arc<dyn FleetReceiver>,
}

static SUBSCRIPTION: RwLock<Option<Subscription>> = RwLock::new(None);

/// The resource channel of the installed fleet, subscribed on first use; `None` without a
/// fleet. Off the hit path: called on invalidations, read misses and cache builds.
pub(crate) fn channel(registry: &'static ResourceRegistry) -> Option<Arc<dyn FleetChannel>> {
    let provider = cache_core::fleet::installed()?;
    if let Some(subscription) = &*SUBSCRIPTION.read()
        && Arc::ptr_eq(&subscription.provider, &provider)
    {
        return Some(Arc::clone(&subscription.channel));
    }
    let mut subscription = SUBSCRIPTION.write();
    if let Some(current) = &*subscription
        && Arc::ptr_eq(&current.provider, &provider)
    {
        return Some(Arc::clone(&current.channel));
    }
    let channel = provider.resources();
    let receiver: Arc<dyn FleetReceiver> = Arc::new(RemoteResources { registry });
    channel.subscribe(Arc::downgrade(&receiver));
    // Entries cached before this process listened may have missed invalidations.
    registry.flush();
    *subscription = Some(Subscription {
        provider,
        channel: Arc::clone(&channel),
        _receiver: receiver,
    });
    Some(channel)
}

/// Publishes a global invalidation of `resource` to the other processes.
pub(crate) fn publish(channel: &dyn FleetChannel, resource: &str) -> Delivery {
    channel.publish(Message::Invalidate(resource.as_bytes()))
}

/// The other processes' resource invalidations, applied to this process's global registry.
struct RemoteResources {
    registry: &'static ResourceRegistry,
}

impl FleetReceiver for RemoteResources {
    fn invalidate(&self, key: &[u8]) {
        if let Ok(resource) = std::str::from_utf8(key) {
            self.registry.invalidate(resource);
            GLOBAL.count_remote_invalidation();
        }
    }

    fn clear(&self) {
        self.registry.flush();
        GLOBAL.count_remote_invalidation();
    }

    fn flush(&self) {
        self.registry.flush();
    }
}
