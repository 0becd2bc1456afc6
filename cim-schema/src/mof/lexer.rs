//! The MOF lexer: works on the bytes of a UTF-8 text and hands out tokens that borrow from it,
//! with no allocation. Keywords are not tokens of their own: MOF keywords are case-insensitive
//! and most may also be names, so the parser recognizes them in context.

/// What a token is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum TokenKind {
    /// A name or keyword; `text` is the word.
    Identifier,
    /// A string literal; `text` is the raw content between the quotes, escapes undecoded.
    String,
    /// A char16 literal; `text` is the raw content between the single quotes.
    Char16,
    /// A number in any MOF form; `text` is the literal, sign included.
    Number,
    /// `$name`; `text` is the name without the dollar.
    Alias,
    /// One of `{ } ( ) [ ] ; , : = #`.
    Punct(u8),
    /// The end of the text.
    Eof,
    /// Text that is no token; the lexer has skipped past it.
    Error(LexError),
}

/// What the lexer could not make a token of.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum LexError {
    /// A character that starts no token.
    Unexpected(char),
    /// A string with no closing quote on its line.
    UnterminatedString,
    /// A char16 literal with no closing quote on its line.
    UnterminatedChar16,
    /// A `/*` with no `*/`.
    UnterminatedComment,
}

/// A token: its kind, its text (see [`TokenKind`]) and the byte offset where it starts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Token<'a> {
    pub kind: TokenKind,
    pub text: &'a str,
    pub offset: usize,
}

/// Hands out the tokens of a text one by one.
pub(crate) struct Lexer<'a> {
    text: &'a str,
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Lexer<'a> {
    /// A lexer at the start of `text` (a UTF-8 byte order mark is skipped).
    pub(crate) fn new(text: &'a str) -> Lexer<'a> {
        let position = if text.starts_with('\u{feff}') { 3 } else { 0 };
        Lexer {
            text,
            bytes: text.as_bytes(),
            position,
        }
    }

    /// The next token; [`TokenKind::Eof`] forever once the text is exhausted.
    pub(crate) fn next_token(&mut self) -> Token<'a> {
        if let Err(start) = self.skip_blanks() {
            return self.token(
                TokenKind::Error(LexError::UnterminatedComment),
                start,
                start,
            );
        }
        let start = self.position;
        let Some(&byte) = self.bytes.get(start) else {
            return self.token(TokenKind::Eof, start, start);
        };
        match byte {
            b'"' => self.quoted(b'"'),
            b'\'' => self.quoted(b'\''),
            b'$' => {
                self.position += 1;
                let name_start = self.position;
                self.skip_identifier();
                if self.position == name_start {
                    return self.token(TokenKind::Error(LexError::Unexpected('$')), start, start);
                }
                self.token(TokenKind::Alias, name_start, self.position)
            }
            b'{' | b'}' | b'(' | b')' | b'[' | b']' | b';' | b',' | b':' | b'=' | b'#' => {
                self.position += 1;
                self.token(TokenKind::Punct(byte), start, self.position)
            }
            b'0'..=b'9' => self.number(),
            b'+' | b'-' | b'.' if self.starts_number(start) => self.number(),
            _ if is_identifier_start(byte) => {
                self.skip_identifier();
                self.token(TokenKind::Identifier, start, self.position)
            }
            _ => {
                // The text is a str, so a character starts here; take all of it.
                let c = self.text[start..].chars().next().unwrap_or('\u{fffd}');
                self.position += c.len_utf8();
                self.token(TokenKind::Error(LexError::Unexpected(c)), start, start)
            }
        }
    }

    fn token(&self, kind: TokenKind, start: usize, end: usize) -> Token<'a> {
        Token {
            kind,
            // Every boundary the lexer stops at is an ASCII byte or the end of the text, so this
            // slice is on character boundaries; `get` keeps a mistake from ever panicking.
            text: self.text.get(start..end).unwrap_or(""),
            offset: start,
        }
    }

    /// Skips white space and comments; on an unterminated comment, returns its start.
    fn skip_blanks(&mut self) -> Result<(), usize> {
        loop {
            match self.bytes.get(self.position..self.position + 2) {
                Some(b"//") => {
                    let rest = &self.bytes[self.position..];
                    self.position += rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
                    continue;
                }
                Some(b"/*") => {
                    let start = self.position;
                    let rest = &self.bytes[start + 2..];
                    match rest.windows(2).position(|w| w == b"*/") {
                        Some(end) => self.position = start + 2 + end + 2,
                        None => {
                            self.position = self.bytes.len();
                            return Err(start);
                        }
                    }
                    continue;
                }
                _ => {}
            }
            match self.bytes.get(self.position) {
                Some(b' ' | b'\t' | b'\r' | b'\n' | b'\x0c' | b'\x0b') => self.position += 1,
                _ => return Ok(()),
            }
        }
    }

    fn skip_identifier(&mut self) {
        while let Some(&b) = self.bytes.get(self.position) {
            if is_identifier_start(b) || b.is_ascii_digit() {
                self.position += 1;
            } else {
                break;
            }
        }
    }

    /// A `+`, `-` or `.` starts a number when a digit (or `.digit`) follows.
    fn starts_number(&self, start: usize) -> bool {
        let next = |i: usize| self.bytes.get(start + i).copied().unwrap_or(0);
        match next(0) {
            b'.' => next(1).is_ascii_digit(),
            _ => next(1).is_ascii_digit() || (next(1) == b'.' && next(2).is_ascii_digit()),
        }
    }

    /// A number: an optional sign, then letters, digits and dots, with a sign allowed right after
    /// an exponent `e`. The parser decides which form it is.
    fn number(&mut self) -> Token<'a> {
        let start = self.position;
        self.position += 1;
        while let Some(&b) = self.bytes.get(self.position) {
            let exponent_sign = (b == b'+' || b == b'-')
                && matches!(self.bytes[self.position - 1], b'e' | b'E')
                && self
                    .bytes
                    .get(self.position + 1)
                    .is_some_and(u8::is_ascii_digit)
                && !self.text[start..self.position].contains(['x', 'X']);
            if b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || exponent_sign {
                self.position += 1;
            } else {
                break;
            }
        }
        self.token(TokenKind::Number, start, self.position)
    }

    /// A string or char16 literal: the content up to the closing quote, backslash escapes
    /// skipped. A literal may not span lines; an unterminated one ends at the end of its line
    /// so that lexing resumes on the next.
    fn quoted(&mut self, quote: u8) -> Token<'a> {
        let start = self.position;
        let content = start + 1;
        let mut i = content;
        while let Some(&b) = self.bytes.get(i) {
            if b == quote {
                self.position = i + 1;
                let kind = if quote == b'"' {
                    TokenKind::String
                } else {
                    TokenKind::Char16
                };
                let mut token = self.token(kind, content, i);
                token.offset = start;
                return token;
            }
            match b {
                b'\\' if self.bytes.get(i + 1).is_some_and(|&n| n != b'\n') => i += 2,
                b'\n' => break,
                _ => i += 1,
            }
        }
        self.position = i.min(self.bytes.len());
        let error = if quote == b'"' {
            LexError::UnterminatedString
        } else {
            LexError::UnterminatedChar16
        };
        self.token(TokenKind::Error(error), start, start)
    }
}

/// Identifiers start with a letter, an underscore or any non-ASCII character (DSP0221 allows
/// U+0080 and up).
fn is_identifier_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(TokenKind, &str)> {
        let mut lexer = Lexer::new(text);
        let mut out = Vec::new();
        loop {
            let token = lexer.next_token();
            if token.kind == TokenKind::Eof {
                return out;
            }
            out.push((token.kind, token.text));
        }
    }

    #[test]
    fn tokens_of_a_property() {
        assert_eq!(
            kinds("[Key] uint16 A[] = {1, -2, 0x1F, 1.5e-3}; // c\n/* x */ $a 'c' \"s\\\"t\""),
            vec![
                (TokenKind::Punct(b'['), "["),
                (TokenKind::Identifier, "Key"),
                (TokenKind::Punct(b']'), "]"),
                (TokenKind::Identifier, "uint16"),
                (TokenKind::Identifier, "A"),
                (TokenKind::Punct(b'['), "["),
                (TokenKind::Punct(b']'), "]"),
                (TokenKind::Punct(b'='), "="),
                (TokenKind::Punct(b'{'), "{"),
                (TokenKind::Number, "1"),
                (TokenKind::Punct(b','), ","),
                (TokenKind::Number, "-2"),
                (TokenKind::Punct(b','), ","),
                (TokenKind::Number, "0x1F"),
                (TokenKind::Punct(b','), ","),
                (TokenKind::Number, "1.5e-3"),
                (TokenKind::Punct(b'}'), "}"),
                (TokenKind::Punct(b';'), ";"),
                (TokenKind::Alias, "a"),
                (TokenKind::Char16, "c"),
                (TokenKind::String, "s\\\"t"),
            ]
        );
    }

    #[test]
    fn unterminated_things_are_error_tokens_and_lexing_resumes() {
        let found = kinds("\"abc\nx /* y");
        assert_eq!(
            found,
            vec![
                (TokenKind::Error(LexError::UnterminatedString), ""),
                (TokenKind::Identifier, "x"),
                (TokenKind::Error(LexError::UnterminatedComment), ""),
            ]
        );
        assert_eq!(
            kinds("@ 'a"),
            vec![
                (TokenKind::Error(LexError::Unexpected('@')), ""),
                (TokenKind::Error(LexError::UnterminatedChar16), ""),
            ]
        );
    }
}
