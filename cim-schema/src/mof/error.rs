//! Located MOF errors: what went wrong, in which file, on which line and column.

use std::fmt;

use crate::model::DatetimeError;
use crate::repository::RepositoryError;

/// What went wrong while compiling MOF.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MofErrorKind {
    /// The file is not valid UTF-8.
    #[error("the file is not valid utf-8")]
    InvalidUtf8,
    /// A character that starts no MOF token.
    #[error("unexpected character {0:?}")]
    UnexpectedCharacter(char),
    /// A string literal reaches the end of its line or of the file without its closing quote.
    #[error("unterminated string")]
    UnterminatedString,
    /// A char16 literal has no closing quote.
    #[error("unterminated char16 literal")]
    UnterminatedChar16,
    /// A `/*` comment has no closing `*/`.
    #[error("unterminated comment")]
    UnterminatedComment,
    /// A backslash escape that MOF does not define, or a `\x` with no hex digit.
    #[error("invalid escape sequence {0:?}")]
    InvalidEscape(String),
    /// A `\x` escape names a code point that is not a character (a surrogate).
    #[error("escape \\x{0:x} is not a character")]
    InvalidCodePoint(u32),
    /// A char16 literal that is not exactly one character of the Basic Multilingual Plane.
    #[error("a char16 literal holds exactly one character of the basic multilingual plane")]
    InvalidChar16,
    /// Text that starts like a number but is none of the MOF number forms.
    #[error("invalid number {0:?}")]
    InvalidNumber(String),
    /// A number too large for any CIM type, or for the type it initializes.
    #[error("{value} is out of range for {cim_type}")]
    OutOfRange {
        /// The literal as written.
        value: String,
        /// The type it does not fit (`uint8`), or `any integer type`.
        cim_type: String,
    },
    /// The parser met a token that the grammar does not allow there.
    #[error("expected {expected}, found {found}")]
    Expected {
        /// What the grammar allows.
        expected: &'static str,
        /// What was there.
        found: String,
    },
    /// A word that is not a CIM data type where one is required.
    #[error("unknown type {0:?}")]
    UnknownType(String),
    /// A flavor word that MOF does not define.
    #[error("unknown flavor {0:?}")]
    UnknownFlavor(String),
    /// A scope word that MOF does not define.
    #[error("unknown scope {0:?}")]
    UnknownScope(String),
    /// A qualifier used without a declaration in the namespace.
    #[error("qualifier {0} is not declared")]
    UnknownQualifier(String),
    /// A qualifier used on an element its declared scope does not allow.
    #[error("qualifier {qualifier} is not allowed on {element}")]
    QualifierScope {
        /// The qualifier.
        qualifier: String,
        /// The kind of element (`a property`, `an association`).
        element: &'static str,
    },
    /// A qualifier given twice on one element.
    #[error("qualifier {0} is given twice")]
    DuplicateQualifier(String),
    /// A value that does not fit the declared type of what it initializes.
    #[error("{what} expects {expected}, found {found}")]
    TypeMismatch {
        /// What is initialized (`qualifier ValueMap`, `property Name`).
        what: String,
        /// The declared type (`string[]`).
        expected: String,
        /// The kind of value written (`an integer`).
        found: &'static str,
    },
    /// An array value with more elements than the element's fixed size.
    #[error("{what} has room for {size} elements, found {found}")]
    ArraySize {
        /// What is initialized.
        what: String,
        /// The declared fixed size.
        size: u32,
        /// How many elements were given.
        found: usize,
    },
    /// A fixed array size of zero or beyond `u32`.
    #[error("invalid array size {0:?}")]
    InvalidArraySize(String),
    /// A datetime value that does not parse.
    #[error("invalid datetime: {0}")]
    InvalidDatetime(#[from] DatetimeError),
    /// A reference value that is not an object path.
    #[error("invalid object path {0:?}")]
    InvalidObjectPath(String),
    /// A property declared twice in one class.
    #[error("property {0} is declared twice")]
    DuplicateProperty(String),
    /// A method declared twice in one class.
    #[error("method {0} is declared twice")]
    DuplicateMethod(String),
    /// A parameter declared twice in one method.
    #[error("parameter {0} is declared twice")]
    DuplicateParameter(String),
    /// An `EmbeddedObject`/`EmbeddedInstance` qualifier on an element that is not a string.
    #[error("{0} carries an embedded object but is not a string")]
    EmbeddedNotString(String),
    /// An instance of a class that the namespace does not hold.
    #[error("class {0} does not exist")]
    UnknownClass(String),
    /// An instance value for a property its class does not have.
    #[error("class {class} has no property {property}")]
    UnknownProperty {
        /// The instance's class.
        class: String,
        /// The property named.
        property: String,
    },
    /// A `$alias` used before any instance declared it.
    #[error("alias ${0} is not defined")]
    UndefinedAlias(String),
    /// A `$alias` declared twice.
    #[error("alias ${0} is already defined")]
    DuplicateAlias(String),
    /// A pragma whose parameter is wrong (an empty namespace).
    #[error("invalid pragma {name}: {reason}")]
    InvalidPragma {
        /// The pragma.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// The caller's include resolver could not provide an included file.
    #[error("cannot include {file:?}: {reason}")]
    Include {
        /// The name in the pragma.
        file: String,
        /// The resolver's explanation.
        reason: String,
    },
    /// A file includes itself, directly or through others.
    #[error("{0:?} includes itself")]
    IncludeCycle(String),
    /// Includes nest deeper than [`super::INCLUDE_DEPTH_MAX`].
    #[error("includes nest deeper than {0} files")]
    IncludeDepth(usize),
    /// More files were included than [`super::INCLUDED_FILES_MAX`].
    #[error("more than {0} included files")]
    TooManyIncludes(usize),
    /// The repository refused the element.
    #[error("{0}")]
    Repository(#[from] RepositoryError),
    /// More than [`super::ERRORS_MAX`] errors: compilation stopped.
    #[error("too many errors, giving up")]
    TooManyErrors,
}

/// A MOF error with its place: the file name as the caller gave it, the 1-based line and the
/// 1-based column counted in characters.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}:{line}:{column}: {kind}")]
pub struct MofError {
    /// The file name (as given by the caller or returned by the include resolver).
    pub file: String,
    /// The line, from 1.
    pub line: u32,
    /// The column in characters, from 1.
    pub column: u32,
    /// What went wrong.
    pub kind: MofErrorKind,
}

impl MofError {
    /// Locates `kind` at byte `offset` of `text`, named `file`.
    pub(crate) fn at(file: &str, text: &[u8], offset: usize, kind: MofErrorKind) -> MofError {
        let (line, column) = line_column(text, offset);
        MofError {
            file: file.to_owned(),
            line,
            column,
            kind,
        }
    }
}

/// All the errors of one compilation, in the order found (at most [`super::ERRORS_MAX`] + 1).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct MofErrors(pub Vec<MofError>);

impl fmt::Display for MofErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

/// An error found by the lexer or the parser: where (a byte offset) and what.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fault {
    /// Byte offset in the file.
    pub offset: usize,
    /// What went wrong.
    pub kind: MofErrorKind,
}

impl Fault {
    /// A fault at `offset`.
    pub(crate) fn new(offset: usize, kind: MofErrorKind) -> Fault {
        Fault { offset, kind }
    }
}

/// The 1-based line and character column of byte `offset`. Only errors pay for this: tokens
/// keep byte offsets, which cost nothing to track.
fn line_column(text: &[u8], offset: usize) -> (u32, u32) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |newline| newline + 1);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    // UTF-8 continuation bytes do not start a character.
    let column = before[line_start..]
        .iter()
        .filter(|&&b| b & 0xC0 != 0x80)
        .count()
        + 1;
    (saturate(line), saturate(column))
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_lines_and_character_columns() {
        let text = "ab\ncé d\n".as_bytes();
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 3), (2, 1));
        // 'é' is two bytes but one column.
        assert_eq!(line_column(text, 6), (2, 3));
        assert_eq!(line_column(text, 1000), (3, 1));
    }
}
