//! The one error type of the data model: why a request's data was refused.
//!
//! The HTTP faces map it to the wire (see `vapix::fault`); the model never knows about HTTP.

use thiserror::Error;

/// Why the model refused a value. Every variant names the offending field path.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ModelError {
    /// Mandatory data is absent (`env:Sender ter:InvalidArgs`).
    #[error("missing data: {0}")]
    Missing(String),
    /// A value has the wrong type, is out of range or breaks an invariant
    /// (`env:Sender ter:InvalidArgVal ter:InvalidArgVal`).
    #[error("invalid value: {0}")]
    Invalid(String),
    /// An id given to a singular Get* resolves to nothing (`env:Sender ter:InvalidArgVal ter:NotFound`).
    #[error("not found: {0}")]
    NotFound(String),
    /// A Remove* of an object that another still refers to (`env:Receiver ter:Action
    /// ter:Failure`, the fault the spec's Remove* tables list).
    #[error("in use: {0}")]
    InUse(String),
    /// The change could not be saved to the state file (`env:Receiver ter:Action ter:Failure`);
    /// nothing changed.
    #[error("not saved: {0}")]
    Storage(String),
}

impl ModelError {
    /// Shorthand for [`ModelError::Invalid`] with a formatted message.
    pub fn invalid(path: &str, why: impl std::fmt::Display) -> Self {
        Self::Invalid(format!("{path}: {why}"))
    }
}

/// Result alias of the model layer.
pub type ModelResult<T> = Result<T, ModelError>;
