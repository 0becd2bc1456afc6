//! A recursive-descent parser for WQL and CQL SELECT statements and FQL filters. Nesting
//! (parentheses and NOT) is bounded by [`QUERY_DEPTH_MAX`]; AND and OR chains are flat lists,
//! so a long chain costs no depth.

use super::ast::{
    ComparisonOperator, ElementTest, Expression, Index, Literal, Operand, PathSegment,
    PropertyPath, Quantifier,
};
use super::lexer::{tokenize, Token, TokenKind};
use super::pattern::{Pattern, PatternDialect};
use super::{
    QueryError, QueryErrorKind, QueryLanguage, SelectList, PATH_SEGMENTS_MAX, QUERY_BYTES_MAX,
    QUERY_DEPTH_MAX,
};
use crate::model::Name;

/// Words that cannot name a property, class or alias.
const RESERVED: [&str; 13] = [
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IS", "NULL", "ISA", "LIKE", "TRUE", "FALSE",
    "AS",
];
/// Words reserved as well in the languages with quantified array tests.
const RESERVED_QUANTIFIERS: [&str; 2] = ["ANY", "EVERY"];

/// The spelling of a punctuation or operator token.
fn symbol(kind: &TokenKind) -> &'static str {
    match kind {
        TokenKind::Star => "*",
        TokenKind::Comma => ",",
        TokenKind::Dot => ".",
        TokenKind::ColonColon => "::",
        TokenKind::LeftParen => "(",
        TokenKind::RightParen => ")",
        TokenKind::LeftBracket => "[",
        TokenKind::RightBracket => "]",
        TokenKind::LeftBrace => "{",
        TokenKind::RightBrace => "}",
        TokenKind::Minus => "-",
        TokenKind::Equal => "=",
        TokenKind::NotEqual => "<>",
        TokenKind::Less => "<",
        TokenKind::LessOrEqual => "<=",
        TokenKind::Greater => ">",
        TokenKind::GreaterOrEqual => ">=",
        TokenKind::Identifier(_)
        | TokenKind::String(_)
        | TokenKind::Integer(_)
        | TokenKind::Real(_)
        | TokenKind::End => "?",
    }
}

/// The parts of a SELECT statement.
pub(super) struct SelectParts {
    pub select: SelectList,
    pub class_name: Name,
    pub alias: Option<Name>,
    pub condition: Option<Expression>,
}

pub(super) struct Parser {
    tokens: Vec<Token>,
    next: usize,
    language: QueryLanguage,
    depth: usize,
}

impl Parser {
    pub(super) fn new(language: QueryLanguage, text: &str) -> Result<Parser, QueryError> {
        if text.len() > QUERY_BYTES_MAX {
            return Err(QueryError::new(
                QueryErrorKind::Limit,
                format!("the query is longer than {QUERY_BYTES_MAX} bytes"),
                QUERY_BYTES_MAX,
            ));
        }
        Ok(Parser {
            tokens: tokenize(text)?,
            next: 0,
            language,
            depth: 0,
        })
    }

    /// `SELECT list FROM class [[AS] alias] [WHERE condition]`.
    pub(super) fn select(mut self) -> Result<SelectParts, QueryError> {
        self.expect_keyword("SELECT")?;
        let select = self.select_list()?;
        self.expect_keyword("FROM")?;
        let class_name = self.name("a class name")?;
        let alias = if self.language == QueryLanguage::Cql
            && (self.eat_keyword("AS") || self.at_unreserved_identifier())
        {
            Some(self.name("an alias")?)
        } else {
            None
        };
        let condition = if self.eat_keyword("WHERE") {
            Some(self.or()?)
        } else {
            None
        };
        self.expect_end()?;
        Ok(SelectParts {
            select,
            class_name,
            alias,
            condition,
        })
    }

    /// An FQL filter: a condition and nothing else.
    pub(super) fn filter(mut self) -> Result<Expression, QueryError> {
        let expression = self.or()?;
        self.expect_end()?;
        Ok(expression)
    }

    // --- tokens ------------------------------------------------------------------------------

    fn peek(&self) -> &Token {
        // The token list always ends with End, and `advance` never moves past it.
        &self.tokens[self.next.min(self.tokens.len() - 1)]
    }

    fn peek_at(&self, ahead: usize) -> &TokenKind {
        &self.tokens[(self.next + ahead).min(self.tokens.len() - 1)].kind
    }

    fn advance(&mut self) -> Token {
        let token = self.peek().clone();
        if token.kind != TokenKind::End {
            self.next += 1;
        }
        token
    }

    fn error(&self, message: impl Into<String>) -> QueryError {
        QueryError::new(QueryErrorKind::Syntax, message, self.peek().position)
    }

    fn unexpected(&self, wanted: &str) -> QueryError {
        let found = match &self.peek().kind {
            TokenKind::End => "the end of the query".to_owned(),
            TokenKind::Identifier(word) => format!("'{word}'"),
            TokenKind::String(_) => "a string".to_owned(),
            TokenKind::Integer(_) | TokenKind::Real(_) => "a number".to_owned(),
            other => format!("'{}'", symbol(other)),
        };
        self.error(format!("expected {wanted}, found {found}"))
    }

    fn at_keyword(&self, keyword: &str) -> bool {
        matches!(&self.peek().kind, TokenKind::Identifier(word) if word.eq_ignore_ascii_case(keyword))
    }

    fn eat_keyword(&mut self, keyword: &str) -> bool {
        let found = self.at_keyword(keyword);
        if found {
            self.advance();
        }
        found
    }

    fn expect_keyword(&mut self, keyword: &str) -> Result<(), QueryError> {
        if self.eat_keyword(keyword) {
            Ok(())
        } else {
            Err(self.unexpected(keyword))
        }
    }

    fn eat(&mut self, kind: &TokenKind) -> bool {
        let found = &self.peek().kind == kind;
        if found {
            self.advance();
        }
        found
    }

    fn expect(&mut self, kind: &TokenKind, wanted: &str) -> Result<(), QueryError> {
        if self.eat(kind) {
            Ok(())
        } else {
            Err(self.unexpected(wanted))
        }
    }

    fn expect_end(&self) -> Result<(), QueryError> {
        if self.peek().kind == TokenKind::End {
            Ok(())
        } else {
            Err(self.unexpected("the end of the query"))
        }
    }

    fn is_reserved(&self, word: &str) -> bool {
        RESERVED.iter().any(|r| r.eq_ignore_ascii_case(word))
            || (self.language != QueryLanguage::Wql
                && RESERVED_QUANTIFIERS
                    .iter()
                    .any(|r| r.eq_ignore_ascii_case(word)))
    }

    fn at_unreserved_identifier(&self) -> bool {
        matches!(&self.peek().kind, TokenKind::Identifier(word) if !self.is_reserved(word))
    }

    fn name(&mut self, wanted: &str) -> Result<Name, QueryError> {
        match &self.peek().kind {
            TokenKind::Identifier(word) if !self.is_reserved(word) => {
                let name = Name::new(word.as_str());
                self.advance();
                Ok(name)
            }
            _ => Err(self.unexpected(wanted)),
        }
    }

    fn enter(&mut self) -> Result<(), QueryError> {
        self.depth += 1;
        if self.depth > QUERY_DEPTH_MAX {
            return Err(QueryError::new(
                QueryErrorKind::Limit,
                format!("the condition nests deeper than {QUERY_DEPTH_MAX}"),
                self.peek().position,
            ));
        }
        Ok(())
    }

    // --- SELECT list ---------------------------------------------------------------------------

    fn select_list(&mut self) -> Result<SelectList, QueryError> {
        if self.eat(&TokenKind::Star) {
            return Ok(SelectList::All);
        }
        // CQL `x.*`: every property of the (only) class.
        if self.language == QueryLanguage::Cql
            && matches!(self.peek_at(1), TokenKind::Dot)
            && matches!(self.peek_at(2), TokenKind::Star)
            && self.at_unreserved_identifier()
        {
            self.advance();
            self.advance();
            self.advance();
            return Ok(SelectList::All);
        }
        let mut paths = vec![self.path()?];
        while self.eat(&TokenKind::Comma) {
            paths.push(self.path()?);
        }
        Ok(SelectList::Properties(paths))
    }

    // --- conditions ----------------------------------------------------------------------------

    fn or(&mut self) -> Result<Expression, QueryError> {
        let mut items = vec![self.and()?];
        while self.eat_keyword("OR") {
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expression::Or(items)
        })
    }

    fn and(&mut self) -> Result<Expression, QueryError> {
        let mut items = vec![self.unary()?];
        while self.eat_keyword("AND") {
            items.push(self.unary()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expression::And(items)
        })
    }

    fn unary(&mut self) -> Result<Expression, QueryError> {
        if self.eat_keyword("NOT") {
            self.enter()?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Expression::Not(Box::new(inner)));
        }
        self.predicate()
    }

    fn predicate(&mut self) -> Result<Expression, QueryError> {
        if self.eat(&TokenKind::LeftParen) {
            self.enter()?;
            let inner = self.or()?;
            self.expect(&TokenKind::RightParen, "')'")?;
            self.depth -= 1;
            return Ok(inner);
        }
        if self.language != QueryLanguage::Wql {
            let quantifier = if self.at_keyword("ANY") {
                Some(Quantifier::Any)
            } else if self.at_keyword("EVERY") {
                Some(Quantifier::Every)
            } else {
                None
            };
            if let Some(quantifier) = quantifier {
                self.advance();
                return self.quantified(quantifier);
            }
        }
        let left = self.operand()?;
        if self.eat_keyword("IS") {
            let negated = self.eat_keyword("NOT");
            self.expect_keyword("NULL")?;
            return Ok(Expression::IsNull {
                operand: left,
                negated,
            });
        }
        if self.at_keyword("ISA") {
            let Operand::Property(path) = left else {
                return Err(self.error("ISA needs a property on its left"));
            };
            self.advance();
            let class_name = self.class_after_isa()?;
            return Ok(Expression::Isa { path, class_name });
        }
        if let Some((pattern, negated)) = self.like()? {
            return Ok(Expression::Like {
                operand: left,
                pattern,
                negated,
            });
        }
        let operator = self.comparison_operator()?;
        let right = self.operand()?;
        Ok(Expression::Comparison {
            left,
            operator,
            right,
        })
    }

    /// The class after ISA: a name, or (as WMI clients write it) a quoted name.
    fn class_after_isa(&mut self) -> Result<Name, QueryError> {
        if let TokenKind::String(text) = &self.peek().kind {
            let mut chars = text.chars();
            let is_name = chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
                && chars.all(|c| c == '_' || c.is_alphanumeric())
                && !self.is_reserved(text);
            if !is_name {
                return Err(self.error("ISA needs a class name"));
            }
            let name = Name::new(text.as_str());
            self.advance();
            return Ok(name);
        }
        self.name("a class name")
    }

    fn quantified(&mut self, quantifier: Quantifier) -> Result<Expression, QueryError> {
        let position = self.peek().position;
        let path = self.path_with(true)?;
        if path
            .segments
            .last()
            .is_some_and(|segment| matches!(segment.index, Some(Index::Position(_))))
        {
            return Err(QueryError::new(
                QueryErrorKind::Syntax,
                "ANY and EVERY need a whole array, not one element",
                position,
            ));
        }
        let test = if let Some((pattern, negated)) = self.like()? {
            ElementTest::Like { pattern, negated }
        } else {
            let operator = self.comparison_operator()?;
            let right = self.operand()?;
            ElementTest::Comparison { operator, right }
        };
        Ok(Expression::Quantified {
            quantifier,
            path,
            test,
        })
    }

    /// `[NOT] LIKE 'pattern'`, if next.
    fn like(&mut self) -> Result<Option<(Pattern, bool)>, QueryError> {
        let negated = if self.at_keyword("NOT") && self.peek_at_keyword(1, "LIKE") {
            self.advance();
            true
        } else if self.at_keyword("LIKE") {
            false
        } else {
            return Ok(None);
        };
        self.advance();
        let TokenKind::String(source) = self.peek().kind.clone() else {
            return Err(self.unexpected("a quoted LIKE pattern"));
        };
        let token = self.advance();
        let dialect = match self.language {
            QueryLanguage::Wql => PatternDialect::Wql,
            QueryLanguage::Cql => PatternDialect::Cql,
            QueryLanguage::Fql => PatternDialect::Fql,
        };
        let pattern = Pattern::new(dialect, &source).map_err(|error| {
            // The offset within the pattern, past the opening quote (exact for patterns
            // without escapes).
            QueryError::new(
                QueryErrorKind::Syntax,
                format!("invalid LIKE pattern: {}", error.message),
                token.position + 1 + error.position,
            )
        })?;
        Ok(Some((pattern, negated)))
    }

    fn peek_at_keyword(&self, ahead: usize, keyword: &str) -> bool {
        matches!(self.peek_at(ahead), TokenKind::Identifier(word) if word.eq_ignore_ascii_case(keyword))
    }

    fn comparison_operator(&mut self) -> Result<ComparisonOperator, QueryError> {
        let operator = match self.peek().kind {
            TokenKind::Equal => ComparisonOperator::Equal,
            TokenKind::NotEqual => ComparisonOperator::NotEqual,
            TokenKind::Less => ComparisonOperator::Less,
            TokenKind::LessOrEqual => ComparisonOperator::LessOrEqual,
            TokenKind::Greater => ComparisonOperator::Greater,
            TokenKind::GreaterOrEqual => ComparisonOperator::GreaterOrEqual,
            _ => return Err(self.unexpected("a comparison operator, IS, ISA or LIKE")),
        };
        self.advance();
        Ok(operator)
    }

    // --- operands ------------------------------------------------------------------------------

    fn operand(&mut self) -> Result<Operand, QueryError> {
        if self.at_unreserved_identifier() {
            return Ok(Operand::Property(self.path()?));
        }
        Ok(Operand::Literal(self.literal(true)?))
    }

    fn literal(&mut self, arrays: bool) -> Result<Literal, QueryError> {
        let token = self.peek().clone();
        let literal = match token.kind {
            TokenKind::String(text) => Literal::String(text),
            TokenKind::Integer(value) => Literal::Integer(value.into()),
            TokenKind::Real(value) => Literal::Real(value),
            TokenKind::Minus => {
                self.advance();
                return match self.peek().kind {
                    TokenKind::Integer(value) => {
                        self.advance();
                        Ok(Literal::Integer(-i128::from(value)))
                    }
                    TokenKind::Real(value) => {
                        self.advance();
                        Ok(Literal::Real(-value))
                    }
                    _ => Err(self.unexpected("a number after '-'")),
                };
            }
            TokenKind::Identifier(word) if word.eq_ignore_ascii_case("TRUE") => {
                Literal::Boolean(true)
            }
            TokenKind::Identifier(word) if word.eq_ignore_ascii_case("FALSE") => {
                Literal::Boolean(false)
            }
            TokenKind::Identifier(word) if word.eq_ignore_ascii_case("NULL") => Literal::Null,
            TokenKind::LeftBrace if arrays && self.language == QueryLanguage::Fql => {
                self.advance();
                return self.array_literal();
            }
            _ => return Err(self.unexpected("a property or a literal")),
        };
        self.advance();
        Ok(literal)
    }

    fn array_literal(&mut self) -> Result<Literal, QueryError> {
        let mut items = Vec::new();
        if !self.eat(&TokenKind::RightBrace) {
            loop {
                items.push(self.literal(false)?);
                if self.eat(&TokenKind::RightBrace) {
                    break;
                }
                self.expect(&TokenKind::Comma, "',' or '}'")?;
            }
        }
        Ok(Literal::Array(items))
    }

    fn path(&mut self) -> Result<PropertyPath, QueryError> {
        self.path_with(false)
    }

    /// `segment(.segment)*`, a segment being `[Class::]Name[index]`. `all_elements` allows a
    /// final `[*]`.
    fn path_with(&mut self, all_elements: bool) -> Result<PropertyPath, QueryError> {
        let position = self.peek().position;
        let mut segments = vec![self.segment(all_elements)?];
        while matches!(self.peek().kind, TokenKind::Dot)
            && matches!(self.peek_at(1), TokenKind::Identifier(_))
        {
            if segments
                .last()
                .is_some_and(|segment| segment.index == Some(Index::All))
            {
                return Err(self.error("'[*]' must end the property path"));
            }
            self.advance();
            segments.push(self.segment(all_elements)?);
            if segments.len() > PATH_SEGMENTS_MAX {
                return Err(QueryError::new(
                    QueryErrorKind::Limit,
                    format!("a property path has more than {PATH_SEGMENTS_MAX} steps"),
                    position,
                ));
            }
        }
        Ok(PropertyPath { segments })
    }

    fn segment(&mut self, all_elements: bool) -> Result<PathSegment, QueryError> {
        let first = self.name("a property name")?;
        let (scope, name) =
            if self.language != QueryLanguage::Fql && self.eat(&TokenKind::ColonColon) {
                (Some(first), self.name("a property name after '::'")?)
            } else {
                (None, first)
            };
        let index = if self.language != QueryLanguage::Wql && self.eat(&TokenKind::LeftBracket) {
            let index = if all_elements && self.eat(&TokenKind::Star) {
                Index::All
            } else {
                match self.peek().kind {
                    TokenKind::Integer(value) => {
                        let position = u32::try_from(value)
                            .map_err(|_| self.error("the array index is too large"))?;
                        self.advance();
                        Index::Position(position)
                    }
                    _ => return Err(self.unexpected("an array index")),
                }
            };
            self.expect(&TokenKind::RightBracket, "']'")?;
            Some(index)
        } else {
            None
        };
        Ok(PathSegment { scope, name, index })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn condition(language: QueryLanguage, text: &str) -> Result<Expression, QueryError> {
        Parser::new(language, text)?.filter()
    }

    #[test]
    fn quantifier_words_are_names_in_wql_only() {
        assert!(condition(QueryLanguage::Wql, "Any = 1").is_ok());
        assert!(condition(QueryLanguage::Cql, "Any = 1").is_err());
        assert!(condition(QueryLanguage::Fql, "every = 1").is_err());
    }

    #[test]
    fn and_binds_tighter_than_or_and_chains_stay_flat() {
        let parsed = condition(QueryLanguage::Fql, "a = 1 OR b = 2 AND c = 3 AND d = 4").unwrap();
        let Expression::Or(items) = parsed else {
            panic!("expected OR at the top");
        };
        assert_eq!(items.len(), 2);
        assert!(matches!(&items[1], Expression::And(chain) if chain.len() == 3));
    }

    #[test]
    fn not_applies_to_the_predicate_after_it() {
        let parsed = condition(QueryLanguage::Wql, "NOT a = 1 AND b = 2").unwrap();
        let Expression::And(items) = parsed else {
            panic!("expected AND at the top");
        };
        assert!(matches!(items[0], Expression::Not(_)));
    }

    #[test]
    fn negative_numbers_and_scopes() {
        let parsed = condition(QueryLanguage::Wql, "S.CIM_Foo::Name >= -0x10").unwrap();
        let Expression::Comparison { left, right, .. } = parsed else {
            panic!("expected a comparison");
        };
        let Operand::Property(path) = left else {
            panic!("expected a property");
        };
        assert_eq!(path.segments[1].scope.as_ref().unwrap(), "cim_foo");
        assert_eq!(right, Operand::Literal(Literal::Integer(-16)));
    }
}
