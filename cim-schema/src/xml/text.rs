//! The text forms of CIM scalar values in CIM-XML (DSP0201 5.2.1) and XML escaping.
//!
//! Characters that XML 1.0 cannot carry (C0 controls other than TAB, LF and CR; U+FFFE and
//! U+FFFF) are written as U+FFFD REPLACEMENT CHARACTER, so the encoder never produces a
//! document a strict parser (pywbem's, expat) would reject, and encoding cannot fail on a
//! string. The decoder refuses such characters, written raw or as character references, as not
//! well-formed. CR is written `&#13;` (and TAB, LF as `&#9;`, `&#10;` in attributes) so that
//! XML line-end and attribute normalisation cannot change it.

use crate::model::{Char16, CimType, Datetime, Value};

/// What to do with a byte when escaping: 0 = copy, 1 = escape, 2 = maybe the start of
/// U+FFFE/U+FFFF (0xEF), 3 = forbidden control character.
const fn escape_table(attribute: bool) -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = 3;
        byte += 1;
    }
    table[b'\r' as usize] = 1;
    table[b'<' as usize] = 1;
    table[b'>' as usize] = 1;
    table[b'&' as usize] = 1;
    table[0xEF] = 2;
    if attribute {
        table[b'"' as usize] = 1;
        table[b'\t' as usize] = 1;
        table[b'\n' as usize] = 1;
    } else {
        table[b'\t' as usize] = 0;
        table[b'\n' as usize] = 0;
    }
    table
}

const TEXT_TABLE: [u8; 256] = escape_table(false);
const ATTRIBUTE_TABLE: [u8; 256] = escape_table(true);

/// The UTF-8 encoding of U+FFFD.
const REPLACEMENT: &[u8] = "\u{FFFD}".as_bytes();

/// Appends `text` escaped for element content.
pub(crate) fn escape_text(out: &mut Vec<u8>, text: &str) {
    escape_unless_clean(out, text.as_bytes(), &TEXT_TABLE, text_suspicious);
}

/// Appends `text` escaped for a double-quoted attribute value.
pub(crate) fn escape_attribute(out: &mut Vec<u8>, text: &str) {
    escape_unless_clean(out, text.as_bytes(), &ATTRIBUTE_TABLE, attribute_suspicious);
}

/// The bytes [`TEXT_TABLE`] may act on (TAB and LF are copied as they are, but deciding that
/// is left to the table).
fn text_suspicious(byte: u8) -> bool {
    (byte < 0x20) | (byte == b'<') | (byte == b'>') | (byte == b'&') | (byte == 0xEF)
}

/// The bytes [`ATTRIBUTE_TABLE`] may act on.
fn attribute_suspicious(byte: u8) -> bool {
    text_suspicious(byte) | (byte == b'"')
}

/// Copies `bytes` as they are when none is `suspicious` (a byte whose `table` entry is not 0
/// must be suspicious), else escapes them by `table`. Most names and values need no escaping:
/// a branch-free test over the whole input (which the compiler vectorises) and one copy cost
/// a fraction of the byte-by-byte table walk.
fn escape_unless_clean(
    out: &mut Vec<u8>,
    bytes: &[u8],
    table: &[u8; 256],
    suspicious: impl Fn(u8) -> bool,
) {
    if bytes
        .iter()
        .fold(false, |any, &byte| any | suspicious(byte))
    {
        escape_with(out, bytes, table);
    } else {
        out.extend_from_slice(bytes);
    }
}

fn escape_with(out: &mut Vec<u8>, bytes: &[u8], table: &[u8; 256]) {
    let mut copied = 0;
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        let action = table[usize::from(byte)];
        if action == 0 {
            index += 1;
            continue;
        }
        if action == 2 {
            // U+FFFE and U+FFFF are EF BF BE and EF BF BF; other EF sequences are fine.
            let noncharacter = bytes.get(index + 1) == Some(&0xBF)
                && matches!(bytes.get(index + 2), Some(0xBE | 0xBF));
            if !noncharacter {
                index += 1;
                continue;
            }
        }
        out.extend_from_slice(&bytes[copied..index]);
        let width = if action == 2 { 3 } else { 1 };
        out.extend_from_slice(match (action, byte) {
            (1, b'<') => b"&lt;",
            (1, b'>') => b"&gt;",
            (1, b'&') => b"&amp;",
            (1, b'"') => b"&quot;",
            (1, b'\r') => b"&#13;",
            (1, b'\n') => b"&#10;",
            (1, b'\t') => b"&#9;",
            _ => REPLACEMENT,
        });
        index += width;
        copied = index;
    }
    out.extend_from_slice(&bytes[copied..]);
}

/// True for a character XML 1.0 allows in a document.
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{FFFD}' | '\u{10000}'..)
        && !matches!(c, '\u{FFFE}' | '\u{FFFF}')
}

/// Appends a real in a form that parses back to the same bits and that DSP0201's real grammar
/// (DSP0004 `realValue`) accepts: the shortest round-trip digits (ryu) with a mantissa that has
/// a `.` and an `E` exponent (`1.0E16`, not ryu's `1e16`), or `NaN`, `INF`, `-INF`. Every NaN
/// is written `NaN` (the payload is not kept).
pub(crate) fn write_real64(out: &mut Vec<u8>, value: f64) {
    if value.is_finite() {
        write_finite_real(out, ryu::Buffer::new().format_finite(value));
    } else {
        out.extend_from_slice(non_finite(value.is_nan(), value.is_sign_negative()));
    }
}

/// [`write_real64`] for `real32`: the shortest digits that give back the same `f32`.
pub(crate) fn write_real32(out: &mut Vec<u8>, value: f32) {
    if value.is_finite() {
        write_finite_real(out, ryu::Buffer::new().format_finite(value));
    } else {
        out.extend_from_slice(non_finite(value.is_nan(), value.is_sign_negative()));
    }
}

/// ryu's shortest form (`1.5`, `1e16`, `1.5e-7`) as `mantissa.digits[E[-]exponent]`.
fn write_finite_real(out: &mut Vec<u8>, shortest: &str) {
    let (mantissa, exponent) = match shortest.split_once('e') {
        Some((mantissa, exponent)) => (mantissa, Some(exponent)),
        None => (shortest, None),
    };
    out.extend_from_slice(mantissa.as_bytes());
    if !mantissa.contains('.') {
        out.extend_from_slice(b".0");
    }
    if let Some(exponent) = exponent {
        out.push(b'E');
        out.extend_from_slice(exponent.as_bytes());
    }
}

fn non_finite(nan: bool, negative: bool) -> &'static [u8] {
    match (nan, negative) {
        (true, _) => b"NaN",
        (false, false) => b"INF",
        (false, true) => b"-INF",
    }
}

/// Appends an integer in decimal.
pub(crate) fn write_integer<I: itoa::Integer>(out: &mut Vec<u8>, value: I) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// Appends a `char16` as element text. A lone surrogate or a character XML cannot carry is
/// written as U+FFFD (see the module documentation).
pub(crate) fn write_char16(out: &mut Vec<u8>, value: Char16) {
    let c = value
        .to_char()
        .filter(|&c| is_xml_char(c))
        .unwrap_or('\u{FFFD}');
    escape_text(out, c.encode_utf8(&mut [0u8; 4]));
}

/// Parses `TRUE` or `FALSE`, in any case, with surrounding whitespace.
pub(crate) fn parse_bool(text: &str) -> Option<bool> {
    let text = text.trim_matches(is_xml_space);
    if text.eq_ignore_ascii_case("true") {
        Some(true)
    } else if text.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// A `TYPE` keyword: the usual lower-case spellings without a search, others through
/// [`CimType::from_keyword`] (case-insensitive).
pub(crate) fn type_keyword(word: &str) -> Option<CimType> {
    Some(match word {
        "string" => CimType::String,
        "boolean" => CimType::Boolean,
        "uint16" => CimType::Uint16,
        "uint32" => CimType::Uint32,
        "uint64" => CimType::Uint64,
        "datetime" => CimType::Datetime,
        _ => return CimType::from_keyword(word),
    })
}

/// Parses a DSP0201 integer: `[+|-]digits` or `[+|-]0x hexdigits`, surrounding whitespace
/// allowed, as an `i128` so that every CIM integer type can range-check it.
pub(crate) fn parse_integer(text: &str) -> Option<i128> {
    let text = text.trim_matches(is_xml_space);
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (radix, digits) = match unsigned
        .strip_prefix("0x")
        .or_else(|| unsigned.strip_prefix("0X"))
    {
        Some(hex) => (16, hex),
        None => (10, unsigned),
    };
    // from_str_radix would accept a second sign; CIM values have at most 20 digits (39 fit).
    if digits.is_empty() || digits.len() > 38 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let magnitude = i128::from_str_radix(digits, radix).ok()?;
    Some(if negative { -magnitude } else { magnitude })
}

/// Parses a DSP0201 real: decimal with optional exponent, or `NaN`, `INF`, `-INF` (any case;
/// also `+INF`, `inf`, `infinity`).
pub(crate) fn parse_real64(text: &str) -> Option<f64> {
    let text = text.trim_matches(is_xml_space);
    if !plausible_real(text) {
        return None;
    }
    text.parse::<f64>().ok()
}

/// [`parse_real64`] for `real32`, rounding once, directly to `f32`.
pub(crate) fn parse_real32(text: &str) -> Option<f32> {
    let text = text.trim_matches(is_xml_space);
    if !plausible_real(text) {
        return None;
    }
    text.parse::<f32>().ok()
}

/// Rust's float parser accepts a few spellings DSP0201 does not mean ("infinity" is kept as a
/// courtesy); refuse empty mantissas like "." or "e5" early so messages stay precise.
fn plausible_real(text: &str) -> bool {
    text.bytes().any(|b| b.is_ascii_digit())
        || text
            .trim_start_matches(['+', '-'])
            .eq_ignore_ascii_case("inf")
        || text
            .trim_start_matches(['+', '-'])
            .eq_ignore_ascii_case("infinity")
        || text.eq_ignore_ascii_case("nan")
}

/// Parses the text of a `VALUE` as a scalar of `cim_type`. Strings keep their text exactly;
/// other types allow surrounding whitespace. References have no text form here.
pub(crate) fn parse_scalar(text: &str, cim_type: &CimType) -> Result<Value, String> {
    let integer = |min: i128, max: i128| -> Result<i128, String> {
        let value =
            parse_integer(text).ok_or_else(|| format!("{text:?} is not a {cim_type} value"))?;
        if (min..=max).contains(&value) {
            Ok(value)
        } else {
            Err(format!("{text:?} is out of range for {cim_type}"))
        }
    };
    // The `as` casts below narrow values that `integer` has range-checked.
    Ok(match cim_type {
        CimType::Boolean => Value::Boolean(
            parse_bool(text).ok_or_else(|| format!("{text:?} is not a boolean value"))?,
        ),
        CimType::Uint8 => Value::Uint8(integer(0, u8::MAX.into())? as u8),
        CimType::Sint8 => Value::Sint8(integer(i8::MIN.into(), i8::MAX.into())? as i8),
        CimType::Uint16 => Value::Uint16(integer(0, u16::MAX.into())? as u16),
        CimType::Sint16 => Value::Sint16(integer(i16::MIN.into(), i16::MAX.into())? as i16),
        CimType::Uint32 => Value::Uint32(integer(0, u32::MAX.into())? as u32),
        CimType::Sint32 => Value::Sint32(integer(i32::MIN.into(), i32::MAX.into())? as i32),
        CimType::Uint64 => Value::Uint64(integer(0, u64::MAX.into())? as u64),
        CimType::Sint64 => Value::Sint64(integer(i64::MIN.into(), i64::MAX.into())? as i64),
        CimType::Real32 => Value::Real32(
            parse_real32(text).ok_or_else(|| format!("{text:?} is not a real32 value"))?,
        ),
        CimType::Real64 => Value::Real64(
            parse_real64(text).ok_or_else(|| format!("{text:?} is not a real64 value"))?,
        ),
        CimType::Char16 => Value::Char16(parse_char16(text)?),
        CimType::String => Value::String(text.to_owned()),
        CimType::Datetime => Value::Datetime(
            Datetime::parse(text.trim_matches(is_xml_space))
                .map_err(|e| format!("{text:?} is not a datetime value: {e}"))?,
        ),
        CimType::Reference(_) => {
            return Err("a reference value must be a VALUE.REFERENCE element".to_owned())
        }
    })
}

/// A `char16` is exactly one character of the Basic Multilingual Plane.
fn parse_char16(text: &str) -> Result<Char16, String> {
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => u16::try_from(u32::from(c))
            .map(Char16)
            .map_err(|_| format!("{text:?} is outside the range of char16")),
        _ => Err(format!("{text:?} is not one character")),
    }
}

/// Parses an untyped numeric `KEYVALUE` (no `TYPE`) as the widest type its text allows:
/// `sint64` when negative, `uint64` otherwise, `real64` with a `.` or an exponent.
pub(crate) fn parse_untyped_numeric(text: &str) -> Result<Value, String> {
    let trimmed = text.trim_matches(is_xml_space);
    let hex = trimmed.contains(['x', 'X']);
    if !hex && trimmed.contains(['.', 'e', 'E']) {
        return parse_scalar(text, &CimType::Real64);
    }
    if trimmed.starts_with('-') {
        parse_scalar(text, &CimType::Sint64)
    } else {
        parse_scalar(text, &CimType::Uint64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_the_tables_act_on_is_suspicious() {
        for byte in 0..=u8::MAX {
            let index = usize::from(byte);
            assert!(TEXT_TABLE[index] == 0 || text_suspicious(byte), "{byte:#x}");
            assert!(
                ATTRIBUTE_TABLE[index] == 0 || attribute_suspicious(byte),
                "{byte:#x}"
            );
        }
    }

    fn escaped(text: &str, attribute: bool) -> String {
        let mut out = Vec::new();
        if attribute {
            escape_attribute(&mut out, text);
        } else {
            escape_text(&mut out, text);
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escaping_covers_markup_and_forbidden_characters() {
        assert_eq!(escaped("a<b>&c\"d", false), "a&lt;b&gt;&amp;c\"d");
        assert_eq!(escaped("a\"b\tc\nd\re", true), "a&quot;b&#9;c&#10;d&#13;e");
        assert_eq!(escaped("t\tn\n", false), "t\tn\n");
        assert_eq!(
            escaped("x\u{1}y\u{FFFE}z\u{FFFF}", false),
            "x\u{FFFD}y\u{FFFD}z\u{FFFD}"
        );
        assert_eq!(escaped("\u{FEFF}é日本", false), "\u{FEFF}é日本");
    }

    #[test]
    fn integers_parse_with_signs_hex_and_ranges() {
        assert_eq!(parse_integer(" 42 "), Some(42));
        assert_eq!(parse_integer("-0x1F"), Some(-31));
        assert_eq!(parse_integer("+7"), Some(7));
        assert_eq!(parse_integer("--7"), None);
        assert_eq!(parse_integer("0x"), None);
        assert_eq!(
            parse_scalar("256", &CimType::Uint8),
            Err("\"256\" is out of range for uint8".into())
        );
        assert_eq!(
            parse_scalar("-128", &CimType::Sint8),
            Ok(Value::Sint8(-128))
        );
        assert_eq!(
            parse_scalar("18446744073709551615", &CimType::Uint64),
            Ok(Value::Uint64(u64::MAX))
        );
        assert!(parse_scalar("-1", &CimType::Uint64).is_err());
    }

    #[test]
    fn reals_round_trip_and_special_values_parse() {
        for value in [0.1, -0.0, 1e300, 5e-324, f64::MAX, 123.456] {
            let mut out = Vec::new();
            write_real64(&mut out, value);
            let back = parse_real64(std::str::from_utf8(&out).unwrap()).unwrap();
            assert_eq!(back.to_bits(), value.to_bits());
        }
        assert!(parse_real64("NaN").unwrap().is_nan());
        assert_eq!(parse_real64("INF"), Some(f64::INFINITY));
        assert_eq!(parse_real64("-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_real64("1.5E3"), Some(1500.0));
        assert_eq!(parse_real64("e5"), None);
        assert_eq!(parse_real32("3.4028236e38"), Some(f32::INFINITY));
    }

    /// DSP0004 `realValue`: `[+|-] *digit "." 1*digit [(e|E) [+|-] 1*digit]`.
    fn is_dsp0004_real(text: &str) -> bool {
        let text = text.strip_prefix(['+', '-']).unwrap_or(text);
        let (mantissa, exponent) = match text.split_once(['e', 'E']) {
            Some((mantissa, exponent)) => (mantissa, Some(exponent)),
            None => (text, None),
        };
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        let mantissa_ok = mantissa.split_once('.').is_some_and(|(whole, fraction)| {
            digits(whole) && !fraction.is_empty() && digits(fraction)
        });
        let exponent_ok = exponent.is_none_or(|e| {
            let e = e.strip_prefix(['+', '-']).unwrap_or(e);
            !e.is_empty() && digits(e)
        });
        mantissa_ok && exponent_ok
    }

    #[test]
    fn reals_are_written_in_the_dsp0201_grammar() {
        let reals64 = [
            1e16,
            1e-7,
            1.5e-7,
            -2.5e300,
            1.0,
            0.0,
            -0.0,
            0.1,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
            123_456_789_012_345_680.0,
        ];
        for value in reals64 {
            let mut out = Vec::new();
            write_real64(&mut out, value);
            let text = std::str::from_utf8(&out).unwrap();
            assert!(is_dsp0004_real(text), "{value}: {text}");
            assert_eq!(parse_real64(text).unwrap().to_bits(), value.to_bits());
        }
        for value in [1e16_f32, 3.4e38, 1e-45, 0.1, -7.0] {
            let mut out = Vec::new();
            write_real32(&mut out, value);
            let text = std::str::from_utf8(&out).unwrap();
            assert!(is_dsp0004_real(text), "{value}: {text}");
            assert_eq!(parse_real32(text).unwrap().to_bits(), value.to_bits());
        }
        let mut out = Vec::new();
        write_real64(&mut out, 1e16);
        assert_eq!(out, b"1.0E16");
        assert!(!is_dsp0004_real("1e16"));
    }

    #[test]
    fn untyped_numbers_take_the_widest_type() {
        assert_eq!(parse_untyped_numeric("-5"), Ok(Value::Sint64(-5)));
        assert_eq!(parse_untyped_numeric("5"), Ok(Value::Uint64(5)));
        assert_eq!(parse_untyped_numeric("0x1E"), Ok(Value::Uint64(30)));
        assert_eq!(parse_untyped_numeric("1.5e2"), Ok(Value::Real64(150.0)));
    }

    #[test]
    fn booleans_and_char16() {
        assert_eq!(parse_bool(" True "), Some(true));
        assert_eq!(parse_bool("no"), None);
        assert_eq!(
            parse_scalar("é", &CimType::Char16),
            Ok(Value::Char16(Char16(0xE9)))
        );
        assert!(parse_scalar("ab", &CimType::Char16).is_err());
        assert!(parse_scalar("😀", &CimType::Char16).is_err());
    }
}
