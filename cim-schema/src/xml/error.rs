//! Decoding and encoding errors.

use std::fmt;

/// Where in the input a decoding error was found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Location {
    /// The byte offset in the input (for an error inside an embedded object: the offset of the
    /// element that carries it).
    pub offset: usize,
    /// The path of open elements, `CIM/MESSAGE/SIMPLEREQ/IMETHODCALL`; an embedded object's
    /// elements follow its carrier after `!` (`.../VALUE!INSTANCE/PROPERTY`).
    pub path: String,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "byte {}", self.offset)
        } else {
            write!(f, "byte {} ({})", self.offset, self.path)
        }
    }
}

/// Which limit of [`Limits`](super::Limits) an input exceeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// [`Limits::input_bytes_max`](super::Limits::input_bytes_max)
    InputBytes,
    /// [`Limits::depth_max`](super::Limits::depth_max)
    Depth,
    /// [`Limits::elements_max`](super::Limits::elements_max)
    Elements,
    /// [`Limits::attribute_bytes_max`](super::Limits::attribute_bytes_max)
    AttributeBytes,
    /// [`Limits::text_bytes_max`](super::Limits::text_bytes_max)
    TextBytes,
    /// [`Limits::embedded_depth_max`](super::Limits::embedded_depth_max)
    EmbeddedDepth,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Limit::InputBytes => "input size limit",
            Limit::Depth => "nesting depth limit",
            Limit::Elements => "element count limit",
            Limit::AttributeBytes => "attribute size limit",
            Limit::TextBytes => "text size limit",
            Limit::EmbeddedDepth => "embedded object depth limit",
        })
    }
}

/// Why an input is not an acceptable CIM-XML document or fragment.
///
/// [`DecodeError::cim_error_header`] gives the DSP0200 `CIMError` header for each.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input is not well-formed XML, or uses XML features this decoder refuses: broken
    /// tags, mismatched end tags, bad UTF-8, characters XML 1.0 forbids, unknown entity
    /// references, a DOCTYPE with an internal subset (and so any entity declaration) or a
    /// second one, processing instructions.
    #[error("not well-formed xml at {at}: {reason}")]
    NotWellFormed {
        /// What is wrong.
        reason: String,
        /// Where.
        at: Location,
    },
    /// The input is well-formed XML but not CIM-XML per the DSP0201 DTD: an unknown or
    /// misplaced element, a missing attribute, a bad `TYPE`, a value that does not parse as its
    /// type or is out of its range.
    #[error("not valid cim-xml at {at}: {reason}")]
    NotValid {
        /// What is wrong.
        reason: String,
        /// Where.
        at: Location,
    },
    /// The input exceeds one of the decoder's limits.
    #[error("{limit} exceeded at {at}")]
    LimitExceeded {
        /// Which limit.
        limit: Limit,
        /// Where.
        at: Location,
    },
    /// The message is a batch (`MULTIREQ` or `MULTIEXPREQ`), which is not supported.
    #[error("multiple requests are not supported (at {at})")]
    MultipleRequestsUnsupported {
        /// Where.
        at: Location,
    },
    /// `CIM CIMVERSION` is not 2.x.
    #[error("unsupported cim version {version:?} at {at}")]
    UnsupportedCimVersion {
        /// The version found.
        version: String,
        /// Where.
        at: Location,
    },
    /// `CIM DTDVERSION` is not 2.x.
    #[error("unsupported dtd version {version:?} at {at}")]
    UnsupportedDtdVersion {
        /// The version found.
        version: String,
        /// Where.
        at: Location,
    },
    /// `MESSAGE PROTOCOLVERSION` is not 1.x.
    #[error("unsupported protocol version {version:?} at {at}")]
    UnsupportedProtocolVersion {
        /// The version found.
        version: String,
        /// Where.
        at: Location,
    },
}

/// The location of a `&DecodeError` or `&mut DecodeError`, borrowed the same way: one list of
/// the variants for [`DecodeError::location`] and `nested_in`.
macro_rules! location_of {
    ($error:expr) => {
        match $error {
            DecodeError::NotWellFormed { at, .. }
            | DecodeError::NotValid { at, .. }
            | DecodeError::LimitExceeded { at, .. }
            | DecodeError::MultipleRequestsUnsupported { at }
            | DecodeError::UnsupportedCimVersion { at, .. }
            | DecodeError::UnsupportedDtdVersion { at, .. }
            | DecodeError::UnsupportedProtocolVersion { at, .. } => at,
        }
    };
}

impl DecodeError {
    /// Where the error was found.
    pub fn location(&self) -> &Location {
        location_of!(self)
    }

    /// The DSP0200 `CIMError` HTTP header value for a request that failed this way. A request
    /// over a limit is still reported as not valid: DSP0200 has no better word for it, and the
    /// status (413 or 400) is the server's choice.
    pub fn cim_error_header(&self) -> &'static str {
        match self {
            DecodeError::NotWellFormed { .. } => "request-not-well-formed",
            DecodeError::NotValid { .. } | DecodeError::LimitExceeded { .. } => "request-not-valid",
            DecodeError::MultipleRequestsUnsupported { .. } => "multiple-requests-unsupported",
            DecodeError::UnsupportedCimVersion { .. } => "unsupported-cim-version",
            DecodeError::UnsupportedDtdVersion { .. } => "unsupported-dtd-version",
            DecodeError::UnsupportedProtocolVersion { .. } => "unsupported-protocol-version",
        }
    }

    /// A not-well-formed error of an embedded object as the not-valid error it is for the
    /// request around it (whose XML is well-formed: the object is the text of a value).
    pub(crate) fn not_well_formed_as_not_valid(self) -> DecodeError {
        match self {
            DecodeError::NotWellFormed { reason, at } => DecodeError::NotValid {
                reason: format!("an embedded object that is not well-formed xml: {reason}"),
                at,
            },
            other => other,
        }
    }

    /// The same error with its location moved inside an embedded object's carrier.
    pub(crate) fn nested_in(mut self, carrier: &Location) -> DecodeError {
        let at = location_of!(&mut self);
        at.path = format!("{}!{}", carrier.path, at.path);
        at.offset = carrier.offset;
        self
    }
}

/// Why a model object cannot be written as CIM-XML.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A value does not match the type declared for its element (a `uint32` property holding a
    /// string, an embedded-object property holding a plain string).
    #[error("the value of {element} does not match its declared type {declared}")]
    TypeMismatch {
        /// The element's name.
        element: String,
        /// The declared type (with `EmbeddedObject`, `string (embedded object)`).
        declared: String,
    },
    /// A structure DSP0201 cannot express: an array of references as a property or qualifier,
    /// an array or embedded object as a key value, a method returning a reference, a nested
    /// array.
    #[error("{element} cannot be represented in cim-xml: {reason}")]
    Unrepresentable {
        /// The element's name.
        element: String,
        /// Why.
        reason: &'static str,
    },
}
