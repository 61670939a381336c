//! [`SharedError`]: one load's error, as the callers coalesced on that load receive it.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

/// The error of a load that several callers shared, for error types that are not `Clone`.
///
/// A cached function (`#[async_lru]`, `#[async_ttl]`) runs one load for every concurrent call
/// with the same arguments. When that load fails, each caller needs an error of the
/// function's own type. A `Clone` error is cloned; an error type `E` that is not `Clone`
/// but implements `From<SharedError>` gets `E::from(shared)`. `anyhow::Error` and
/// `Box<dyn Error + Send + Sync>` already do; a `thiserror` enum can add a variant:
///
/// ```
/// #[derive(Debug)]
/// enum DbError {
///     Connection(std::io::Error),
///     Shared(cache_core::SharedError),
/// }
/// # impl std::fmt::Display for DbError {
/// #     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("db error") }
/// # }
/// # impl std::error::Error for DbError {}
/// impl From<cache_core::SharedError> for DbError {
///     fn from(shared: cache_core::SharedError) -> Self {
///         DbError::Shared(shared)
///     }
/// }
/// ```
///
/// It displays as the original error and exposes it through [`SharedError::downcast_ref`].
/// The caller whose load it was gets its original error whenever no other caller waited.
#[derive(Clone)]
pub struct SharedError {
    error: Arc<dyn Error + Send + Sync>,
}

impl SharedError {
    pub(crate) fn new<E: Error + Send + Sync + 'static>(error: Arc<E>) -> Self {
        SharedError { error }
    }

    /// The original error.
    pub fn get_ref(&self) -> &(dyn Error + Send + Sync + 'static) {
        &*self.error
    }

    /// The original error, if it is an `E`.
    pub fn downcast_ref<E: Error + 'static>(&self) -> Option<&E> {
        self.error.downcast_ref()
    }
}

impl fmt::Display for SharedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl fmt::Debug for SharedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.error, f)
    }
}

/// Transparent, like `#[error(transparent)]`: the original error's source is its source.
impl Error for SharedError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.error.source()
    }
}
