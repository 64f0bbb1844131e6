//! Errors shared by every port.

/// A storage adapter could not do what was asked for a reason that is not the caller's fault
/// (database unreachable, constraint the domain did not expect, ...). The message is for logs,
/// never for clients: it must not hold a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("storage failure: {0}")]
pub struct StorageError(pub String);

impl StorageError {
    /// Wraps an adapter's description of what failed (for logs only; no secret in it).
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}
