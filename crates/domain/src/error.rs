//! Errors shared by every port.

/// A storage adapter could not do what was asked for a reason that is not the caller's fault
/// (database unreachable, constraint the domain did not expect, ...). The message is for logs,
/// never for clients: it must not hold a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("storage failure: {0}")]
pub struct StorageError(pub String);

impl StorageError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}
