//! LIKE patterns in the three dialects, compiled to a small NFA and matched in time linear in
//! the text (a Pike VM: no backtracking, so no pattern can make a match take exponential time).
//!
//! - WQL: `%` any run of characters, `_` one character, `[abc]`, `[a-z]`, `[^abc]` one
//!   character of (or not of) a set; anything else stands for itself.
//! - CQL (DSP0202 basic LIKE): `.` one character, `*` any number of the preceding single
//!   character (`.*` any run), `\` escapes `.`, `*` or `\`.
//! - FQL (DSP0212, the DSP1001 regular expression subset): `.`, `[...]` sets (negated by a
//!   leading `^` inside or a `^` right after the `]`), `*` `+` `?` `{m}` `{m,}` `{m,n}`,
//!   groups `( )`, alternatives `|`, anchors `^` `$`, and `\` escapes.
//!
//! Every pattern must match the whole string, and matching is case-sensitive.

use std::fmt;

/// How many NFA instructions a compiled pattern may have.
pub const PATTERN_INSTRUCTIONS_MAX: usize = 4096;
/// How deeply FQL pattern groups may nest.
pub const PATTERN_DEPTH_MAX: usize = 32;
/// The largest count of an FQL `{m,n}` multiplier.
pub const PATTERN_REPEAT_MAX: u32 = 255;

/// Which pattern language a LIKE pattern is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PatternDialect {
    /// WQL wildcards: `%`, `_`, `[...]`.
    Wql,
    /// CQL basic LIKE: `.`, `*`, `\`.
    Cql,
    /// FQL regular expressions (DSP1001 subset).
    Fql,
}

/// A compiled LIKE pattern. Two patterns are equal when their dialect and text are.
#[derive(Clone)]
pub struct Pattern {
    dialect: PatternDialect,
    source: String,
    program: Vec<Instruction>,
}

/// Why a pattern does not compile: what, and the byte offset in the pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatternError {
    /// What is wrong, in lowercase.
    pub message: String,
    /// The byte offset in the pattern text.
    pub position: usize,
}

impl Pattern {
    /// Compiles `source` in `dialect`.
    pub fn new(dialect: PatternDialect, source: &str) -> Result<Pattern, PatternError> {
        let node = match dialect {
            PatternDialect::Wql => parse_wql(source)?,
            PatternDialect::Cql => parse_cql(source)?,
            PatternDialect::Fql => RegexParser::new(source).parse()?,
        };
        let mut compiler = Compiler {
            program: Vec::new(),
            steps: 0,
        };
        compiler.compile(&node).map_err(|()| PatternError {
            message: format!("the pattern needs more than {PATTERN_INSTRUCTIONS_MAX} steps"),
            position: 0,
        })?;
        compiler
            .push(Instruction::Match)
            .map_err(|()| PatternError {
                message: format!("the pattern needs more than {PATTERN_INSTRUCTIONS_MAX} steps"),
                position: 0,
            })?;
        Ok(Pattern {
            dialect,
            source: source.to_owned(),
            program: compiler.program,
        })
    }

    /// The pattern as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Its dialect.
    pub fn dialect(&self) -> PatternDialect {
        self.dialect
    }

    /// True when the whole of `text` matches.
    pub fn is_match(&self, text: &str) -> bool {
        let program = &self.program;
        let length = text.chars().count();
        let mut current = ThreadList::new(program.len());
        let mut next = ThreadList::new(program.len());
        current.add(program, 0, 0, length);
        for (offset, c) in text.chars().enumerate() {
            if current.is_empty() {
                return false;
            }
            next.clear();
            for position in 0..current.dense.len() {
                let pc = current.dense[position];
                let step = match &program[pc] {
                    Instruction::Char(expected) => *expected == c,
                    Instruction::Any => true,
                    Instruction::Set(set) => set.contains(c),
                    _ => false,
                };
                if step {
                    next.add(program, pc + 1, offset + 1, length);
                }
            }
            std::mem::swap(&mut current, &mut next);
        }
        current
            .dense
            .iter()
            .any(|&pc| matches!(program[pc], Instruction::Match))
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.dialect == other.dialect && self.source == other.source
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pattern")
            .field("dialect", &self.dialect)
            .field("source", &self.source)
            .finish()
    }
}

// ---------------------------------------------------------------------------------------------
// The pattern tree shared by the dialects.

#[derive(Clone, Debug)]
enum Node {
    Empty,
    Char(char),
    Any,
    Set(CharSet),
    Concat(Vec<Node>),
    Alternate(Vec<Node>),
    Repeat {
        node: Box<Node>,
        min: u32,
        max: Option<u32>,
    },
    Start,
    End,
}

#[derive(Clone, Debug)]
struct CharSet {
    ranges: Vec<(char, char)>,
    negated: bool,
}

impl CharSet {
    fn contains(&self, c: char) -> bool {
        let inside = self.ranges.iter().any(|&(low, high)| low <= c && c <= high);
        inside != self.negated
    }
}

fn error(message: impl Into<String>, position: usize) -> PatternError {
    PatternError {
        message: message.into(),
        position,
    }
}

/// Parses the inside of a `[...]` set starting after the `[`; returns the set and the offset
/// after the `]`. `escapes` lets `\` quote the next character (FQL).
fn parse_set(source: &str, start: usize, escapes: bool) -> Result<(CharSet, usize), PatternError> {
    let mut chars = source[start..].char_indices().peekable();
    let mut ranges = Vec::new();
    let mut negated = false;
    if let Some(&(_, '^')) = chars.peek() {
        negated = true;
        chars.next();
    }
    let mut first = true;
    while let Some((offset, c)) = chars.next() {
        let position = start + offset;
        if c == ']' && !first {
            return Ok((CharSet { ranges, negated }, position + 1));
        }
        first = false;
        let low = if escapes && c == '\\' {
            match chars.next() {
                Some((_, escaped)) => escaped,
                None => return Err(error("the pattern ends after a backslash", position)),
            }
        } else {
            c
        };
        let mut high = low;
        let mut lookahead = chars.clone();
        if let (Some((_, '-')), Some((_, upper))) = (lookahead.next(), lookahead.next()) {
            if upper != ']' {
                if upper < low {
                    return Err(error("a set range runs backwards", position));
                }
                high = upper;
                chars = lookahead;
            }
        }
        ranges.push((low, high));
    }
    Err(error("a '[' set is not closed", start.saturating_sub(1)))
}

fn parse_wql(source: &str) -> Result<Node, PatternError> {
    let mut nodes = Vec::new();
    let mut position = 0;
    while let Some(c) = source[position..].chars().next() {
        match c {
            '%' => {
                nodes.push(Node::Repeat {
                    node: Box::new(Node::Any),
                    min: 0,
                    max: None,
                });
                position += 1;
            }
            '_' => {
                nodes.push(Node::Any);
                position += 1;
            }
            '[' => {
                let (set, after) = parse_set(source, position + 1, false)?;
                nodes.push(Node::Set(set));
                position = after;
            }
            other => {
                nodes.push(Node::Char(other));
                position += other.len_utf8();
            }
        }
    }
    Ok(Node::Concat(nodes))
}

fn parse_cql(source: &str) -> Result<Node, PatternError> {
    let mut nodes: Vec<Node> = Vec::new();
    let mut chars = source.char_indices();
    while let Some((position, c)) = chars.next() {
        match c {
            '.' => nodes.push(Node::Any),
            '*' => match nodes.pop() {
                Some(previous @ (Node::Char(_) | Node::Any)) => nodes.push(Node::Repeat {
                    node: Box::new(previous),
                    min: 0,
                    max: None,
                }),
                _ => return Err(error("'*' must follow a character", position)),
            },
            '\\' => match chars.next() {
                Some((_, escaped @ ('.' | '*' | '\\'))) => nodes.push(Node::Char(escaped)),
                _ => {
                    return Err(error(
                        "a backslash must be followed by '.', '*' or '\\'",
                        position,
                    ))
                }
            },
            other => nodes.push(Node::Char(other)),
        }
    }
    Ok(Node::Concat(nodes))
}

/// A recursive-descent parser of the FQL regular expression subset.
struct RegexParser<'a> {
    source: &'a str,
    position: usize,
    depth: usize,
}

impl<'a> RegexParser<'a> {
    fn new(source: &'a str) -> Self {
        RegexParser {
            source,
            position: 0,
            depth: 0,
        }
    }

    fn peek(&self) -> Option<char> {
        self.source[self.position..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.position += c.len_utf8();
        Some(c)
    }

    fn parse(mut self) -> Result<Node, PatternError> {
        let node = self.alternation()?;
        match self.peek() {
            None => Ok(node),
            Some(_) => Err(error("unbalanced ')' in the pattern", self.position)),
        }
    }

    fn alternation(&mut self) -> Result<Node, PatternError> {
        let mut choices = vec![self.concatenation()?];
        while self.peek() == Some('|') {
            self.bump();
            choices.push(self.concatenation()?);
        }
        Ok(if choices.len() == 1 {
            choices.pop().unwrap_or(Node::Empty)
        } else {
            Node::Alternate(choices)
        })
    }

    fn concatenation(&mut self) -> Result<Node, PatternError> {
        let mut items = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            let atom = self.atom()?;
            let atom = self.multipliers(atom)?;
            items.push(atom);
        }
        Ok(Node::Concat(items))
    }

    fn atom(&mut self) -> Result<Node, PatternError> {
        let start = self.position;
        let Some(c) = self.bump() else {
            return Ok(Node::Empty);
        };
        Ok(match c {
            '.' => Node::Any,
            '^' => Node::Start,
            '$' => Node::End,
            '[' => {
                let (mut set, after) = parse_set(self.source, self.position, true)?;
                self.position = after;
                // DSP1001 writes a negated choice as `[...]^`.
                if self.peek() == Some('^') {
                    self.bump();
                    set.negated = !set.negated;
                }
                Node::Set(set)
            }
            '(' => {
                self.depth += 1;
                if self.depth > PATTERN_DEPTH_MAX {
                    return Err(error(
                        format!("pattern groups nest deeper than {PATTERN_DEPTH_MAX}"),
                        start,
                    ));
                }
                let inner = self.alternation()?;
                if self.bump() != Some(')') {
                    return Err(error("a '(' group is not closed", start));
                }
                self.depth -= 1;
                inner
            }
            '\\' => match self.bump() {
                Some(escaped) => Node::Char(escaped),
                None => return Err(error("the pattern ends after a backslash", start)),
            },
            '*' | '+' | '?' | '{' => {
                return Err(error(format!("'{c}' must follow an item"), start));
            }
            ']' | '/' => return Err(error(format!("'{c}' must be escaped"), start)),
            other => Node::Char(other),
        })
    }

    fn multipliers(&mut self, mut atom: Node) -> Result<Node, PatternError> {
        loop {
            let start = self.position;
            let (min, max) = match self.peek() {
                Some('*') => (0, None),
                Some('+') => (1, None),
                Some('?') => (0, Some(1)),
                Some('{') => {
                    self.bump();
                    let (min, max) = self.counts(start)?;
                    atom = repeat(atom, min, max);
                    continue;
                }
                _ => return Ok(atom),
            };
            self.bump();
            atom = repeat(atom, min, max);
        }
    }

    /// Reads `m}`, `m,}` or `m,n}` after a `{`.
    fn counts(&mut self, start: usize) -> Result<(u32, Option<u32>), PatternError> {
        let min = self.number(start)?;
        let max = if self.peek() == Some(',') {
            self.bump();
            if self.peek() == Some('}') {
                None
            } else {
                Some(self.number(start)?)
            }
        } else {
            Some(min)
        };
        if self.bump() != Some('}') {
            return Err(error("a '{' multiplier is not closed", start));
        }
        if max.is_some_and(|max| max < min) {
            return Err(error("a multiplier's maximum is below its minimum", start));
        }
        Ok((min, max))
    }

    fn number(&mut self, start: usize) -> Result<u32, PatternError> {
        let digits_start = self.position;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
        }
        self.source[digits_start..self.position]
            .parse::<u32>()
            .ok()
            .filter(|&count| count <= PATTERN_REPEAT_MAX)
            .ok_or_else(|| {
                error(
                    format!("a multiplier needs a count from 0 to {PATTERN_REPEAT_MAX}"),
                    start,
                )
            })
    }
}

fn repeat(node: Node, min: u32, max: Option<u32>) -> Node {
    Node::Repeat {
        node: Box::new(node),
        min,
        max,
    }
}

// ---------------------------------------------------------------------------------------------
// The NFA.

#[derive(Clone, Debug)]
enum Instruction {
    Char(char),
    Any,
    Set(CharSet),
    /// Continue at both targets.
    Split(usize, usize),
    Jump(usize),
    /// Continue only at the start of the text.
    AssertStart,
    /// Continue only at the end of the text.
    AssertEnd,
    Match,
}

struct Compiler {
    program: Vec<Instruction>,
    /// Nodes compiled so far: bounds the work on patterns that compile to few instructions,
    /// such as `((){255}){255}`.
    steps: usize,
}

impl Compiler {
    fn push(&mut self, instruction: Instruction) -> Result<usize, ()> {
        if self.program.len() >= PATTERN_INSTRUCTIONS_MAX {
            return Err(());
        }
        self.program.push(instruction);
        Ok(self.program.len() - 1)
    }

    /// Compiles a node. Recursion follows the tree, whose depth the parsers bound.
    fn compile(&mut self, node: &Node) -> Result<(), ()> {
        self.steps += 1;
        if self.steps > PATTERN_INSTRUCTIONS_MAX * 4 {
            return Err(());
        }
        match node {
            Node::Empty => {}
            Node::Char(c) => {
                self.push(Instruction::Char(*c))?;
            }
            Node::Any => {
                self.push(Instruction::Any)?;
            }
            Node::Set(set) => {
                self.push(Instruction::Set(set.clone()))?;
            }
            Node::Start => {
                self.push(Instruction::AssertStart)?;
            }
            Node::End => {
                self.push(Instruction::AssertEnd)?;
            }
            Node::Concat(items) => {
                for item in items {
                    self.compile(item)?;
                }
            }
            Node::Alternate(choices) => self.alternate(choices)?,
            Node::Repeat { node, min, max } => self.repeat(node, *min, *max)?,
        }
        Ok(())
    }

    fn alternate(&mut self, choices: &[Node]) -> Result<(), ()> {
        let mut jumps = Vec::new();
        for (position, choice) in choices.iter().enumerate() {
            if position + 1 == choices.len() {
                self.compile(choice)?;
            } else {
                let split = self.push(Instruction::Split(0, 0))?;
                self.compile(choice)?;
                jumps.push(self.push(Instruction::Jump(0))?);
                let next = self.program.len();
                self.program[split] = Instruction::Split(split + 1, next);
            }
        }
        let end = self.program.len();
        for jump in jumps {
            self.program[jump] = Instruction::Jump(end);
        }
        Ok(())
    }

    fn repeat(&mut self, node: &Node, min: u32, max: Option<u32>) -> Result<(), ()> {
        for _ in 0..min {
            self.compile(node)?;
        }
        match max {
            None => {
                // loop: split(body, exit); body; jump loop
                let split = self.push(Instruction::Split(0, 0))?;
                self.compile(node)?;
                self.push(Instruction::Jump(split))?;
                let exit = self.program.len();
                self.program[split] = Instruction::Split(split + 1, exit);
            }
            Some(max) => {
                let mut splits = Vec::new();
                for _ in min..max {
                    splits.push(self.push(Instruction::Split(0, 0))?);
                    self.compile(node)?;
                }
                let exit = self.program.len();
                for split in splits {
                    self.program[split] = Instruction::Split(split + 1, exit);
                }
            }
        }
        Ok(())
    }
}

/// The set of NFA states alive at one text position (a sparse set: O(1) insert and clear).
struct ThreadList {
    dense: Vec<usize>,
    sparse: Vec<usize>,
    stack: Vec<usize>,
}

impl ThreadList {
    fn new(size: usize) -> Self {
        ThreadList {
            dense: Vec::with_capacity(size),
            sparse: vec![0; size],
            stack: Vec::new(),
        }
    }

    fn contains(&self, pc: usize) -> bool {
        let slot = self.sparse[pc];
        slot < self.dense.len() && self.dense[slot] == pc
    }

    fn is_empty(&self) -> bool {
        self.dense.is_empty()
    }

    fn clear(&mut self) {
        self.dense.clear();
    }

    /// Adds `pc` and every state reachable from it without consuming a character, at char
    /// offset `offset` of a text of `length` chars.
    fn add(&mut self, program: &[Instruction], pc: usize, offset: usize, length: usize) {
        self.stack.push(pc);
        while let Some(pc) = self.stack.pop() {
            if pc >= program.len() || self.contains(pc) {
                continue;
            }
            self.sparse[pc] = self.dense.len();
            self.dense.push(pc);
            match program[pc] {
                Instruction::Split(first, second) => {
                    self.stack.push(second);
                    self.stack.push(first);
                }
                Instruction::Jump(target) => self.stack.push(target),
                Instruction::AssertStart if offset == 0 => self.stack.push(pc + 1),
                Instruction::AssertEnd if offset == length => self.stack.push(pc + 1),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(dialect: PatternDialect, pattern: &str, text: &str) -> bool {
        Pattern::new(dialect, pattern).unwrap().is_match(text)
    }

    #[test]
    fn wql_wildcards() {
        use PatternDialect::Wql;
        assert!(matches(Wql, "pkg%", "pkg1"));
        assert!(matches(Wql, "pkg%", "pkg"));
        assert!(!matches(Wql, "pkg%", "xpkg"));
        assert!(matches(Wql, "%db%", "the dbpkg"));
        assert!(matches(Wql, "p_g", "pkg"));
        assert!(!matches(Wql, "p_g", "pg"));
        assert!(matches(Wql, "[a-c]x", "bx"));
        assert!(!matches(Wql, "[^a-c]x", "bx"));
        assert!(matches(Wql, "[%]", "%"));
        assert!(!matches(Wql, "Pkg", "pkg"));
        assert!(Pattern::new(Wql, "[ab").is_err());
    }

    #[test]
    fn cql_basic_like() {
        use PatternDialect::Cql;
        assert!(matches(Cql, "Test", "Test"));
        assert!(matches(Cql, "T...", "Test"));
        assert!(matches(Cql, ".est", "Test"));
        assert!(matches(Cql, ".*", ""));
        assert!(matches(Cql, "ab*c", "ac"));
        assert!(matches(Cql, "ab*c", "abbbc"));
        assert!(matches(Cql, "a\\.b", "a.b"));
        assert!(!matches(Cql, "a\\.b", "axb"));
        assert!(matches(Cql, "a\\*", "a*"));
        assert!(Pattern::new(Cql, "*a").is_err());
        assert!(Pattern::new(Cql, "a\\x").is_err());
    }

    #[test]
    fn fql_regular_expressions() {
        use PatternDialect::Fql;
        assert!(matches(Fql, "r[au]t", "rut"));
        assert!(matches(Fql, "r[au]^t", "ret"));
        assert!(!matches(Fql, "r[au]^t", "rat"));
        assert!(matches(Fql, "r[^au]t", "ret"));
        assert!(matches(Fql, "(XYZ)+", "XYZXYZ"));
        assert!(!matches(Fql, "(XYZ)+", ""));
        assert!(matches(Fql, "(DEF)?|GHI", ""));
        assert!(matches(Fql, "(DEF)?|GHI", "GHI"));
        assert!(matches(Fql, "1[.]{2,3}n", "1...n"));
        assert!(!matches(Fql, "1[.]{2,3}n", "1....n"));
        assert!(matches(Fql, "[EF]{1,2}", "FE"));
        assert!(matches(Fql, "^abc$", "abc"));
        assert!(!matches(Fql, "a^b", "ab"));
        assert!(matches(Fql, "C{2,}", "CCCC"));
        assert!(matches(Fql, "a\\.b", "a.b"));
        assert!(Pattern::new(Fql, "(ab").is_err());
        assert!(Pattern::new(Fql, "ab)").is_err());
        assert!(Pattern::new(Fql, "+a").is_err());
        assert!(Pattern::new(Fql, "a{3,1}").is_err());
        assert!(Pattern::new(Fql, "a{999}").is_err());
    }

    #[test]
    fn pathological_patterns_stay_linear_and_bounded() {
        use PatternDialect::Fql;
        let text = "a".repeat(5000);
        assert!(!matches(Fql, "(a*)*b", &text));
        assert!(matches(Fql, "(a|aa)*", &text));
        assert!(Pattern::new(Fql, "((((a{255}){255}){255}){255})").is_err());
        let deep = format!("{}a{}", "(".repeat(100), ")".repeat(100));
        assert!(Pattern::new(Fql, &deep).is_err());
        assert!(matches(Fql, "(()*)*x", "x"));
        assert!(Pattern::new(Fql, "((((){255}){255}){255}){255}").is_err());
    }
}
