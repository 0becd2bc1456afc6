//! Bounds on what the decoder accepts, so that a peer cannot make it use unbounded memory or
//! stack.

/// Default for [`Limits::input_bytes_max`]: 64 MiB, enough for an enumeration response of tens
/// of thousands of instances while refusing absurd bodies.
pub const INPUT_BYTES_MAX_DEFAULT: usize = 64 * 1024 * 1024;

/// Default for [`Limits::depth_max`]. The deepest legitimate structure is a reference key
/// holding a reference key; each level costs about five elements, so 64 allows about ten levels
/// of nested references.
pub const DEPTH_MAX_DEFAULT: usize = 64;

/// The deepest nesting a configuration may allow ([`Limits::depth_max`]): the decoder takes
/// a level of the thread's stack per element level, and 256 levels (plus the few an embedded
/// object adds) stay far inside the 2 MiB of a runtime's worker thread, even unoptimized
/// (about 900 levels overflowed it there).
pub const DEPTH_MAX_CEILING: usize = 256;

/// Default for [`Limits::elements_max`]: four million elements (a 10,000-instance enumeration
/// with 25 properties each needs about 600,000).
pub const ELEMENTS_MAX_DEFAULT: usize = 4_000_000;

/// Default for [`Limits::attribute_bytes_max`]: 64 KiB for one attribute value (names, error
/// descriptions).
pub const ATTRIBUTE_BYTES_MAX_DEFAULT: usize = 64 * 1024;

/// Default for [`Limits::text_bytes_max`]: 16 MiB for the text of one element (a string value or
/// an embedded object).
pub const TEXT_BYTES_MAX_DEFAULT: usize = 16 * 1024 * 1024;

/// Default for [`Limits::embedded_depth_max`]: an embedded instance may hold embedded instances
/// four levels deep (an indication holding a SourceInstance holding one more is two).
pub const EMBEDDED_DEPTH_MAX_DEFAULT: usize = 4;

/// The bounds the decoder enforces; exceeding one gives
/// [`DecodeError::LimitExceeded`](super::DecodeError::LimitExceeded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest input accepted, in bytes.
    pub input_bytes_max: usize,
    /// The deepest element nesting accepted (the `CIM` element is depth 1). Embedded objects
    /// count from their own root.
    pub depth_max: usize,
    /// The most elements accepted in one input, embedded objects included.
    pub elements_max: usize,
    /// The longest attribute value accepted, in bytes as written (before unescaping).
    pub attribute_bytes_max: usize,
    /// The longest text content of one element accepted, in bytes as written.
    pub text_bytes_max: usize,
    /// How deep embedded objects may nest inside embedded objects (0 refuses any embedded
    /// object).
    pub embedded_depth_max: usize,
}

impl Limits {
    /// The default limits, as a constant.
    pub const DEFAULT: Limits = Limits {
        input_bytes_max: INPUT_BYTES_MAX_DEFAULT,
        depth_max: DEPTH_MAX_DEFAULT,
        elements_max: ELEMENTS_MAX_DEFAULT,
        attribute_bytes_max: ATTRIBUTE_BYTES_MAX_DEFAULT,
        text_bytes_max: TEXT_BYTES_MAX_DEFAULT,
        embedded_depth_max: EMBEDDED_DEPTH_MAX_DEFAULT,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}
