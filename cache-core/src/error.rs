//! [`SharedError`]: one load's error, as the callers coalesced on that load receive it.

use std::any::Any;
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
/// It displays as the original error and returns it from [`SharedError::downcast_ref`].
/// The caller whose load it was gets its original error whenever no other caller waited.
#[derive(Clone)]
pub struct SharedError {
    error: Arc<dyn Original>,
}

/// The original error, erased: anything that displays (an `E: Error`, but also
/// `anyhow::Error` or `Box<dyn Error>`, which do not implement `Error`).
trait Original: fmt::Display + fmt::Debug + Send + Sync {
    fn as_any(&self) -> &dyn Any;
}

impl<E: fmt::Display + fmt::Debug + Send + Sync + 'static> Original for E {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl SharedError {
    pub(crate) fn new<E>(error: Arc<E>) -> Self
    where
        E: fmt::Display + fmt::Debug + Send + Sync + 'static,
    {
        SharedError { error }
    }

    /// The original error, if it is an `E`.
    ///
    /// ```
    /// # async fn demo() {
    /// #[cache_core::async_lru]
    /// async fn read(path: String) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    ///     Err("disk on fire".into())
    /// }
    /// if let Err(error) = read("a".into()).await {
    ///     // Alone on its load, the caller gets its own error; coalesced, a SharedError.
    ///     let original = error
    ///         .downcast_ref::<cache_core::SharedError>()
    ///         .and_then(|shared| shared.downcast_ref::<Box<dyn std::error::Error + Send + Sync>>());
    ///     # let _ = original;
    /// }
    /// # }
    /// ```
    pub fn downcast_ref<E: 'static>(&self) -> Option<&E> {
        self.error.as_any().downcast_ref()
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

/// Displays as the original error, which [`downcast_ref`](SharedError::downcast_ref) returns.
impl Error for SharedError {}
