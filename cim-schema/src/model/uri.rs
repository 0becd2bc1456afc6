//! WBEM URIs (DSP0207): the text form of object paths, parsed and formatted.
//!
//! [`ClassPath`], [`InstancePath`] and [`ObjectPath`] implement [`Display`](fmt::Display) and
//! [`FromStr`] in the *untyped* WBEM URI form, written as DSP0207 and pywbem's
//! `to_wbem_uri()` (format `standard`) write it:
//!
//! ```text
//! //host:5989/root/cimv2:CIM_Foo.Name="x",Num=42,Flag=TRUE,Ref="/root/cimv2:CIM_Bar.Id=\"1\""
//! /root/cimv2:CIM_Foo          a class path with a namespace and no host
//! /:CIM_Foo.Id="1"             an instance path with neither host nor namespace
//! /:CIM_Foo.                   a keyless singleton instance
//! ```
//!
//! Formatting writes `//host` when there is a host, then always `/`, the namespace if any, `:`,
//! the class name, and for an instance `.` and the keybindings in their order, joined by `,`.
//!
//! Parsing also accepts what pywbem's `from_wbem_uri` accepts: a leading scheme (`http:`,
//! `https:`, `cimxml-wbem:`, `cimxml-wbems:`) before `//host`, a local path without its leading
//! `/`, and a class name without its leading `:` (`CIM_Foo.Id="1"`). Integers may be written in
//! decimal, hexadecimal (`0x1F`), octal (`017`) or binary (`101b`); reals may be `INF`, `-INF`
//! or `NaN` (a pywbem extension that CIM-XML also allows), and `1e+300` as pywbem writes it.
//!
//! # Keys are untyped
//!
//! A WBEM URI does not carry the CIM types of its key values, so a parsed keybinding gets the
//! widest type its text allows, as [`KeyBinding`] documents for CIM-XML without `TYPE`:
//!
//! | text                          | parsed as                                       |
//! |-------------------------------|-------------------------------------------------|
//! | `TRUE`, `false`               | `boolean`                                       |
//! | `42`, `0x2A`                  | `uint64`                                        |
//! | `-42`                         | `sint64`                                        |
//! | `1.5`, `-2.0E-3`, `INF`       | `real64`                                        |
//! | `'c'`                         | `char16`                                        |
//! | `"20261122230520.585089+000"` | `datetime` (quoted text that is a datetime)     |
//! | `"/:CIM_Bar.Id=\"1\""`        | a reference (quoted text that is an instance    |
//! |                               | path with a key, or one that starts with `/`)   |
//! | any other `"..."`             | `string`                                        |
//!
//! So `uint8` 7 and `uint64` 7 format alike and parse back as `uint64`; a string key whose value
//! looks like a datetime or an instance path parses back as one (pywbem has the same limit). Key
//! names, class names and namespaces keep their spelling; compare paths with
//! [`InstancePath::same_instance`], not as text. The URI is text: percent-encoding for an HTTP
//! header (the `CIMObject` header) is the caller's business.
//!
//! Keyless singletons: DSP0207's grammar requires a key, and pywbem writes a keyless instance
//! path like a class path. We write `CIM_Foo.` (a trailing dot, no keys) so that the text still
//! names an instance, and parse it back as a keyless [`InstancePath`].

use std::collections::HashSet;
use std::fmt::{self, Write as _};
use std::str::FromStr;

use super::datetime::Datetime;
use super::name::Name;
use super::path::{ClassPath, InstancePath, KeyBinding, ObjectPath};
use super::value::{Char16, Value};

/// How deeply references may nest inside a URI's key values: each level is parsed recursively,
/// so a peer must not be able to choose the depth.
pub const REFERENCE_DEPTH_MAX: usize = 16;

/// How many keybindings one instance path in a URI may have. CIM classes have a handful of
/// keys; the bound stops a peer from making a parse cost what it likes.
pub const KEYBINDINGS_MAX: usize = 256;

/// The schemes (DSP0207 namespace types) accepted before `//host`.
const SCHEMES: [&str; 4] = ["http", "https", "cimxml-wbem", "cimxml-wbems"];

/// Why a string is not a WBEM URI of the kind asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    /// The text names no class (it is empty, or ends after the host or namespace).
    #[error("the wbem uri names no class")]
    MissingClassName,
    /// A `//host` is not followed by `/` and the rest of the path.
    #[error("the host in the wbem uri must be followed by '/' and a path")]
    MissingPath,
    /// The host holds a character a host, port or user cannot.
    #[error("invalid host {0:?} in the wbem uri")]
    InvalidHost(String),
    /// A namespace is not identifiers separated by single `/`.
    #[error("invalid namespace {0:?} in the wbem uri")]
    InvalidNamespace(String),
    /// A class name is not a CIM identifier.
    #[error("invalid class name {0:?} in the wbem uri")]
    InvalidClassName(String),
    /// A key name is not a CIM identifier.
    #[error("invalid key name {0:?} in the wbem uri")]
    InvalidKeyName(String),
    /// A keybinding has no `=`.
    #[error("keybinding {0:?} has no '='")]
    MissingEquals(String),
    /// A quoted key value has no closing quote.
    #[error("the value of key {0:?} has no closing quote")]
    UnterminatedString(String),
    /// Something other than `,` follows a quoted key value.
    #[error("expected ',' after the value of key {0:?}")]
    ExpectedComma(String),
    /// A key value is none of the forms a WBEM URI allows.
    #[error("invalid value for key {0:?}")]
    InvalidKeyValue(String),
    /// An integer key value does not fit in `sint64` or `uint64`.
    #[error("the integer value of key {0:?} is out of range")]
    IntegerRange(String),
    /// A `char16` key value is not exactly one character of the Basic Multilingual Plane.
    #[error("the char16 value of key {0:?} is not one ucs-2 character")]
    InvalidChar16(String),
    /// Two keybindings have the same name (compared without case).
    #[error("key {0:?} appears twice")]
    DuplicateKey(String),
    /// References nest deeper than [`REFERENCE_DEPTH_MAX`].
    #[error("references nest deeper than {REFERENCE_DEPTH_MAX} levels")]
    TooDeep,
    /// An instance path has more than [`KEYBINDINGS_MAX`] keybindings.
    #[error("an instance path has more than {KEYBINDINGS_MAX} keybindings")]
    TooManyKeybindings,
    /// A class path was asked for, but the text has keybindings.
    #[error("expected a class path, found keybindings")]
    UnexpectedKeys,
    /// An instance path was asked for, but the text has no `.` and keybindings.
    #[error("expected an instance path, found no keybindings")]
    MissingKeys,
    /// A key holds a value that has no WBEM URI form (an array or an embedded object).
    #[error("key {0:?} holds a value that a wbem uri cannot carry")]
    UnrepresentableKey(String),
}

impl ClassPath {
    /// The WBEM URI of this class path (the same text as `Display`).
    pub fn to_wbem_uri(&self) -> String {
        let mut out = String::new();
        write_prefix(
            &mut out,
            self.host.as_deref(),
            self.namespace.as_deref(),
            &self.class_name,
        );
        out
    }
}

impl InstancePath {
    /// The WBEM URI of this instance path, or an error when a key holds a value that has no URI
    /// form (an array or an embedded object). `Display` writes such a value as a quoted
    /// description instead, which does not parse back to the same path.
    pub fn to_wbem_uri(&self) -> Result<String, UriError> {
        let mut out = String::new();
        write_instance(&mut out, self, Strictness::Strict)?;
        Ok(out)
    }
}

impl ObjectPath {
    /// The WBEM URI of this path; see [`InstancePath::to_wbem_uri`] for the errors.
    pub fn to_wbem_uri(&self) -> Result<String, UriError> {
        match self {
            ObjectPath::Class(path) => Ok(path.to_wbem_uri()),
            ObjectPath::Instance(path) => path.to_wbem_uri(),
        }
    }
}

impl fmt::Display for ClassPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_wbem_uri())
    }
}

impl fmt::Display for InstancePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        // Lossy writing never fails: unrepresentable keys become a quoted description.
        if write_instance(&mut out, self, Strictness::Lossy).is_err() {
            return Err(fmt::Error);
        }
        f.write_str(&out)
    }
}

impl fmt::Display for ObjectPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectPath::Class(path) => fmt::Display::fmt(path, f),
            ObjectPath::Instance(path) => fmt::Display::fmt(path, f),
        }
    }
}

impl FromStr for ClassPath {
    type Err = UriError;

    fn from_str(text: &str) -> Result<ClassPath, UriError> {
        match parse_object_path(text, 0)? {
            ObjectPath::Class(path) => Ok(path),
            ObjectPath::Instance(_) => Err(UriError::UnexpectedKeys),
        }
    }
}

impl FromStr for InstancePath {
    type Err = UriError;

    fn from_str(text: &str) -> Result<InstancePath, UriError> {
        match parse_object_path(text, 0)? {
            ObjectPath::Instance(path) => Ok(path),
            ObjectPath::Class(_) => Err(UriError::MissingKeys),
        }
    }
}

impl FromStr for ObjectPath {
    type Err = UriError;

    /// A class path when the text has no `.` after the class name, else an instance path.
    fn from_str(text: &str) -> Result<ObjectPath, UriError> {
        parse_object_path(text, 0)
    }
}

// ---------------------------------------------------------------------------------------------
// Formatting

/// Whether a key value without a URI form is an error or written as a quoted description.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Strictness {
    Strict,
    Lossy,
}

/// Writes `//host/namespace:Class` (host and namespace when present; `/` and `:` always).
fn write_prefix(out: &mut String, host: Option<&str>, namespace: Option<&str>, class: &Name) {
    if let Some(host) = host {
        out.push_str("//");
        out.push_str(host);
    }
    out.push('/');
    out.push_str(namespace.unwrap_or(""));
    out.push(':');
    out.push_str(class.as_str());
}

fn write_instance(
    out: &mut String,
    path: &InstancePath,
    strictness: Strictness,
) -> Result<(), UriError> {
    write_prefix(
        out,
        path.host.as_deref(),
        path.namespace.as_deref(),
        &path.class_name,
    );
    out.push('.');
    for (index, key) in path.keybindings.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        out.push_str(key.name.as_str());
        out.push('=');
        write_key_value(out, &key.name, &key.value, strictness)?;
    }
    Ok(())
}

fn write_key_value(
    out: &mut String,
    name: &Name,
    value: &Value,
    strictness: Strictness,
) -> Result<(), UriError> {
    // Writing to a String cannot fail, so the fmt::Results below are ignored.
    match value {
        Value::Boolean(true) => out.push_str("TRUE"),
        Value::Boolean(false) => out.push_str("FALSE"),
        Value::Uint8(v) => _ = write!(out, "{v}"),
        Value::Sint8(v) => _ = write!(out, "{v}"),
        Value::Uint16(v) => _ = write!(out, "{v}"),
        Value::Sint16(v) => _ = write!(out, "{v}"),
        Value::Uint32(v) => _ = write!(out, "{v}"),
        Value::Sint32(v) => _ = write!(out, "{v}"),
        Value::Uint64(v) => _ = write!(out, "{v}"),
        Value::Sint64(v) => _ = write!(out, "{v}"),
        Value::Real32(v) => write_real(out, f64::from(*v), &format!("{v:?}")),
        Value::Real64(v) => write_real(out, *v, &format!("{v:?}")),
        Value::Char16(c) => write_char16(out, *c),
        Value::String(s) => write_quoted(out, s),
        Value::Datetime(d) => write_quoted(out, d.as_str()),
        Value::Reference(path) => {
            let text = match strictness {
                Strictness::Strict => path.to_wbem_uri()?,
                Strictness::Lossy => path.to_string(),
            };
            write_quoted(out, &text);
        }
        Value::Instance(_) | Value::Class(_) | Value::Array(_) => match strictness {
            Strictness::Strict => return Err(UriError::UnrepresentableKey(name.to_string())),
            Strictness::Lossy => write_quoted(out, &format!("{value:?}")),
        },
    }
    Ok(())
}

/// Writes a real as DSP0004's `realValue` wants it: digits, a `.` and at least one digit after
/// it, then an optional exponent. `shortest` is Rust's shortest round-trip text of the value in
/// its own width (so a `real32` 0.1 writes `0.1`, not the `f64` widening's digits).
fn write_real(out: &mut String, value: f64, shortest: &str) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value < 0.0 { "-INF" } else { "INF" });
    } else {
        let (mantissa, exponent) = match shortest.split_once('e') {
            Some((mantissa, exponent)) => (mantissa, Some(exponent)),
            None => (shortest, None),
        };
        out.push_str(mantissa);
        if !mantissa.contains('.') {
            out.push_str(".0");
        }
        if let Some(exponent) = exponent {
            out.push('E');
            out.push_str(exponent);
        }
    }
}

/// Writes `'c'`, escaping `'` and `\`. A lone surrogate has no text form and is written as its
/// code, which DSP0004's `charValue` allows (it parses back as an integer).
fn write_char16(out: &mut String, c: Char16) {
    match c.to_char() {
        Some(character) => {
            out.push('\'');
            if character == '\'' || character == '\\' {
                out.push('\\');
            }
            out.push(character);
            out.push('\'');
        }
        None => _ = write!(out, "{}", c.0),
    }
}

/// Writes `"text"`, escaping `"` and `\` with a backslash.
fn write_quoted(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

// ---------------------------------------------------------------------------------------------
// Parsing

/// Parses an untyped WBEM URI; `depth` counts the references this one is nested in.
fn parse_object_path(text: &str, depth: usize) -> Result<ObjectPath, UriError> {
    if depth > REFERENCE_DEPTH_MAX {
        return Err(UriError::TooDeep);
    }
    let (host, local) = split_host(text)?;
    let (head, keys) = match local.split_once('.') {
        Some((head, keys)) => (head, Some(keys)),
        None => (local, None),
    };
    let (namespace, class_name) = parse_head(head, host.is_some())?;
    let Some(keys) = keys else {
        return Ok(ObjectPath::Class(ClassPath {
            host,
            namespace,
            class_name,
        }));
    };
    Ok(ObjectPath::Instance(InstancePath {
        host,
        namespace,
        class_name,
        keybindings: parse_keybindings(keys, depth)?,
    }))
}

/// Splits off an optional scheme and `//host`; returns the host and the rest (the local path,
/// which starts with `/` when there was a host).
fn split_host(text: &str) -> Result<(Option<String>, &str), UriError> {
    let mut rest = text;
    if let Some((scheme, after)) = text.split_once(':') {
        if after.starts_with('/') && SCHEMES.iter().any(|s| s.eq_ignore_ascii_case(scheme)) {
            rest = after;
        }
    }
    let Some(after_slashes) = rest.strip_prefix("//") else {
        return Ok((None, rest));
    };
    let Some(slash) = after_slashes.find('/') else {
        return Err(UriError::MissingPath);
    };
    let (host, local) = after_slashes.split_at(slash);
    let valid = host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || ".-_:[]@%".contains(c));
    if !valid {
        return Err(UriError::InvalidHost(host.to_owned()));
    }
    // An empty authority (`///root:CIM_Foo`) is a local path, as pywbem reads it.
    let host = (!host.is_empty()).then(|| host.to_owned());
    Ok((host, local))
}

/// Parses `/namespace:Class`, `/:Class`, `namespace:Class`, `:Class` or `Class`. After a host
/// (where the head always starts with `/`) the `:` is required.
fn parse_head(head: &str, after_host: bool) -> Result<(Option<String>, Name), UriError> {
    let (namespace, class) = match head.split_once(':') {
        Some((namespace, class)) => {
            let namespace = namespace.strip_prefix('/').unwrap_or(namespace);
            (namespace, class)
        }
        None if after_host || head.starts_with('/') => {
            return Err(UriError::InvalidNamespace(head.to_owned()))
        }
        None => ("", head),
    };
    if class.is_empty() {
        return Err(UriError::MissingClassName);
    }
    if !is_identifier(class) {
        return Err(UriError::InvalidClassName(class.to_owned()));
    }
    let namespace = if namespace.is_empty() {
        None
    } else if namespace.split('/').all(is_namespace_segment) {
        Some(namespace.to_owned())
    } else {
        return Err(UriError::InvalidNamespace(namespace.to_owned()));
    };
    Ok((namespace, Name::new(class)))
}

/// A DSP0004 identifier: a letter, `_` or a non-ASCII character, then also digits.
fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || !c.is_ascii());
    first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || !c.is_ascii())
}

/// A namespace segment: one or more letters, digits, `_` or non-ASCII characters.
fn is_namespace_segment(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || !c.is_ascii())
}

/// Parses `Name=value,Name=value`; the empty text is a keyless singleton.
fn parse_keybindings(text: &str, depth: usize) -> Result<Vec<KeyBinding>, UriError> {
    let mut keybindings: Vec<KeyBinding> = Vec::new();
    // The names seen, hashed without case: one lookup per key keeps the parse linear.
    let mut names: HashSet<Name> = HashSet::new();
    let mut rest = text;
    while !rest.is_empty() {
        if keybindings.len() == KEYBINDINGS_MAX {
            return Err(UriError::TooManyKeybindings);
        }
        let Some((name, after)) = rest.split_once('=') else {
            return Err(UriError::MissingEquals(rest.to_owned()));
        };
        if !is_identifier(name) {
            return Err(UriError::InvalidKeyName(name.to_owned()));
        }
        if !names.insert(Name::new(name)) {
            return Err(UriError::DuplicateKey(name.to_owned()));
        }
        let (raw, after_value) = split_value(name, after)?;
        let value = parse_key_value(name, raw, depth)?;
        keybindings.push(KeyBinding {
            name: Name::new(name),
            value,
        });
        rest = match after_value.strip_prefix(',') {
            Some("") => return Err(UriError::MissingEquals(String::new())),
            Some(more) => more,
            None if after_value.is_empty() => after_value,
            None => return Err(UriError::ExpectedComma(name.to_owned())),
        };
    }
    Ok(keybindings)
}

/// Splits one raw key value (quotes included) off the front of `text`.
fn split_value<'a>(name: &str, text: &'a str) -> Result<(&'a str, &'a str), UriError> {
    let Some(quote) = text.chars().next().filter(|c| *c == '"' || *c == '\'') else {
        let end = text.find(',').unwrap_or(text.len());
        return Ok(text.split_at(end));
    };
    let mut escaped = false;
    for (index, c) in text.char_indices().skip(1) {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == quote {
            return Ok(text.split_at(index + 1));
        }
    }
    Err(UriError::UnterminatedString(name.to_owned()))
}

/// Types one raw key value by its text (see the module docs for the rules).
fn parse_key_value(name: &str, raw: &str, depth: usize) -> Result<Value, UriError> {
    if let Some(inner) = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        return classify_quoted(&unescape(inner), depth);
    }
    if let Some(inner) = raw.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
        let text = unescape(inner);
        let mut chars = text.chars();
        return match (chars.next(), chars.next()) {
            (Some(c), None) if u32::from(c) <= 0xFFFF => Ok(Value::Char16(Char16::from(c))),
            _ => Err(UriError::InvalidChar16(name.to_owned())),
        };
    }
    if raw.eq_ignore_ascii_case("true") {
        return Ok(Value::Boolean(true));
    }
    if raw.eq_ignore_ascii_case("false") {
        return Ok(Value::Boolean(false));
    }
    if let Some(integer) = parse_integer(raw) {
        return integer_value(integer).ok_or_else(|| UriError::IntegerRange(name.to_owned()));
    }
    parse_real(raw)
        .map(Value::Real64)
        .ok_or_else(|| UriError::InvalidKeyValue(name.to_owned()))
}

/// Removes backslash escapes: `\x` stands for `x`, whatever `x` is.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            other => out.push(other),
        }
    }
    out
}

/// A quoted value is a datetime if it is one, a reference if it is an instance path with a key
/// (or any instance path starting with `/`), else a string. Only the depth limit is an error:
/// text that fails to parse as a path is simply a string.
fn classify_quoted(text: &str, depth: usize) -> Result<Value, UriError> {
    if let Ok(datetime) = Datetime::parse(text) {
        return Ok(Value::Datetime(datetime));
    }
    if text.contains('.') {
        match parse_object_path(text, depth + 1) {
            Ok(ObjectPath::Instance(path))
                if !path.keybindings.is_empty() || text.starts_with('/') =>
            {
                return Ok(Value::Reference(Box::new(ObjectPath::Instance(path))));
            }
            Err(UriError::TooDeep) => return Err(UriError::TooDeep),
            _ => {}
        }
    }
    Ok(Value::String(text.to_owned()))
}

/// A DSP0004 `integerValue`: decimal, `0x` hexadecimal, `0` octal or `b`-suffixed binary, with
/// an optional sign. `None` when the text is not an integer; `Some(None)` when it is one too
/// large even for `i128`.
fn parse_integer(text: &str) -> Option<Option<i128>> {
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (radix, body) = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        (16, hex)
    } else if let Some(binary) = digits
        .strip_suffix('b')
        .or_else(|| digits.strip_suffix('B'))
    {
        (2, binary)
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, &digits[1..])
    } else {
        (10, digits)
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = i128::from_str_radix(body, radix).ok();
    Some(magnitude.map(|m| if negative { -m } else { m }))
}

/// The widest integer value for `integer`: `uint64` unless negative, then `sint64`.
fn integer_value(integer: Option<i128>) -> Option<Value> {
    let integer = integer?;
    if integer >= 0 {
        u64::try_from(integer).ok().map(Value::Uint64)
    } else {
        i64::try_from(integer).ok().map(Value::Sint64)
    }
}

/// A DSP0004 `realValue` (`[+-]digits.digits[E[+-]digits]`, digits before the `.` optional),
/// `INF`, `-INF`, `NaN` in any case, or a mantissa without `.` before an exponent as pywbem
/// writes it (`1e+300`).
fn parse_real(text: &str) -> Option<f64> {
    for (word, value) in [
        ("inf", f64::INFINITY),
        ("-inf", f64::NEG_INFINITY),
        ("nan", f64::NAN),
    ] {
        if text.eq_ignore_ascii_case(word) {
            return Some(value);
        }
    }
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa, Some(exponent)),
        None => (unsigned, None),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some((whole, fraction)) => !fraction.is_empty() && digits(whole) && digits(fraction),
        // pywbem writes Python's repr (`1e+300`): no `.` when there is an exponent.
        None => exponent.is_some() && !mantissa.is_empty() && digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    if !mantissa_ok || !exponent_ok {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keybindings_are_bounded() {
        let keys = |count: usize| {
            let list: Vec<String> = (0..count).map(|i| format!("K{i}={i}")).collect();
            format!("CIM_X.{}", list.join(","))
        };
        let path = keys(KEYBINDINGS_MAX).parse::<InstancePath>().unwrap();
        assert_eq!(path.keybindings.len(), KEYBINDINGS_MAX);
        assert_eq!(
            keys(KEYBINDINGS_MAX + 1).parse::<InstancePath>(),
            Err(UriError::TooManyKeybindings)
        );
        // A long input is refused at the bound, without reading (or comparing) the rest.
        assert_eq!(
            keys(100_000).parse::<InstancePath>(),
            Err(UriError::TooManyKeybindings)
        );
        assert_eq!(
            "CIM_X.a=1,B=2,A=3".parse::<InstancePath>(),
            Err(UriError::DuplicateKey("A".to_owned()))
        );
    }

    use proptest::prelude::*;

    fn instance(text: &str) -> InstancePath {
        text.parse()
            .unwrap_or_else(|e| panic!("{text:?} does not parse: {e}"))
    }

    fn reference(path: InstancePath) -> Value {
        Value::Reference(Box::new(ObjectPath::Instance(path)))
    }

    #[test]
    fn formats_the_standard_form() {
        let bar = InstancePath::new("CIM_Bar")
            .in_namespace("root/cimv2")
            .with_key("Id", "1");
        let mut foo = InstancePath::new("CIM_Foo")
            .in_namespace("root/cimv2")
            .with_key("Name", "x")
            .with_key("Num", 42u64)
            .with_key("Flag", true)
            .with_key("Ref", reference(bar));
        foo.host = Some("host:5989".into());
        let golden = r#"//host:5989/root/cimv2:CIM_Foo.Name="x",Num=42,Flag=TRUE,Ref="/root/cimv2:CIM_Bar.Id=\"1\"""#;
        assert_eq!(foo.to_string(), golden);
        assert_eq!(foo.to_wbem_uri().as_deref(), Ok(golden));
        assert_eq!(instance(golden), foo);
        let mut class = ClassPath::new("CIM_Foo");
        assert_eq!(class.to_string(), "/:CIM_Foo");
        class.namespace = Some("root/cimv2".into());
        class.host = Some("h".into());
        assert_eq!(class.to_string(), "//h/root/cimv2:CIM_Foo");
        assert_eq!(InstancePath::new("CIM_Foo").to_string(), "/:CIM_Foo.");
    }

    #[test]
    fn formats_every_key_type() {
        let datetime = Datetime::parse("20261122230520.585089+000").unwrap();
        let path = InstancePath::new("C")
            .with_key("S", r#"a"b\c'd <&> é"#)
            .with_key("C", Value::Char16(Char16::from('\'')))
            .with_key("U8", 7u8)
            .with_key("S64", i64::MIN)
            .with_key("U64", u64::MAX)
            .with_key("R32", 0.1f32)
            .with_key("R64", 1e300)
            .with_key("Small", -2.5e-7)
            .with_key("Inf", f64::NEG_INFINITY)
            .with_key("Nan", f64::NAN)
            .with_key("D", Value::Datetime(datetime))
            .with_key("F", false);
        assert_eq!(
            path.to_string(),
            concat!(
                r#"/:C.S="a\"b\\c'd <&> é",C='\'',U8=7,S64=-9223372036854775808,"#,
                r#"U64=18446744073709551615,R32=0.1,R64=1.0E300,Small=-2.5E-7,Inf=-INF,"#,
                r#"Nan=NaN,D="20261122230520.585089+000",F=FALSE"#
            )
        );
    }

    #[test]
    fn parses_keys_to_their_widest_type() {
        let path = instance(concat!(
            r#"https://user@[::1]:5989/root/cimv2:CIM_Foo.A="/:CIM_Bar.X=1",B="x.y",C='z',"#,
            r#"D="20261122230520.585089+000",E=1.0E300,F=-inf,G=0x1F,H=-017,I=101b,J=true,"#,
            r#"K="Mr.",L=-0,M=1e+300,N=-2.5e-07"#
        ));
        assert_eq!(path.host.as_deref(), Some("user@[::1]:5989"));
        assert_eq!(path.namespace.as_deref(), Some("root/cimv2"));
        let bar = InstancePath::new("CIM_Bar").with_key("X", 1u64);
        assert_eq!(path.key("a"), Some(&reference(bar)));
        assert_eq!(path.key("B"), Some(&Value::from("x.y")));
        assert_eq!(path.key("C"), Some(&Value::Char16(Char16::from('z'))));
        assert!(matches!(path.key("D"), Some(Value::Datetime(_))));
        assert_eq!(path.key("E"), Some(&Value::Real64(1e300)));
        assert_eq!(path.key("F"), Some(&Value::Real64(f64::NEG_INFINITY)));
        assert_eq!(path.key("G"), Some(&Value::Uint64(31)));
        assert_eq!(path.key("H"), Some(&Value::Sint64(-15)));
        assert_eq!(path.key("I"), Some(&Value::Uint64(5)));
        assert_eq!(path.key("J"), Some(&Value::Boolean(true)));
        assert_eq!(path.key("K"), Some(&Value::from("Mr.")));
        assert_eq!(path.key("L"), Some(&Value::Uint64(0)));
        assert_eq!(path.key("M"), Some(&Value::Real64(1e300)));
        assert_eq!(path.key("N"), Some(&Value::Real64(-2.5e-7)));
    }

    #[test]
    fn accepts_the_forms_pywbem_accepts() {
        for text in [
            r#"http://acme.com/root/cimv2:CIM_CS.CreationClassName="ACME_CS",Name="sys1""#,
            r#"//acme.com:5989/cimv2/test:CIM_RegisteredProfile.InstanceID="acme.1""#,
            r#"/cimv2/test:CIM_RegisteredProfile.InstanceID="acme.1""#,
            r#"cimv2/test:CIM_RegisteredProfile.InstanceID="acme.1""#,
            r#"/:CIM_RegisteredProfile.InstanceID="acme.1""#,
            r#":CIM_RegisteredProfile.InstanceID="acme.1""#,
            r#"CIM_RegisteredProfile.InstanceID="acme.1""#,
        ] {
            let path = instance(text);
            assert!(!path.keybindings.is_empty(), "{text}");
        }
        let class: ObjectPath = "root/cimv2:CIM_Foo".parse().unwrap();
        let expected = ClassPath {
            host: None,
            namespace: Some("root/cimv2".into()),
            class_name: Name::new("CIM_Foo"),
        };
        assert_eq!(class, ObjectPath::Class(expected));
        let singleton: ObjectPath = "/:CIM_Foo.".parse().unwrap();
        assert_eq!(
            singleton,
            ObjectPath::Instance(InstancePath::new("CIM_Foo"))
        );
    }

    #[test]
    fn refuses_malformed_uris() {
        let cases = [
            ("", UriError::MissingClassName),
            ("/root/cimv2:", UriError::MissingClassName),
            ("//host", UriError::MissingPath),
            (
                "//host/CIM_Foo",
                UriError::InvalidNamespace("/CIM_Foo".into()),
            ),
            ("//ho st/:CIM_Foo", UriError::InvalidHost("ho st".into())),
            (
                "/root//cimv2:CIM_Foo",
                UriError::InvalidNamespace("root//cimv2".into()),
            ),
            ("/:1CIM", UriError::InvalidClassName("1CIM".into())),
            ("/:C.K", UriError::MissingEquals("K".into())),
            ("/:C.K=1,", UriError::MissingEquals(String::new())),
            ("/:C.1K=1", UriError::InvalidKeyName("1K".into())),
            (r#"/:C.K="abc"#, UriError::UnterminatedString("K".into())),
            (r#"/:C.K="a\""#, UriError::UnterminatedString("K".into())),
            (r#"/:C.K="a"x"#, UriError::ExpectedComma("K".into())),
            ("/:C.K=abc", UriError::InvalidKeyValue("K".into())),
            ("/:C.K=1.", UriError::InvalidKeyValue("K".into())),
            ("/:C.K=1e", UriError::InvalidKeyValue("K".into())),
            ("/:C.K=e5", UriError::InvalidKeyValue("K".into())),
            ("/:C.K=", UriError::InvalidKeyValue("K".into())),
            (
                "/:C.K=18446744073709551616",
                UriError::IntegerRange("K".into()),
            ),
            (
                "/:C.K=-9223372036854775809",
                UriError::IntegerRange("K".into()),
            ),
            ("/:C.K='ab'", UriError::InvalidChar16("K".into())),
            ("/:C.K='😀'", UriError::InvalidChar16("K".into())),
            ("/:C.K=1,k=2", UriError::DuplicateKey("k".into())),
        ];
        for (text, error) in cases {
            assert_eq!(text.parse::<ObjectPath>(), Err(error), "{text:?}");
        }
        assert_eq!(
            "/:C.K=1".parse::<ClassPath>(),
            Err(UriError::UnexpectedKeys)
        );
        assert_eq!("/:C".parse::<InstancePath>(), Err(UriError::MissingKeys));
    }

    #[test]
    fn deep_references_are_refused_not_overflowed() {
        let mut path = InstancePath::new("C").with_key("K", 1u64);
        for _ in 0..REFERENCE_DEPTH_MAX {
            path = InstancePath::new("C").with_key("R", reference(path));
        }
        let text = path.to_wbem_uri().unwrap();
        assert_eq!(instance(&text), path);
        let deeper = InstancePath::new("C").with_key("R", reference(path));
        let text = deeper.to_wbem_uri().unwrap();
        assert_eq!(text.parse::<InstancePath>(), Err(UriError::TooDeep));
    }

    #[test]
    fn keys_without_a_uri_form_are_errors_or_lossy() {
        let path = InstancePath::new("C").with_key("A", Value::Array(vec![None]));
        assert_eq!(
            path.to_wbem_uri(),
            Err(UriError::UnrepresentableKey("A".into()))
        );
        assert_eq!(path.to_string(), r#"/:C.A="Array([None])""#);
    }

    /// Key values of the types a URI parses back to (the widest ones), strings that read as
    /// neither a datetime nor a reference, and nested references.
    fn key_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            any::<bool>().prop_map(Value::Boolean),
            any::<u64>().prop_map(Value::Uint64),
            (i64::MIN..0).prop_map(Value::Sint64),
            any::<f64>()
                .prop_filter("NaN is not equal to itself", |v| !v.is_nan())
                .prop_map(Value::Real64),
            any::<char>()
                .prop_filter("char16 is one UCS-2 unit", |c| u32::from(*c) <= 0xFFFF)
                .prop_map(|c| Value::Char16(Char16::from(c))),
            "[a-zA-Z0-9 ,.=:/\"'\\\\<>&é€_-]{0,16}"
                .prop_filter("reads as a string", |s| {
                    matches!(classify_quoted(s, 0), Ok(Value::String(_)))
                })
                .prop_map(Value::String),
            (0u32..100, 0u8..24, 0u32..1_000_000).prop_map(|(days, hours, micro)| {
                Value::Datetime(Datetime::interval(days, (hours, 0, 0), micro).unwrap())
            }),
        ];
        leaf.prop_recursive(3, 12, 3, |inner| {
            instance_path(inner).prop_map(|path| {
                let path = if path.keybindings.is_empty() {
                    path.with_key("Id", 1u64)
                } else {
                    path
                };
                reference(path)
            })
        })
    }

    fn instance_path(value: impl Strategy<Value = Value>) -> impl Strategy<Value = InstancePath> {
        let host = proptest::option::of("[a-z][a-z0-9.-]{0,8}(:[0-9]{1,5})?");
        let namespace = proptest::option::of("[a-z_][a-z0-9_]{0,6}(/[a-z0-9_]{1,6}){0,2}");
        let keys = proptest::collection::vec(("[A-Za-z_][A-Za-z0-9_]{0,6}", value), 0..4);
        (host, namespace, "[A-Za-z_][A-Za-z0-9_]{0,10}", keys).prop_map(
            |(host, namespace, class, keys)| {
                let mut path = InstancePath::new(class);
                path.host = host;
                path.namespace = namespace;
                for (name, value) in keys {
                    if path.key(&name).is_none() {
                        path = path.with_key(name, value);
                    }
                }
                path
            },
        )
    }

    proptest! {
        #[test]
        fn instance_paths_round_trip(path in instance_path(key_value())) {
            let text = path.to_wbem_uri().unwrap();
            prop_assert_eq!(&text, &path.to_string());
            prop_assert_eq!(instance(&text), path);
        }

        #[test]
        fn class_paths_round_trip(path in instance_path(Just(Value::Boolean(true)))) {
            let class = ClassPath {
                host: path.host,
                namespace: path.namespace,
                class_name: path.class_name,
            };
            let parsed: ObjectPath = class.to_string().parse().unwrap();
            prop_assert_eq!(parsed, ObjectPath::Class(class));
        }

        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,64}") {
            let _ = text.parse::<ObjectPath>();
        }

        #[test]
        fn uri_like_text_never_panics(text in "[/:.=,\"'\\\\a-zA-Z0-9@-]{0,48}") {
            if let Ok(path) = text.parse::<ObjectPath>() {
                // What parses formats to text that parses to the same path.
                let again: ObjectPath = path.to_string().parse().unwrap();
                prop_assert_eq!(again.to_string(), path.to_string());
            }
        }
    }
}
