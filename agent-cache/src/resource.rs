//! [`ResourceRegistry`]: invalidation by resource in O(1) of the number of cached entries.
//!
//! Resources are paths on `:` (`cart`, `cart:u1`, `cart:u1:items`). Each path that a live
//! entry depends on has a [`Node`] with two counters, which only ever grow:
//!
//! - `own`, bumped when the resource itself is invalidated; an entry depends on the `own` of
//!   its resource and of every ancestor, so invalidating `cart` reaches `cart:u1`;
//! - `below`, bumped when a descendant is invalidated; an entry depends on the `below` of its
//!   own resource, so invalidating `cart:u1` reaches a read tagged `cart`, which covers every
//!   cart (see the note in the crate docs).
//!
//! An entry's *version* is the sum of the counters it depends on (plus the global registry's
//! epoch, which a fleet flush moves to drop everything at once), taken when its load began,
//! and the version is part of its cache key. Invalidating bumps one `own` and the `below` of
//! each ancestor, O(depth); every entry whose version moved is simply never looked up again
//! and ages out of its cache. Counters only grow while a node lives, and a node lives while
//! any entry depends on it (entries hold their nodes), so a version never comes back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::RwLock;

/// One resource path.
#[derive(Debug, Default)]
pub(crate) struct Node {
    own: AtomicU64,
    below: AtomicU64,
    parent: Option<Arc<Node>>,
}

impl Node {
    /// The sum of every counter an entry tagged with this resource depends on.
    #[inline]
    pub(crate) fn version(&self) -> u64 {
        let mut version = self.below.load(Ordering::Acquire);
        let mut node = Some(self);
        while let Some(current) = node {
            version = version.wrapping_add(current.own.load(Ordering::Acquire));
            node = current.parent.as_deref();
        }
        version
    }

    /// The counters [`version`](Self::version) sums, for a node that lives for good.
    pub(crate) fn counters(node: &'static Node) -> impl Iterator<Item = &'static AtomicU64> {
        std::iter::once(&node.below).chain(
            std::iter::successors(Some(node), |node| node.parent.as_deref()).map(|node| &node.own),
        )
    }
}

/// The resource nodes of one scope: the process (global) or one session run.
#[derive(Debug, Default)]
pub(crate) struct ResourceRegistry {
    nodes: RwLock<Nodes>,
    /// Added to every version taken from this registry: bumping it invalidates everything.
    epoch: AtomicU64,
}

#[derive(Debug, Default)]
struct Nodes {
    /// foldhash, not SipHash: every read of a tool whose resources name a parameter looks its
    /// paths up here, and foldhash's seeded hash is several times cheaper for a short key.
    by_path: HashMap<Box<str>, Weak<Node>, foldhash::fast::RandomState>,
    /// Dead entries are swept when the map reaches this size, so sweeping is amortised O(1).
    sweep_at: usize,
}

impl ResourceRegistry {
    /// The node of `path`, created (with its ancestors) if no live entry depends on it yet.
    pub(crate) fn resolve(&self, path: &str) -> Arc<Node> {
        if let Some(node) = self.nodes.read().by_path.get(path).and_then(Weak::upgrade) {
            return node;
        }
        let mut nodes = self.nodes.write();
        let mut parent: Option<Arc<Node>> = None;
        for (end, _) in path
            .match_indices(':')
            .chain(std::iter::once((path.len(), "")))
        {
            let prefix = &path[..end];
            let node = match nodes.by_path.get(prefix).and_then(Weak::upgrade) {
                Some(node) => node,
                None => {
                    let node = Arc::new(Node {
                        parent: parent.take(),
                        ..Node::default()
                    });
                    nodes.insert(prefix, &node);
                    node
                }
            };
            parent = Some(node);
        }
        parent.unwrap_or_default()
    }

    /// The version of `path`'s node, if it has one: [`resolve`](Self::resolve) then
    /// [`Node::version`], without creating a node. `None` when no live entry depends on
    /// `path` (so no entry can be found under any version of it).
    #[inline]
    pub(crate) fn version_of(&self, path: &str) -> Option<u64> {
        let node = self
            .nodes
            .read()
            .by_path
            .get(path)
            .and_then(Weak::upgrade)?;
        Some(node.version())
    }

    /// Invalidates `path` and everything below it, and marks every ancestor as changed below.
    pub(crate) fn invalidate(&self, path: &str) {
        let nodes = self.nodes.read();
        for (end, _) in path.match_indices(':') {
            if let Some(ancestor) = nodes.by_path.get(&path[..end]).and_then(Weak::upgrade) {
                ancestor.below.fetch_add(1, Ordering::AcqRel);
            }
        }
        if let Some(node) = nodes.by_path.get(path).and_then(Weak::upgrade) {
            node.own.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Invalidates every resource at once (a fleet flush): O(1).
    pub(crate) fn flush(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// The counter of [`epoch`](Self::epoch), for a version summed from flattened counters.
    pub(crate) fn epoch_counter(&self) -> &AtomicU64 {
        &self.epoch
    }

    /// Part of every version: moved by [`flush`](Self::flush).
    #[inline]
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Live resource nodes (for tests of the sweep).
    #[cfg(test)]
    fn live(&self) -> usize {
        let nodes = self.nodes.read();
        nodes
            .by_path
            .values()
            .filter(|node| node.strong_count() > 0)
            .count()
    }
}

impl Nodes {
    fn insert(&mut self, path: &str, node: &Arc<Node>) {
        if self.by_path.len() >= self.sweep_at {
            self.by_path.retain(|_, node| node.strong_count() > 0);
            self.sweep_at = (2 * self.by_path.len()).max(1024);
        }
        self.by_path.insert(path.into(), Arc::downgrade(node));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalidating_a_resource_moves_its_version_and_its_descendants_only() {
        let registry = ResourceRegistry::default();
        let cart = registry.resolve("cart");
        let u1 = registry.resolve("cart:u1");
        let u2 = registry.resolve("cart:u2");
        let items = registry.resolve("cart:u1:items");
        let orders = registry.resolve("orders");
        let versions = || [&cart, &u1, &u2, &items, &orders].map(|node| node.version());

        let before = versions();
        registry.invalidate("cart:u1");
        let after = versions();
        // cart (covers u1), u1 and u1:items move; u2 and orders do not.
        assert_eq!(
            before
                .iter()
                .zip(after)
                .map(|(b, a)| *b != a)
                .collect::<Vec<_>>(),
            [true, true, false, true, false]
        );

        let before = versions();
        registry.invalidate("cart");
        let after = versions();
        assert_eq!(
            before
                .iter()
                .zip(after)
                .map(|(b, a)| *b != a)
                .collect::<Vec<_>>(),
            [true, true, true, true, false]
        );
    }

    #[test]
    fn invalidating_a_resource_no_entry_depends_on_still_reaches_its_ancestors() {
        let registry = ResourceRegistry::default();
        let cart = registry.resolve("cart");
        let before = cart.version();
        registry.invalidate("cart:u9"); // no node for cart:u9
        assert_ne!(cart.version(), before);
    }

    #[test]
    fn nodes_no_entry_holds_are_swept() {
        let registry = ResourceRegistry::default();
        let kept = registry.resolve("kept");
        for i in 0..10_000 {
            drop(registry.resolve(&format!("user:{i}")));
        }
        assert!(
            registry.nodes.read().by_path.len() < 2_100,
            "swept as it grows"
        );
        assert_eq!(registry.resolve("kept").version(), kept.version());
        assert!(registry.live() <= 3);
    }
}
