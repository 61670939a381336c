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
    /// #[cache_core::async_lru]
    /// async fn read(path: String) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    ///     Err(format!("{path}: disk on fire").into())
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (a, b) = tokio::join!(read("a".into()), read("a".into()));
    /// for error in [a.unwrap_err(), b.unwrap_err()] {
    ///     // Each caller sees the message; a caller that shared the load can reach the
    ///     // original through the `SharedError` inside.
    ///     assert_eq!(error.to_string(), "a: disk on fire");
    ///     if let Some(shared) = error.downcast_ref::<cache_core::SharedError>() {
    ///         assert!(shared.downcast_ref::<Box<dyn std::error::Error + Send + Sync>>().is_some());
    ///     }
    /// }
    /// # }
    /// ```
    pub fn downcast_ref<E: 'static>(&self) -> Option<&E> {
        // Through the `dyn`: `Arc<dyn Original>` is itself an `Original` (blanket impl).
        (*self.error).as_any().downcast_ref()
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
