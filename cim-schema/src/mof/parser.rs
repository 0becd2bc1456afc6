//! The MOF parser: tokens in, one production at a time out, as a syntax tree that borrows names
//! from the text. It does not recurse (MOF 2 values do not nest), so no input can exhaust the
//! stack here; after an error, [`Parser::recover`] skips to the end of the production.

use std::borrow::Cow;

use super::error::{Fault, MofErrorKind};
use super::lexer::{LexError, Lexer, Token, TokenKind};
use super::literal::{decode_char16, decode_into, decode_string, parse_number, Number};
use crate::model::{CimType, Flavor, Name, Scope};

/// A flavor word written at a qualifier's use or declaration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FlavorWord {
    EnableOverride,
    DisableOverride,
    ToSubclass,
    Restricted,
    Translatable,
    ToInstance,
}

impl FlavorWord {
    fn parse(word: &str) -> Option<FlavorWord> {
        const WORDS: [(&str, FlavorWord); 6] = [
            ("enableoverride", FlavorWord::EnableOverride),
            ("disableoverride", FlavorWord::DisableOverride),
            ("tosubclass", FlavorWord::ToSubclass),
            ("restricted", FlavorWord::Restricted),
            ("translatable", FlavorWord::Translatable),
            ("toinstance", FlavorWord::ToInstance),
        ];
        WORDS
            .iter()
            .find(|(w, _)| w.eq_ignore_ascii_case(word))
            .map(|&(_, f)| f)
    }

    /// Applies the word to a set of flavors.
    pub(crate) fn apply(self, flavor: &mut Flavor) {
        match self {
            FlavorWord::EnableOverride => flavor.overridable = true,
            FlavorWord::DisableOverride => flavor.overridable = false,
            FlavorWord::ToSubclass => flavor.to_subclass = true,
            FlavorWord::Restricted => flavor.to_subclass = false,
            FlavorWord::Translatable => flavor.translatable = true,
            FlavorWord::ToInstance => flavor.to_instance = true,
        }
    }
}

/// A literal value with its byte offset.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Literal<'a> {
    pub value: LiteralValue<'a>,
    pub offset: usize,
}

/// The kinds of MOF literal.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum LiteralValue<'a> {
    Integer(i128),
    Real(f64),
    /// One or more adjacent string literals, concatenated and unescaped.
    String(Cow<'a, str>),
    Char16(u16),
    Boolean(bool),
    Null,
    /// `$name`, a reference to an aliased instance (or class).
    Alias(&'a str),
}

impl LiteralValue<'_> {
    /// How an error message names this kind of value.
    pub(crate) fn describe(&self) -> &'static str {
        match self {
            LiteralValue::Integer(_) => "an integer",
            LiteralValue::Real(_) => "a real",
            LiteralValue::String(_) => "a string",
            LiteralValue::Char16(_) => "a char16",
            LiteralValue::Boolean(_) => "a boolean",
            LiteralValue::Null => "null",
            LiteralValue::Alias(_) => "an alias",
        }
    }
}

/// A value: a scalar or an array initializer `{ ... }`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Initializer<'a> {
    Scalar(Literal<'a>),
    Array {
        items: Vec<Literal<'a>>,
        offset: usize,
    },
}

/// A qualifier as used: `Name(value) : flavor ...` or `Name {values}` or `Name`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct QualifierUse<'a> {
    pub name: &'a str,
    pub offset: usize,
    pub value: Option<Initializer<'a>>,
    pub flavors: Vec<FlavorWord>,
}

/// `[]` (`Some(None)`), `[16]` (`Some(Some(16))`) or no brackets (`None`).
pub(crate) type ArraySpec = Option<Option<u32>>;

/// `Qualifier Name : type[] = default, Scope(...), Flavor(...);`
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct QualifierDecl<'a> {
    pub name: &'a str,
    pub offset: usize,
    pub cim_type: CimType,
    pub array: ArraySpec,
    pub default: Option<Initializer<'a>>,
    pub scope: Scope,
    pub flavor: Flavor,
}

/// A property or reference of a class.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PropertyDecl<'a> {
    pub qualifiers: Vec<QualifierUse<'a>>,
    pub cim_type: CimType,
    pub name: &'a str,
    pub offset: usize,
    pub array: ArraySpec,
    pub default: Option<Initializer<'a>>,
}

/// A method parameter.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ParameterDecl<'a> {
    pub qualifiers: Vec<QualifierUse<'a>>,
    pub cim_type: CimType,
    pub name: &'a str,
    pub offset: usize,
    pub array: ArraySpec,
}

/// A method of a class.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct MethodDecl<'a> {
    pub qualifiers: Vec<QualifierUse<'a>>,
    pub return_type: CimType,
    pub name: &'a str,
    pub offset: usize,
    pub parameters: Vec<ParameterDecl<'a>>,
}

/// A class feature.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Feature<'a> {
    Property(PropertyDecl<'a>),
    Method(MethodDecl<'a>),
}

/// `[qualifiers] class Name [as $Alias] [: Superclass] { features };`
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ClassDecl<'a> {
    pub qualifiers: Vec<QualifierUse<'a>>,
    pub name: &'a str,
    pub offset: usize,
    pub alias: Option<(&'a str, usize)>,
    pub superclass: Option<(&'a str, usize)>,
    pub features: Vec<Feature<'a>>,
}

/// One `Name = value;` of an instance.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ValueDecl<'a> {
    pub qualifiers: Vec<QualifierUse<'a>>,
    pub name: &'a str,
    pub offset: usize,
    pub value: Initializer<'a>,
}

/// `[qualifiers] instance of Class [as $Alias] { values };`
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct InstanceDecl<'a> {
    pub qualifiers: Vec<QualifierUse<'a>>,
    pub class: &'a str,
    pub offset: usize,
    pub alias: Option<(&'a str, usize)>,
    pub values: Vec<ValueDecl<'a>>,
}

/// `#pragma name("value")`
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Pragma<'a> {
    pub name: &'a str,
    pub offset: usize,
    pub value: Cow<'a, str>,
}

/// One top-level MOF production.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Production<'a> {
    Pragma(Pragma<'a>),
    Qualifier(QualifierDecl<'a>),
    Class(ClassDecl<'a>),
    Instance(InstanceDecl<'a>),
}

/// Parses the productions of one text.
pub(crate) struct Parser<'a> {
    lexer: Lexer<'a>,
    token: Token<'a>,
    /// Braces opened and not closed since the production started: recovery skips to a `;` at
    /// depth zero, which ends the production the error is in.
    depth: usize,
}

impl<'a> Parser<'a> {
    /// A parser at the start of `text`.
    pub(crate) fn new(text: &'a str) -> Parser<'a> {
        let mut lexer = Lexer::new(text);
        let token = lexer.next_token();
        Parser {
            lexer,
            token,
            depth: 0,
        }
    }

    /// The next production, or `None` at the end of the text.
    pub(crate) fn next_production(&mut self) -> Option<Result<Production<'a>, Fault>> {
        self.depth = 0;
        if self.token.kind == TokenKind::Eof {
            return None;
        }
        Some(self.production())
    }

    /// Skips to the end of the production that failed: past the next `;` outside braces, or up
    /// to a word that starts a production (`class`, `instance`, `qualifier`, `#`) outside
    /// parentheses. The second rule keeps an unterminated literal, which swallows the rest of
    /// its line and perhaps a closing brace, from hiding every later production.
    ///
    /// Progress: each production consumes its first token when it is one of those words, so
    /// stopping in front of one cannot loop.
    pub(crate) fn recover(&mut self) {
        let mut parentheses = 0usize;
        loop {
            match self.token.kind {
                TokenKind::Eof => return,
                TokenKind::Punct(b';') if self.depth == 0 => {
                    self.bump();
                    return;
                }
                TokenKind::Punct(b'#') if parentheses == 0 => return,
                TokenKind::Identifier
                    if parentheses == 0
                        && (self.is_keyword("class")
                            || self.is_keyword("instance")
                            || self.is_keyword("qualifier")) =>
                {
                    return
                }
                TokenKind::Punct(b'(') => parentheses += 1,
                TokenKind::Punct(b')') => parentheses = parentheses.saturating_sub(1),
                _ => {}
            }
            self.bump();
        }
    }

    fn production(&mut self) -> Result<Production<'a>, Fault> {
        if self.is_punct(b'#') {
            return self.pragma().map(Production::Pragma);
        }
        if self.is_keyword("qualifier") {
            return self.qualifier_declaration().map(Production::Qualifier);
        }
        let qualifiers = self.qualifier_list()?;
        if self.is_keyword("class") {
            self.class(qualifiers).map(Production::Class)
        } else if self.is_keyword("instance") {
            self.instance(qualifiers).map(Production::Instance)
        } else {
            Err(self.expected("class, instance, qualifier or #pragma"))
        }
    }

    // ----- token plumbing -----

    /// Consumes the current token and returns it.
    fn bump(&mut self) -> Token<'a> {
        let token = self.token;
        match token.kind {
            TokenKind::Punct(b'{') => self.depth += 1,
            TokenKind::Punct(b'}') => self.depth = self.depth.saturating_sub(1),
            _ => {}
        }
        self.token = self.lexer.next_token();
        token
    }

    fn is_punct(&self, c: u8) -> bool {
        self.token.kind == TokenKind::Punct(c)
    }

    fn is_keyword(&self, word: &str) -> bool {
        self.token.kind == TokenKind::Identifier && self.token.text.eq_ignore_ascii_case(word)
    }

    /// An error for the current token: the lexer's own if it is an error token.
    fn expected(&self, expected: &'static str) -> Fault {
        let token = self.token;
        let kind = match token.kind {
            TokenKind::Error(error) => match error {
                LexError::Unexpected(c) => MofErrorKind::UnexpectedCharacter(c),
                LexError::UnterminatedString => MofErrorKind::UnterminatedString,
                LexError::UnterminatedChar16 => MofErrorKind::UnterminatedChar16,
                LexError::UnterminatedComment => MofErrorKind::UnterminatedComment,
            },
            TokenKind::Eof => MofErrorKind::Expected {
                expected,
                found: "end of input".to_owned(),
            },
            TokenKind::String => MofErrorKind::Expected {
                expected,
                found: "a string".to_owned(),
            },
            _ => MofErrorKind::Expected {
                expected,
                found: format!("{:?}", shorten(token.text)),
            },
        };
        Fault::new(token.offset, kind)
    }

    fn expect_punct(&mut self, c: u8, expected: &'static str) -> Result<Token<'a>, Fault> {
        if self.is_punct(c) {
            Ok(self.bump())
        } else {
            Err(self.expected(expected))
        }
    }

    fn expect_keyword(&mut self, word: &str, expected: &'static str) -> Result<Token<'a>, Fault> {
        if self.is_keyword(word) {
            Ok(self.bump())
        } else {
            Err(self.expected(expected))
        }
    }

    fn identifier(&mut self, expected: &'static str) -> Result<Token<'a>, Fault> {
        if self.token.kind == TokenKind::Identifier {
            Ok(self.bump())
        } else {
            Err(self.expected(expected))
        }
    }

    /// One or more adjacent string literals, concatenated: `"a" "b"` is `"ab"`.
    fn string(&mut self, expected: &'static str) -> Result<(Cow<'a, str>, usize), Fault> {
        if self.token.kind != TokenKind::String {
            return Err(self.expected(expected));
        }
        let first = self.bump();
        if self.token.kind != TokenKind::String {
            return Ok((decode_string(first.text, first.offset + 1)?, first.offset));
        }
        let mut text = String::with_capacity(first.text.len() * 4);
        decode_into(first.text, first.offset + 1, &mut text)?;
        while self.token.kind == TokenKind::String {
            let next = self.bump();
            decode_into(next.text, next.offset + 1, &mut text)?;
        }
        Ok((Cow::Owned(text), first.offset))
    }

    // ----- productions -----

    fn pragma(&mut self) -> Result<Pragma<'a>, Fault> {
        let hash = self.bump();
        self.expect_keyword("pragma", "pragma after #")?;
        let name = self.identifier("a pragma name")?;
        self.expect_punct(b'(', "(")?;
        let (value, _) = self.string("a string")?;
        self.expect_punct(b')', ")")?;
        Ok(Pragma {
            name: name.text,
            offset: hash.offset,
            value,
        })
    }

    fn qualifier_declaration(&mut self) -> Result<QualifierDecl<'a>, Fault> {
        self.bump();
        let name = self.identifier("a qualifier name")?;
        self.expect_punct(b':', ":")?;
        let type_token = self.identifier("a data type")?;
        let cim_type = CimType::from_keyword(type_token.text).ok_or_else(|| {
            Fault::new(
                type_token.offset,
                MofErrorKind::UnknownType(type_token.text.to_owned()),
            )
        })?;
        let array = self.array_spec()?;
        let default = if self.is_punct(b'=') {
            self.bump();
            Some(self.initializer()?)
        } else {
            None
        };
        let mut scope = Scope::default();
        let mut flavor = Flavor::default();
        while self.is_punct(b',') {
            self.bump();
            if self.is_keyword("scope") {
                self.bump();
                self.scope_list(&mut scope)?;
            } else if self.is_keyword("flavor") {
                self.bump();
                for word in self.flavor_list()? {
                    word.apply(&mut flavor);
                }
            } else {
                return Err(self.expected("Scope or Flavor"));
            }
        }
        self.expect_punct(b';', "; after the qualifier declaration")?;
        Ok(QualifierDecl {
            name: name.text,
            offset: name.offset,
            cim_type,
            array,
            default,
            scope,
            flavor,
        })
    }

    fn scope_list(&mut self, scope: &mut Scope) -> Result<(), Fault> {
        self.expect_punct(b'(', "( after Scope")?;
        loop {
            let word = self.identifier("a scope")?;
            let text = word.text.to_ascii_lowercase();
            match text.as_str() {
                "class" => scope.class = true,
                "association" => scope.association = true,
                "indication" => scope.indication = true,
                "property" => scope.property = true,
                "reference" => scope.reference = true,
                "method" => scope.method = true,
                "parameter" => scope.parameter = true,
                "any" => *scope = Scope::ANY,
                // Qualifiers on qualifier declarations do not exist in MOF 2: nothing to record.
                "qualifier" => {}
                _ => {
                    return Err(Fault::new(
                        word.offset,
                        MofErrorKind::UnknownScope(word.text.to_owned()),
                    ))
                }
            }
            if self.is_punct(b',') {
                self.bump();
            } else {
                self.expect_punct(b')', ") after the scopes")?;
                return Ok(());
            }
        }
    }

    fn flavor_list(&mut self) -> Result<Vec<FlavorWord>, Fault> {
        self.expect_punct(b'(', "( after Flavor")?;
        let mut words = Vec::new();
        loop {
            words.push(self.flavor_word()?);
            if self.is_punct(b',') {
                self.bump();
            } else {
                self.expect_punct(b')', ") after the flavors")?;
                return Ok(words);
            }
        }
    }

    fn flavor_word(&mut self) -> Result<FlavorWord, Fault> {
        let word = self.identifier("a flavor")?;
        FlavorWord::parse(word.text).ok_or_else(|| {
            Fault::new(
                word.offset,
                MofErrorKind::UnknownFlavor(word.text.to_owned()),
            )
        })
    }

    /// `[` qualifier, ... `]`, or nothing.
    fn qualifier_list(&mut self) -> Result<Vec<QualifierUse<'a>>, Fault> {
        let mut list = Vec::new();
        if !self.is_punct(b'[') {
            return Ok(list);
        }
        self.bump();
        loop {
            list.push(self.qualifier_use()?);
            if self.is_punct(b',') {
                self.bump();
            } else {
                self.expect_punct(b']', ", or ] in the qualifier list")?;
                return Ok(list);
            }
        }
    }

    fn qualifier_use(&mut self) -> Result<QualifierUse<'a>, Fault> {
        let name = self.identifier("a qualifier name")?;
        let value = if self.is_punct(b'(') {
            self.bump();
            let value = if self.is_punct(b'{') {
                self.array_initializer()?
            } else {
                Initializer::Scalar(self.literal()?)
            };
            self.expect_punct(b')', ") after the qualifier value")?;
            Some(value)
        } else if self.is_punct(b'{') {
            Some(self.array_initializer()?)
        } else {
            None
        };
        let mut flavors = Vec::new();
        if self.is_punct(b':') {
            self.bump();
            // `: Flavor(a, b)` or `: a b`.
            if self.is_keyword("flavor") {
                self.bump();
                flavors = self.flavor_list()?;
            } else {
                flavors.push(self.flavor_word()?);
                while self.token.kind == TokenKind::Identifier {
                    flavors.push(self.flavor_word()?);
                }
            }
        }
        Ok(QualifierUse {
            name: name.text,
            offset: name.offset,
            value,
            flavors,
        })
    }

    /// `[]`, `[N]` or nothing.
    fn array_spec(&mut self) -> Result<ArraySpec, Fault> {
        if !self.is_punct(b'[') {
            return Ok(None);
        }
        self.bump();
        if self.is_punct(b']') {
            self.bump();
            return Ok(Some(None));
        }
        if self.token.kind != TokenKind::Number {
            return Err(self.expected("an array size or ]"));
        }
        let size = self.bump();
        let parsed = size
            .text
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| size.text.parse::<u32>().ok())
            .flatten()
            .filter(|&n| n > 0)
            .ok_or_else(|| {
                Fault::new(
                    size.offset,
                    MofErrorKind::InvalidArraySize(size.text.to_owned()),
                )
            })?;
        self.expect_punct(b']', "] after the array size")?;
        Ok(Some(Some(parsed)))
    }

    fn initializer(&mut self) -> Result<Initializer<'a>, Fault> {
        if self.is_punct(b'{') {
            self.array_initializer()
        } else {
            Ok(Initializer::Scalar(self.literal()?))
        }
    }

    fn array_initializer(&mut self) -> Result<Initializer<'a>, Fault> {
        let open = self.expect_punct(b'{', "{")?;
        let mut items = Vec::new();
        if self.is_punct(b'}') {
            self.bump();
            return Ok(Initializer::Array {
                items,
                offset: open.offset,
            });
        }
        loop {
            items.push(self.literal()?);
            if self.is_punct(b',') {
                self.bump();
            } else {
                self.expect_punct(b'}', ", or } in the array")?;
                return Ok(Initializer::Array {
                    items,
                    offset: open.offset,
                });
            }
        }
    }

    fn literal(&mut self) -> Result<Literal<'a>, Fault> {
        let offset = self.token.offset;
        let value = match self.token.kind {
            TokenKind::String => LiteralValue::String(self.string("a value")?.0),
            TokenKind::Number => {
                let token = self.bump();
                match parse_number(token.text, token.offset)? {
                    Number::Integer(n) => LiteralValue::Integer(n),
                    Number::Real(r) => LiteralValue::Real(r),
                }
            }
            TokenKind::Char16 => {
                let token = self.bump();
                LiteralValue::Char16(decode_char16(token.text, token.offset)?)
            }
            TokenKind::Alias => LiteralValue::Alias(self.bump().text),
            TokenKind::Identifier if self.is_keyword("true") => {
                self.bump();
                LiteralValue::Boolean(true)
            }
            TokenKind::Identifier if self.is_keyword("false") => {
                self.bump();
                LiteralValue::Boolean(false)
            }
            TokenKind::Identifier if self.is_keyword("null") => {
                self.bump();
                LiteralValue::Null
            }
            _ => return Err(self.expected("a value")),
        };
        Ok(Literal { value, offset })
    }

    fn class(&mut self, qualifiers: Vec<QualifierUse<'a>>) -> Result<ClassDecl<'a>, Fault> {
        self.bump();
        let name = self.identifier("a class name")?;
        let alias = self.alias()?;
        let superclass = if self.is_punct(b':') {
            self.bump();
            let superclass = self.identifier("a superclass name")?;
            Some((superclass.text, superclass.offset))
        } else {
            None
        };
        self.expect_punct(b'{', "{ to open the class")?;
        let mut features = Vec::new();
        while !self.is_punct(b'}') {
            features.push(self.feature()?);
        }
        self.bump();
        self.expect_punct(b';', "; after the class")?;
        Ok(ClassDecl {
            qualifiers,
            name: name.text,
            offset: name.offset,
            alias,
            superclass,
            features,
        })
    }

    /// `as $Alias`, or nothing.
    fn alias(&mut self) -> Result<Option<(&'a str, usize)>, Fault> {
        if !self.is_keyword("as") {
            return Ok(None);
        }
        self.bump();
        if self.token.kind != TokenKind::Alias {
            return Err(self.expected("$alias after as"));
        }
        let alias = self.bump();
        Ok(Some((alias.text, alias.offset)))
    }

    /// A data type (`uint16`) or a reference type (`CIM_X REF`).
    fn data_type(&mut self) -> Result<CimType, Fault> {
        let word = self.identifier("a data type, a class name and REF, or }")?;
        if let Some(cim_type) = CimType::from_keyword(word.text) {
            return Ok(cim_type);
        }
        if self.is_keyword("ref") {
            self.bump();
            return Ok(CimType::Reference(Some(Name::new(word.text))));
        }
        Err(Fault::new(
            word.offset,
            MofErrorKind::UnknownType(word.text.to_owned()),
        ))
    }

    fn feature(&mut self) -> Result<Feature<'a>, Fault> {
        let qualifiers = self.qualifier_list()?;
        let cim_type = self.data_type()?;
        let name = self.identifier("a property or method name")?;
        if self.is_punct(b'(') {
            self.bump();
            let parameters = self.parameters()?;
            self.expect_punct(b';', "; after the method")?;
            return Ok(Feature::Method(MethodDecl {
                qualifiers,
                return_type: cim_type,
                name: name.text,
                offset: name.offset,
                parameters,
            }));
        }
        let array = self.array_spec()?;
        let default = if self.is_punct(b'=') {
            self.bump();
            Some(self.initializer()?)
        } else {
            None
        };
        self.expect_punct(b';', "; after the property")?;
        Ok(Feature::Property(PropertyDecl {
            qualifiers,
            cim_type,
            name: name.text,
            offset: name.offset,
            array,
            default,
        }))
    }

    /// The parameters after `(`, through `)`.
    fn parameters(&mut self) -> Result<Vec<ParameterDecl<'a>>, Fault> {
        let mut parameters = Vec::new();
        if self.is_punct(b')') {
            self.bump();
            return Ok(parameters);
        }
        loop {
            let qualifiers = self.qualifier_list()?;
            let cim_type = self.data_type()?;
            let name = self.identifier("a parameter name")?;
            let array = self.array_spec()?;
            parameters.push(ParameterDecl {
                qualifiers,
                cim_type,
                name: name.text,
                offset: name.offset,
                array,
            });
            if self.is_punct(b',') {
                self.bump();
            } else {
                self.expect_punct(b')', ", or ) in the parameters")?;
                return Ok(parameters);
            }
        }
    }

    fn instance(&mut self, qualifiers: Vec<QualifierUse<'a>>) -> Result<InstanceDecl<'a>, Fault> {
        self.bump();
        self.expect_keyword("of", "of after instance")?;
        let class = self.identifier("a class name")?;
        let alias = self.alias()?;
        self.expect_punct(b'{', "{ to open the instance")?;
        let mut values = Vec::new();
        while !self.is_punct(b'}') {
            let qualifiers = self.qualifier_list()?;
            let name = self.identifier("a property name or }")?;
            self.expect_punct(b'=', "= after the property name")?;
            let value = self.initializer()?;
            self.expect_punct(b';', "; after the value")?;
            values.push(ValueDecl {
                qualifiers,
                name: name.text,
                offset: name.offset,
                value,
            });
        }
        self.bump();
        self.expect_punct(b';', "; after the instance")?;
        Ok(InstanceDecl {
            qualifiers,
            class: class.text,
            offset: class.offset,
            alias,
            values,
        })
    }
}

/// At most 40 characters of a token, for messages.
fn shorten(text: &str) -> &str {
    match text.char_indices().nth(40) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(text: &str) -> Vec<Result<Production<'_>, Fault>> {
        let mut parser = Parser::new(text);
        let mut out = Vec::new();
        while let Some(production) = parser.next_production() {
            if production.is_err() {
                parser.recover();
            }
            out.push(production);
        }
        out
    }

    #[test]
    fn a_class_with_every_feature_kind() {
        let text = r#"[Association, Description("a" "b")]
            class A : B {
              [Key] X REF a;
              uint16 V[] = {1, 0x2};
              uint8 F[16];
              [Static] uint32 M([In] string s[], [IN, Out] Y REF r);
            };"#;
        let productions = parse_all(text);
        let Some(Ok(Production::Class(class))) = productions.first() else {
            panic!("{productions:?}");
        };
        assert_eq!(class.name, "A");
        assert_eq!(class.superclass.map(|s| s.0), Some("B"));
        assert_eq!(
            class.qualifiers[1].value,
            Some(Initializer::Scalar(Literal {
                value: LiteralValue::String(Cow::Owned("ab".to_owned())),
                offset: 26,
            }))
        );
        assert_eq!(class.features.len(), 4);
        let Feature::Method(method) = &class.features[3] else {
            panic!("not a method");
        };
        assert_eq!(method.parameters.len(), 2);
        assert_eq!(method.parameters[0].array, Some(None));
        assert_eq!(
            method.parameters[1].cim_type,
            CimType::Reference(Some(Name::new("Y")))
        );
    }

    #[test]
    fn recovery_resumes_after_the_failed_production() {
        let productions = parse_all("class A { uint8 x = ; }; class B { };");
        assert_eq!(productions.len(), 2);
        assert!(productions[0].is_err());
        assert!(matches!(&productions[1], Ok(Production::Class(c)) if c.name == "B"));
    }
}
