//! [`Waiters`]: the loads of this process waiting for a shared key another process loads.
//!
//! A process that finds another's lease on a key waits until that value is stored or the
//! lease released: the storing script `PUBLISH`es the key on `<ns>:filled`, the link's
//! connection (subscribed to it) hears it, and [`Waiters::wake`] wakes the waiting load.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::sync::Notify;

/// The processes of this fleet waiting for keys other processes load, by value key.
#[derive(Default)]
pub(crate) struct Waiters {
    map: Mutex<HashMap<Vec<u8>, Arc<WaitEntry>>>,
}

#[derive(Default)]
pub(crate) struct WaitEntry {
    /// Moved by each wake, so a waiter that looked before it is not stranded.
    pub(crate) wakes: AtomicU64,
    pub(crate) notify: Notify,
}

impl Waiters {
    pub(crate) fn entry(&self, key: &[u8]) -> Arc<WaitEntry> {
        Arc::clone(self.map.lock().entry(key.to_vec()).or_default())
    }

    /// Another process stored or released `key`: wake whoever waits for it here.
    pub(crate) fn wake(&self, key: &[u8]) {
        if let Some(entry) = self.map.lock().remove(key) {
            entry.wakes.fetch_add(1, Ordering::SeqCst);
            entry.notify.notify_waiters();
        }
    }

    pub(crate) fn forget(&self, key: &[u8], entry: &Arc<WaitEntry>) {
        let mut map = self.map.lock();
        // Ours, and nobody else's (the map's and ours are the two references).
        if map
            .get(key)
            .is_some_and(|e| Arc::ptr_eq(e, entry) && Arc::strong_count(e) <= 2)
        {
            map.remove(key);
        }
    }
}
