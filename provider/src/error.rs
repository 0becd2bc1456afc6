//! The errors of CIM operations and their DSP0200 status codes.
//!
//! [`OperationError::code`] is the one place where an internal error becomes a `CIM_ERR_*`
//! code; it has no catch-all arm, so a new variant forces a decision. Provider internals never
//! reach clients: [`OperationError::Failed`] carries a safe description, and the detail goes
//! to `tracing` where the error is made.

use cim_schema::xml::CimError;

/// The DSP0200 status codes (`CIM_ERR_*`) the server answers with.
pub mod code {
    /// CIM_ERR_FAILED: a general error not covered by another code.
    pub const FAILED: u32 = 1;
    /// CIM_ERR_ACCESS_DENIED
    pub const ACCESS_DENIED: u32 = 2;
    /// CIM_ERR_INVALID_NAMESPACE
    pub const INVALID_NAMESPACE: u32 = 3;
    /// CIM_ERR_INVALID_PARAMETER
    pub const INVALID_PARAMETER: u32 = 4;
    /// CIM_ERR_INVALID_CLASS
    pub const INVALID_CLASS: u32 = 5;
    /// CIM_ERR_NOT_FOUND
    pub const NOT_FOUND: u32 = 6;
    /// CIM_ERR_NOT_SUPPORTED
    pub const NOT_SUPPORTED: u32 = 7;
    /// CIM_ERR_ALREADY_EXISTS
    pub const ALREADY_EXISTS: u32 = 11;
    /// CIM_ERR_NO_SUCH_PROPERTY
    pub const NO_SUCH_PROPERTY: u32 = 12;
    /// CIM_ERR_TYPE_MISMATCH
    pub const TYPE_MISMATCH: u32 = 13;
    /// CIM_ERR_QUERY_LANGUAGE_NOT_SUPPORTED
    pub const QUERY_LANGUAGE_NOT_SUPPORTED: u32 = 14;
    /// CIM_ERR_INVALID_QUERY
    pub const INVALID_QUERY: u32 = 15;
    /// CIM_ERR_METHOD_NOT_AVAILABLE
    pub const METHOD_NOT_AVAILABLE: u32 = 16;
    /// CIM_ERR_METHOD_NOT_FOUND
    pub const METHOD_NOT_FOUND: u32 = 17;
    /// CIM_ERR_INVALID_ENUMERATION_CONTEXT
    pub const INVALID_ENUMERATION_CONTEXT: u32 = 21;
    /// CIM_ERR_INVALID_OPERATION_TIMEOUT
    pub const INVALID_OPERATION_TIMEOUT: u32 = 22;
    /// CIM_ERR_PULL_HAS_BEEN_ABANDONED
    pub const PULL_HAS_BEEN_ABANDONED: u32 = 23;
    /// CIM_ERR_PULL_CANNOT_BE_ABANDONED
    pub const PULL_CANNOT_BE_ABANDONED: u32 = 24;
    /// CIM_ERR_FILTERED_ENUMERATION_NOT_SUPPORTED
    pub const FILTERED_ENUMERATION_NOT_SUPPORTED: u32 = 25;
    /// CIM_ERR_CONTINUATION_ON_ERROR_NOT_SUPPORTED
    pub const CONTINUATION_ON_ERROR_NOT_SUPPORTED: u32 = 26;
    /// CIM_ERR_SERVER_LIMITS_EXCEEDED
    pub const SERVER_LIMITS_EXCEEDED: u32 = 27;
    /// CIM_ERR_SERVER_IS_SHUTTING_DOWN
    pub const SERVER_IS_SHUTTING_DOWN: u32 = 28;
}

/// Why a CIM operation failed. Each variant carries a description safe to show to clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperationError {
    /// A general failure; the description is safe for clients, the detail was logged.
    #[error("{0}")]
    Failed(String),
    /// The principal may not do this.
    #[error("{0}")]
    AccessDenied(String),
    /// The namespace does not exist.
    #[error("namespace {0} does not exist")]
    InvalidNamespace(String),
    /// A parameter is missing, unknown, of the wrong kind or out of range.
    #[error("{0}")]
    InvalidParameter(String),
    /// The class does not exist in the namespace.
    #[error("class {0} does not exist")]
    InvalidClass(String),
    /// The instance, qualifier declaration or other element does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The operation or this use of it is not supported.
    #[error("{0}")]
    NotSupported(String),
    /// The instance or element exists already.
    #[error("{0}")]
    AlreadyExists(String),
    /// A property named by the request does not exist in the class.
    #[error("{0}")]
    NoSuchProperty(String),
    /// A value does not have the type its property or parameter declares.
    #[error("{0}")]
    TypeMismatch(String),
    /// The query language is not one the server speaks (the text says which it is).
    #[error("{0}")]
    QueryLanguageNotSupported(String),
    /// The query is not valid.
    #[error("{0}")]
    InvalidQuery(String),
    /// The method exists but cannot run now.
    #[error("{0}")]
    MethodNotAvailable(String),
    /// The class has no such method.
    #[error("{0}")]
    MethodNotFound(String),
    /// The enumeration context is unknown, expired, closed or in use.
    #[error("{0}")]
    InvalidEnumerationContext(String),
    /// The OperationTimeout is above what the server allows.
    #[error("{0}")]
    InvalidOperationTimeout(String),
    /// The filter query language of a pull operation is not supported.
    #[error("{0}")]
    FilteredEnumerationNotSupported(String),
    /// ContinueOnError was requested.
    #[error("continuation on error is not supported")]
    ContinuationOnErrorNotSupported,
    /// A server limit (contexts, objects, time) was reached.
    #[error("{0}")]
    ServerLimitsExceeded(String),
    /// The server is shutting down.
    #[error("the server is shutting down")]
    ServerIsShuttingDown,
}

impl OperationError {
    /// The DSP0200 status code.
    pub fn code(&self) -> u32 {
        match self {
            OperationError::Failed(_) => code::FAILED,
            OperationError::AccessDenied(_) => code::ACCESS_DENIED,
            OperationError::InvalidNamespace(_) => code::INVALID_NAMESPACE,
            OperationError::InvalidParameter(_) => code::INVALID_PARAMETER,
            OperationError::InvalidClass(_) => code::INVALID_CLASS,
            OperationError::NotFound(_) => code::NOT_FOUND,
            OperationError::NotSupported(_) => code::NOT_SUPPORTED,
            OperationError::AlreadyExists(_) => code::ALREADY_EXISTS,
            OperationError::NoSuchProperty(_) => code::NO_SUCH_PROPERTY,
            OperationError::TypeMismatch(_) => code::TYPE_MISMATCH,
            OperationError::QueryLanguageNotSupported(_) => code::QUERY_LANGUAGE_NOT_SUPPORTED,
            OperationError::InvalidQuery(_) => code::INVALID_QUERY,
            OperationError::MethodNotAvailable(_) => code::METHOD_NOT_AVAILABLE,
            OperationError::MethodNotFound(_) => code::METHOD_NOT_FOUND,
            OperationError::InvalidEnumerationContext(_) => code::INVALID_ENUMERATION_CONTEXT,
            OperationError::InvalidOperationTimeout(_) => code::INVALID_OPERATION_TIMEOUT,
            OperationError::FilteredEnumerationNotSupported(_) => {
                code::FILTERED_ENUMERATION_NOT_SUPPORTED
            }
            OperationError::ContinuationOnErrorNotSupported => {
                code::CONTINUATION_ON_ERROR_NOT_SUPPORTED
            }
            OperationError::ServerLimitsExceeded(_) => code::SERVER_LIMITS_EXCEEDED,
            OperationError::ServerIsShuttingDown => code::SERVER_IS_SHUTTING_DOWN,
        }
    }

    /// The `ERROR` element of a response, its description clipped ([`clip`]): it may quote
    /// a request's value (a forged enumeration context), which may be megabytes.
    pub fn to_cim_error(&self) -> CimError {
        CimError::new(self.code(), clip(&self.to_string()).into_owned())
    }

    /// A parameter error with a formatted description.
    pub fn parameter(description: impl Into<String>) -> OperationError {
        OperationError::InvalidParameter(description.into())
    }
}

/// The most characters of an error's description given to a client (an ERROR element's
/// DESCRIPTION, the PGErrorDetail header).
pub const DESCRIPTION_CHARS_MAX: usize = 1024;

/// `text` cut to [`DESCRIPTION_CHARS_MAX`] characters, saying how long it was: an error that
/// quotes a request's name or value answers with a bounded description (a 16 MiB element
/// name once made a 100 MB header, which clients refuse as a whole).
pub fn clip(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(DESCRIPTION_CHARS_MAX) {
        None => std::borrow::Cow::Borrowed(text),
        Some((end, _)) => {
            std::borrow::Cow::Owned(format!("{}... ({} bytes in all)", &text[..end], text.len()))
        }
    }
}

#[cfg(test)]
mod clip_tests {
    use super::*;

    #[test]
    fn a_long_description_is_clipped_at_a_character_and_says_its_length() {
        assert_eq!(clip("short"), "short");
        let exact = "é".repeat(DESCRIPTION_CHARS_MAX);
        assert_eq!(clip(&exact), exact);
        let long = format!("{exact}é");
        let clipped = clip(&long);
        assert_eq!(clipped, format!("{exact}... ({} bytes in all)", long.len()));
        let error = OperationError::InvalidEnumerationContext("x".repeat(1 << 20));
        let description = error.to_cim_error().description.unwrap_or_default();
        assert!(
            description.len() < 2 * DESCRIPTION_CHARS_MAX,
            "{}",
            description.len()
        );
    }
}
