//! MOF literals: string escapes, char16 and the number forms.

use std::borrow::Cow;

use super::error::{Fault, MofErrorKind};
use crate::model::{ClassPath, Name, ObjectPath};

/// The most hex digits a `\x` escape takes (a UCS-2 code unit).
const HEX_ESCAPE_DIGITS_MAX: usize = 4;

/// A number literal, classified and parsed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Number {
    /// An integer in any base, within -2^64..2^64.
    Integer(i128),
    /// A real.
    Real(f64),
}

/// Decodes the escapes of a string literal's raw content; `offset` is the byte offset of the
/// content in the file (for locating a bad escape). Borrows when there is no escape.
pub(crate) fn decode_string(raw: &str, offset: usize) -> Result<Cow<'_, str>, Fault> {
    if !raw.contains('\\') {
        return Ok(Cow::Borrowed(raw));
    }
    let mut out = String::with_capacity(raw.len());
    decode_into(raw, offset, &mut out)?;
    Ok(Cow::Owned(out))
}

/// Appends the decoded content of a literal to `out`.
pub(crate) fn decode_into(raw: &str, offset: usize, out: &mut String) -> Result<(), Fault> {
    let mut rest = raw;
    while let Some(backslash) = rest.find('\\') {
        out.push_str(&rest[..backslash]);
        let escape_offset = offset + (raw.len() - rest.len()) + backslash;
        let after = &rest[backslash + 1..];
        let mut chars = after.chars();
        let Some(letter) = chars.next() else {
            return Err(Fault::new(
                escape_offset,
                MofErrorKind::InvalidEscape("\\".to_owned()),
            ));
        };
        let simple = match letter {
            'b' => Some('\u{8}'),
            't' => Some('\t'),
            'n' => Some('\n'),
            'f' => Some('\u{c}'),
            'r' => Some('\r'),
            '"' => Some('"'),
            '\'' => Some('\''),
            '\\' => Some('\\'),
            _ => None,
        };
        if let Some(c) = simple {
            out.push(c);
            rest = &after[1..];
            continue;
        }
        if letter != 'x' && letter != 'X' {
            return Err(Fault::new(
                escape_offset,
                MofErrorKind::InvalidEscape(format!("\\{letter}")),
            ));
        }
        let digits = after[1..]
            .bytes()
            .take(HEX_ESCAPE_DIGITS_MAX)
            .take_while(u8::is_ascii_hexdigit)
            .count();
        if digits == 0 {
            return Err(Fault::new(
                escape_offset,
                MofErrorKind::InvalidEscape(format!("\\{letter}")),
            ));
        }
        // At most four hex digits: always fits a u32.
        let code = u32::from_str_radix(&after[1..=digits], 16).unwrap_or(0xFFFD);
        let c = char::from_u32(code)
            .ok_or_else(|| Fault::new(escape_offset, MofErrorKind::InvalidCodePoint(code)))?;
        out.push(c);
        rest = &after[1 + digits..];
    }
    out.push_str(rest);
    Ok(())
}

/// Decodes a char16 literal's raw content: exactly one BMP character after escapes.
pub(crate) fn decode_char16(raw: &str, offset: usize) -> Result<u16, Fault> {
    let decoded = decode_string(raw, offset + 1)?;
    let mut chars = decoded.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => {
            u16::try_from(u32::from(c)).map_err(|_| Fault::new(offset, MofErrorKind::InvalidChar16))
        }
        _ => Err(Fault::new(offset, MofErrorKind::InvalidChar16)),
    }
}

/// Parses a number literal: decimal, hex (`0x1F`), binary (`1010b`), octal (`017`) or real
/// (`-1.5e3`), each with an optional sign.
pub(crate) fn parse_number(text: &str, offset: usize) -> Result<Number, Fault> {
    let invalid = || Fault::new(offset, MofErrorKind::InvalidNumber(text.to_owned()));
    let (negative, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if body.is_empty() {
        return Err(invalid());
    }
    let bytes = body.as_bytes();
    let (digits, radix) =
        if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
            (hex, 16)
        } else if bytes.contains(&b'.') || bytes.iter().any(|&b| b == b'e' || b == b'E') {
            return parse_real(body, negative)
                .map(Number::Real)
                .ok_or_else(invalid);
        } else if let Some(binary) = body.strip_suffix(['b', 'B']) {
            (binary, 2)
        } else if bytes.len() > 1 && bytes[0] == b'0' {
            (&body[1..], 8)
        } else {
            (body, 10)
        };
    if digits.is_empty() || !digits.bytes().all(|b| (b as char).is_digit(radix)) {
        return Err(invalid());
    }
    let mut magnitude: u128 = 0;
    for b in digits.bytes() {
        let digit = u128::from((b as char).to_digit(radix).unwrap_or(0));
        magnitude = magnitude
            .checked_mul(u128::from(radix))
            .and_then(|m| m.checked_add(digit))
            .filter(|&m| m <= u128::from(u64::MAX))
            .ok_or_else(|| {
                Fault::new(
                    offset,
                    MofErrorKind::OutOfRange {
                        value: text.to_owned(),
                        cim_type: "any integer type".to_owned(),
                    },
                )
            })?;
    }
    // The magnitude is at most u64::MAX, so it fits an i128 with either sign.
    let value = magnitude as i128;
    Ok(Number::Integer(if negative { -value } else { value }))
}

/// A real: `digits [. digits] [e [sign] digits]`, with at least one digit before the exponent.
fn parse_real(body: &str, negative: bool) -> Option<f64> {
    let bytes = body.as_bytes();
    let mut i = 0;
    let integer_digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    i += integer_digits;
    let mut fraction_digits = 0;
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        fraction_digits = bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
        i += fraction_digits;
    }
    if integer_digits + fraction_digits == 0 {
        return None;
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exponent_digits = bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
        if exponent_digits == 0 {
            return None;
        }
        i += exponent_digits;
    }
    if i != bytes.len() {
        return None;
    }
    let value: f64 = body.parse().ok()?;
    Some(if negative { -value } else { value })
}

/// A class path from a class alias or name.
pub(crate) fn class_path(name: &Name) -> ObjectPath {
    ObjectPath::Class(ClassPath::new(name.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_decode() {
        let decoded = decode_string(r#"a\b\t\n\f\r\"\'\\\x41\X263a\x0042z"#, 0).unwrap();
        assert_eq!(decoded, "a\u{8}\t\n\u{c}\r\"'\\A\u{263a}\u{42}z");
        assert!(matches!(
            decode_string("plain", 0),
            Ok(Cow::Borrowed("plain"))
        ));
        let error = decode_string("ab\\q", 10).unwrap_err();
        assert_eq!(error.offset, 12);
        assert_eq!(error.kind, MofErrorKind::InvalidEscape("\\q".to_owned()));
        assert!(decode_string("\\xg", 0).is_err());
        assert!(decode_string("\\xD800", 0).is_err());
        assert!(decode_string("\\", 0).is_err());
    }

    #[test]
    fn char16_literals() {
        assert_eq!(decode_char16("a", 0), Ok(u16::from(b'a')));
        assert_eq!(decode_char16("\\n", 0), Ok(10));
        assert_eq!(decode_char16("\\x263A", 0), Ok(0x263a));
        assert!(decode_char16("ab", 0).is_err());
        assert!(decode_char16("", 0).is_err());
        assert!(decode_char16("\u{1F600}", 0).is_err());
    }

    #[test]
    fn number_forms() {
        let n = |t| parse_number(t, 0);
        assert_eq!(n("42"), Ok(Number::Integer(42)));
        assert_eq!(n("-42"), Ok(Number::Integer(-42)));
        assert_eq!(n("+7"), Ok(Number::Integer(7)));
        assert_eq!(n("0x1F"), Ok(Number::Integer(31)));
        assert_eq!(n("-0X10"), Ok(Number::Integer(-16)));
        assert_eq!(n("1010b"), Ok(Number::Integer(10)));
        assert_eq!(n("017"), Ok(Number::Integer(15)));
        assert_eq!(n("0"), Ok(Number::Integer(0)));
        assert_eq!(n("1.5"), Ok(Number::Real(1.5)));
        assert_eq!(n("-.5e2"), Ok(Number::Real(-50.0)));
        assert_eq!(
            n("18446744073709551615"),
            Ok(Number::Integer(u64::MAX.into()))
        );
        assert!(n("18446744073709551616").is_err());
        assert!(n("99999999999999999999999999999999999999999999").is_err());
        for bad in ["08", "0x", "12a", "1.2.3", "1e", "0b2", "1.5x", "-"] {
            assert!(n(bad).is_err(), "{bad}");
        }
    }
}
