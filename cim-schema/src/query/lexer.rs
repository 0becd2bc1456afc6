//! Splits query text into tokens, each with its byte offset. Keywords are identifiers here; the
//! parser recognises them case-insensitively.

use super::{QueryError, QueryErrorKind};

/// A token and where it starts.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Token {
    pub kind: TokenKind,
    pub position: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum TokenKind {
    Identifier(String),
    String(String),
    /// An unsigned integer; a sign is a separate token.
    Integer(u64),
    /// A finite unsigned real.
    Real(f64),
    Star,
    Comma,
    Dot,
    ColonColon,
    LeftParen,
    RightParen,
    LeftBracket,
    RightBracket,
    LeftBrace,
    RightBrace,
    Minus,
    Equal,
    NotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    End,
}

fn syntax(message: impl Into<String>, position: usize) -> QueryError {
    QueryError::new(QueryErrorKind::Syntax, message, position)
}

fn is_identifier_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

fn is_identifier_continue(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Tokenizes `text`, ending with [`TokenKind::End`].
pub(super) fn tokenize(text: &str) -> Result<Vec<Token>, QueryError> {
    let mut tokens = Vec::new();
    let bytes = text.as_bytes();
    let mut position = 0;
    while let Some(c) = text[position..].chars().next() {
        let start = position;
        if c.is_whitespace() {
            position += c.len_utf8();
            continue;
        }
        let two = bytes.get(position + 1).copied();
        let (kind, length) = match c {
            '*' => (TokenKind::Star, 1),
            ',' => (TokenKind::Comma, 1),
            '.' => (TokenKind::Dot, 1),
            '(' => (TokenKind::LeftParen, 1),
            ')' => (TokenKind::RightParen, 1),
            '[' => (TokenKind::LeftBracket, 1),
            ']' => (TokenKind::RightBracket, 1),
            '{' => (TokenKind::LeftBrace, 1),
            '}' => (TokenKind::RightBrace, 1),
            '-' => (TokenKind::Minus, 1),
            '=' => (TokenKind::Equal, 1),
            ':' if two == Some(b':') => (TokenKind::ColonColon, 2),
            '!' if two == Some(b'=') => (TokenKind::NotEqual, 2),
            '<' if two == Some(b'>') => (TokenKind::NotEqual, 2),
            '<' if two == Some(b'=') => (TokenKind::LessOrEqual, 2),
            '<' => (TokenKind::Less, 1),
            '>' if two == Some(b'=') => (TokenKind::GreaterOrEqual, 2),
            '>' => (TokenKind::Greater, 1),
            '\'' | '"' => string(text, start)?,
            '0'..='9' => number(text, start)?,
            c if is_identifier_start(c) => {
                let length = text[start..]
                    .char_indices()
                    .find(|&(_, c)| !is_identifier_continue(c))
                    .map_or(text.len() - start, |(offset, _)| offset);
                (
                    TokenKind::Identifier(text[start..start + length].to_owned()),
                    length,
                )
            }
            other => return Err(syntax(format!("unexpected character {other:?}"), start)),
        };
        tokens.push(Token {
            kind,
            position: start,
        });
        position = start + length;
    }
    tokens.push(Token {
        kind: TokenKind::End,
        position: text.len(),
    });
    Ok(tokens)
}

/// A quoted string starting at `start` (either quote), with `\\`, `\'`, `\"`, `\n`, `\t`, `\r`
/// escapes; returns the token and its length in bytes.
fn string(text: &str, start: usize) -> Result<(TokenKind, usize), QueryError> {
    let mut chars = text[start..].char_indices();
    let quote = chars.next().map_or('\'', |(_, c)| c);
    let mut value = String::new();
    while let Some((offset, c)) = chars.next() {
        match c {
            '\\' => {
                let escaped = match chars.next() {
                    Some((_, '\\')) => '\\',
                    Some((_, '\'')) => '\'',
                    Some((_, '"')) => '"',
                    Some((_, 'n')) => '\n',
                    Some((_, 't')) => '\t',
                    Some((_, 'r')) => '\r',
                    _ => return Err(syntax("unknown escape in a string", start + offset)),
                };
                value.push(escaped);
            }
            c if c == quote => return Ok((TokenKind::String(value), offset + 1)),
            other => value.push(other),
        }
    }
    Err(syntax("the string is not closed", start))
}

/// A number starting at `start`: decimal, `0x` hexadecimal, `[01]+B` binary, or a real with a
/// fraction and/or an exponent.
fn number(text: &str, start: usize) -> Result<(TokenKind, usize), QueryError> {
    let rest = &text.as_bytes()[start..];
    let run = |from: usize, accept: fn(u8) -> bool| {
        rest[from..].iter().take_while(|&&b| accept(b)).count() + from
    };
    let out_of_range = || syntax("the integer does not fit in 64 bits", start);
    let (kind, length) = if rest.len() > 1 && rest[0] == b'0' && matches!(rest[1], b'x' | b'X') {
        let end = run(2, |b| b.is_ascii_hexdigit());
        if end == 2 {
            return Err(syntax("a hexadecimal number needs digits", start));
        }
        let digits = &text[start + 2..start + end];
        let value = u64::from_str_radix(digits, 16).map_err(|_| out_of_range())?;
        (TokenKind::Integer(value), end)
    } else {
        let digits_end = run(0, |b| b.is_ascii_digit());
        let binary = rest[..digits_end].iter().all(|&b| b == b'0' || b == b'1');
        let after = rest.get(digits_end).copied();
        if binary && matches!(after, Some(b'b' | b'B')) {
            let digits = &text[start..start + digits_end];
            let value = u64::from_str_radix(digits, 2).map_err(|_| out_of_range())?;
            (TokenKind::Integer(value), digits_end + 1)
        } else {
            let mut end = digits_end;
            let mut real = false;
            if rest.get(end) == Some(&b'.') && rest.get(end + 1).is_some_and(u8::is_ascii_digit) {
                end = run(end + 1, |b| b.is_ascii_digit());
                real = true;
            }
            if matches!(rest.get(end), Some(b'e' | b'E')) {
                let sign = usize::from(matches!(rest.get(end + 1), Some(b'+' | b'-')));
                let exponent_end = run(end + 1 + sign, |b| b.is_ascii_digit());
                if exponent_end == end + 1 + sign {
                    return Err(syntax("an exponent needs digits", start));
                }
                end = exponent_end;
                real = true;
            }
            let digits = &text[start..start + end];
            if real {
                let value: f64 = digits
                    .parse()
                    .map_err(|_| syntax("malformed real number", start))?;
                if !value.is_finite() {
                    return Err(syntax("the real number is out of range", start));
                }
                (TokenKind::Real(value), end)
            } else {
                let value: u64 = digits.parse().map_err(|_| out_of_range())?;
                (TokenKind::Integer(value), end)
            }
        }
    };
    if text[start + length..]
        .chars()
        .next()
        .is_some_and(is_identifier_continue)
    {
        return Err(syntax("a number runs into a name", start + length));
    }
    Ok((kind, length))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<TokenKind> {
        tokenize(text)
            .unwrap()
            .into_iter()
            .map(|token| token.kind)
            .collect()
    }

    #[test]
    fn numbers_in_every_base() {
        assert_eq!(
            kinds("12 0x1F 101B 1.5 2e3 1E-2"),
            vec![
                TokenKind::Integer(12),
                TokenKind::Integer(31),
                TokenKind::Integer(5),
                TokenKind::Real(1.5),
                TokenKind::Real(2000.0),
                TokenKind::Real(0.01),
                TokenKind::End
            ]
        );
        assert!(tokenize("18446744073709551616").is_err());
        assert!(tokenize("12abc").is_err());
        assert!(tokenize("1e999").is_err());
        assert!(tokenize("0x").is_err());
    }

    #[test]
    fn strings_and_operators() {
        assert_eq!(
            kinds(r#"'it\'s' "a\"b" <> != <= >= :: -"#),
            vec![
                TokenKind::String("it's".into()),
                TokenKind::String("a\"b".into()),
                TokenKind::NotEqual,
                TokenKind::NotEqual,
                TokenKind::LessOrEqual,
                TokenKind::GreaterOrEqual,
                TokenKind::ColonColon,
                TokenKind::Minus,
                TokenKind::End
            ]
        );
        let error = tokenize("a = 'open").unwrap_err();
        assert_eq!(error.position, 4);
        assert!(tokenize("a ; b").is_err());
        assert!(tokenize(r"'\q'").is_err());
    }
}
