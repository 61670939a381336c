//! [`SpinLock`]: the lock of a run's loop detector, which every tool call takes once.
//!
//! Its critical sections are a few dozen instructions that never block or await (recording a
//! call, and for a read the cache lookup it is recorded with), so taking it costs one atomic
//! swap and releasing it a plain store: one read-modify-write a call, where a parking mutex
//! needs two (its release must look for parked waiters). A waiter spins briefly, then yields
//! its thread, with crossbeam's [`Backoff`]; it never parks, which is the trade: a holder the
//! OS preempts inside its few instructions keeps waiters yielding until it runs again.

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_utils::Backoff;

/// A spin lock for short critical sections that never block.
#[derive(Debug, Default)]
pub(crate) struct SpinLock<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the value is reached only through a guard, and one guard exists at a time.
unsafe impl<T: Send> Sync for SpinLock<T> {}

impl<T> SpinLock<T> {
    pub(crate) fn new(value: T) -> Self {
        SpinLock {
            locked: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    #[inline]
    pub(crate) fn lock(&self) -> SpinGuard<'_, T> {
        if self.locked.swap(true, Ordering::Acquire) {
            self.wait();
        }
        SpinGuard { lock: self }
    }

    #[cold]
    fn wait(&self) {
        let backoff = Backoff::new();
        loop {
            // Spin on a load, so waiters do not bounce the line between them.
            while self.locked.load(Ordering::Relaxed) {
                backoff.snooze();
            }
            if !self.locked.swap(true, Ordering::Acquire) {
                return;
            }
        }
    }
}

/// The value of a locked [`SpinLock`]; dropping it (a panic included) releases the lock.
pub(crate) struct SpinGuard<'a, T> {
    lock: &'a SpinLock<T>,
}

impl<T> Deref for SpinGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: this guard holds the lock.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for SpinGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: this guard holds the lock.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.lock.locked.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_taking_it_at_once_never_overlap() {
        let lock = SpinLock::new(0_u64);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..100_000 {
                        let mut value = lock.lock();
                        // Not atomic: a lost update would show an overlap.
                        let read = *value;
                        std::hint::black_box(());
                        *value = read + 1;
                    }
                });
            }
        });
        assert_eq!(*lock.lock(), 400_000);
    }

    #[test]
    fn a_panic_while_locked_releases_it() {
        let lock = SpinLock::new(1);
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _guard = lock.lock();
            panic!("inside the critical section");
        }));
        assert!(panicked.is_err());
        assert_eq!(*lock.lock(), 1);
    }
}
