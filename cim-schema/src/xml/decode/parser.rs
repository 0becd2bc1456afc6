//! A pull parser over quick-xml events that knows the element nesting, enforces the
//! [`Limits`], and refuses what CIM-XML has no use for (DOCTYPE, processing instructions,
//! characters XML 1.0 forbids). Element decoders call [`Parser::child`] and [`Parser::text`].

use std::borrow::Cow;

use quick_xml::events::attributes::Attributes;
use quick_xml::events::Event;
use quick_xml::Reader;

use crate::xml::error::{DecodeError, Limit, Location};
use crate::xml::limits::Limits;
use crate::xml::text::is_xml_char;

/// Decoding results.
pub(crate) type Result<T> = std::result::Result<T, DecodeError>;

/// The most attributes one element may have; no DSP0201 element has more than ten.
const ATTRIBUTES_MAX: usize = 16;

/// An element whose start tag was just read.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Element<'a> {
    /// The element name as written (element names are case-sensitive in XML).
    pub name: &'a [u8],
    /// The start tag without `<` and `>`: the name, then the attributes.
    source: &'a str,
}

impl Element<'_> {
    /// The name for messages.
    pub fn name_str(&self) -> &str {
        std::str::from_utf8(self.name).unwrap_or("?")
    }
}

/// The parser state for one document or one embedded object.
pub(crate) struct Parser<'a> {
    reader: Reader<&'a [u8]>,
    /// The input the reader reads (after any BOM), validated as UTF-8 once so that tags can
    /// be sliced out of it as `&str` without checking again.
    body: &'a str,
    /// Added to reader positions: the BOM skipped.
    base_offset: usize,
    pub limits: Limits,
    /// The open elements, outermost first.
    open: Vec<&'a [u8]>,
    /// Elements seen so far, including those of the enclosing documents of an embedded object.
    pub elements: usize,
    /// How many embedded objects enclose this one.
    pub embedded_depth: usize,
    /// Offset where the last event started.
    event_start: usize,
    /// True when [`Parser::text`] read an end tag whose element is still on `open`, so that
    /// an error about the text names the element; it is popped at the next event.
    pending_close: bool,
    /// How many properties the last decoded instance had (see [`Parser::instance`]).
    pub properties_hint: usize,
}

impl<'a> Parser<'a> {
    /// A parser over a whole input: checks its size, encoding and characters first.
    pub fn new(input: &'a [u8], limits: Limits) -> Result<Parser<'a>> {
        let location = |offset| Location {
            offset,
            path: String::new(),
        };
        if input.len() > limits.input_bytes_max {
            return Err(DecodeError::LimitExceeded {
                limit: Limit::InputBytes,
                at: location(limits.input_bytes_max),
            });
        }
        let (base_offset, body) = match input.strip_prefix(b"\xEF\xBB\xBF") {
            Some(rest) => (3, rest),
            None => (0, input),
        };
        let body = match std::str::from_utf8(body) {
            Ok(body) => body,
            Err(error) => {
                return Err(DecodeError::NotWellFormed {
                    reason: "invalid utf-8".to_owned(),
                    at: location(base_offset + error.valid_up_to()),
                })
            }
        };
        if let Some(offset) = forbidden_character(body.as_bytes()) {
            return Err(DecodeError::NotWellFormed {
                reason: "a character xml 1.0 does not allow".to_owned(),
                at: location(base_offset + offset),
            });
        }
        let mut reader = Reader::from_reader(body.as_bytes());
        let config = reader.config_mut();
        config.expand_empty_elements = true;
        // quick-xml checks each end tag against its start tag; `check_end` checks the same
        // against `open`, so that a mismatch is reported with the element path.
        config.check_end_names = true;
        config.trim_text(false);
        Ok(Parser {
            reader,
            body,
            base_offset,
            limits,
            open: Vec::with_capacity(16),
            elements: 0,
            embedded_depth: 0,
            event_start: base_offset,
            pending_close: false,
            properties_hint: 0,
        })
    }

    /// Where the parser is: the last event's offset and the open elements.
    pub fn location(&self) -> Location {
        let mut path = String::new();
        for (index, name) in self.open.iter().enumerate() {
            if index > 0 {
                path.push('/');
            }
            path.push_str(&String::from_utf8_lossy(name));
        }
        Location {
            offset: self.event_start,
            path,
        }
    }

    /// A [`DecodeError::NotValid`] here.
    pub fn not_valid(&self, reason: impl Into<String>) -> DecodeError {
        DecodeError::NotValid {
            reason: reason.into(),
            at: self.location(),
        }
    }

    /// A [`DecodeError::NotWellFormed`] here.
    pub fn not_well_formed(&self, reason: impl Into<String>) -> DecodeError {
        DecodeError::NotWellFormed {
            reason: reason.into(),
            at: self.location(),
        }
    }

    /// A [`DecodeError::LimitExceeded`] here.
    pub fn limit(&self, limit: Limit) -> DecodeError {
        DecodeError::LimitExceeded {
            limit,
            at: self.location(),
        }
    }

    /// "unexpected element X in Y" for a child that was just opened.
    pub fn unexpected(&self, child: &Element<'_>) -> DecodeError {
        let parent = self
            .open
            .len()
            .checked_sub(2)
            .and_then(|i| self.open.get(i))
            .map_or(Cow::Borrowed("the document"), |name| {
                String::from_utf8_lossy(name)
            });
        self.not_valid(format!(
            "unexpected element {} in {parent}",
            child.name_str()
        ))
    }

    fn event(&mut self) -> Result<Event<'a>> {
        if self.pending_close {
            self.pending_close = false;
            self.open.pop();
        }
        self.event_start = self.base_offset + position(&self.reader);
        match self.reader.read_event() {
            Ok(event) => Ok(event),
            Err(error) => {
                self.event_start = self.base_offset + position(&self.reader);
                Err(self.not_well_formed(error.to_string()))
            }
        }
    }

    /// Opens an element whose start tag was read.
    fn open(&mut self, start: &quick_xml::events::BytesStart<'a>) -> Result<Element<'a>> {
        self.elements += 1;
        if self.elements > self.limits.elements_max {
            return Err(self.limit(Limit::Elements));
        }
        if self.open.len() >= self.limits.depth_max {
            return Err(self.limit(Limit::Depth));
        }
        let name_len = start.name().as_ref().len();
        // `BytesStart` cannot give back its borrow of the input, so take the same bytes from
        // the input: the tag content starts right after the `<` at the event's offset.
        let begin = self.event_start - self.base_offset + 1;
        // `<` and the `>` or `/` after the tag are ASCII, so the slice is on character
        // boundaries (`get` checks that anyway) and needs no new UTF-8 validation.
        let source = begin
            .checked_add(start.len())
            .and_then(|end| self.body.get(begin..end))
            .filter(|tag| std::ptr::eq(tag.as_ptr(), start.as_ptr()))
            .ok_or_else(|| self.not_well_formed("unexpected tag layout"))?;
        // The tag starts with its name, so the name fits; `get` keeps a broken assumption an
        // error, not a panic.
        let name = source
            .as_bytes()
            .get(..name_len)
            .ok_or_else(|| self.not_well_formed("unexpected tag layout"))?;
        if !is_xml_name(name) {
            return Err(self.not_well_formed(format!(
                "{:?} is not an xml element name",
                String::from_utf8_lossy(name)
            )));
        }
        let element = Element { name, source };
        self.open.push(element.name);
        Ok(element)
    }

    /// Reads the whole input again for its XML syntax alone, from a fresh parser: the first
    /// well-formedness error, or `None` when the document is well-formed (or too large to
    /// tell within the limits). A decoder stops at the first error it meets, and a document
    /// cut short can fail as not valid (an attribute missing from the last tag) before its end
    /// shows it is not well-formed; DSP0200 wants `request-not-well-formed` then.
    pub fn well_formedness_error(input: &'a [u8], limits: Limits) -> Option<DecodeError> {
        let mut parser = match Parser::new(input, limits) {
            Ok(parser) => parser,
            Err(error @ DecodeError::NotWellFormed { .. }) => return Some(error),
            Err(_) => return None,
        };
        let mut roots = 0;
        loop {
            let event = match parser.event() {
                Ok(event) => event,
                Err(error @ DecodeError::NotWellFormed { .. }) => return Some(error),
                Err(_) => return None,
            };
            let at_top = parser.open.is_empty();
            let result = match event {
                Event::Start(start) => {
                    roots += usize::from(at_top);
                    parser
                        .open(&start)
                        .and_then(|element| parser.check_attributes(&element))
                }
                Event::Empty(start) => {
                    roots += usize::from(at_top);
                    parser.open(&start).and_then(|element| {
                        parser.open.pop();
                        parser.check_attributes(&element)
                    })
                }
                Event::End(end) => parser.close(end.name().as_ref()),
                Event::Text(text) if at_top && !is_whitespace(&text) => {
                    Err(parser.not_well_formed("content outside the root element"))
                }
                Event::Text(text) => parser
                    .input_str(&text)
                    .and_then(|raw| parser.unescape(raw))
                    .map(|_| ()),
                Event::CData(_) if at_top => {
                    Err(parser.not_well_formed("content outside the root element"))
                }
                // What the decoder refuses wherever it stands, as it does.
                Event::DocType(_) | Event::PI(_) => Err(parser.misplaced(&event)),
                Event::Decl(_) if parser.event_start > parser.base_offset => {
                    Err(parser.misplaced(&event))
                }
                Event::Eof if !parser.open.is_empty() => {
                    Err(parser.not_well_formed("unexpected end of input: elements left open"))
                }
                Event::Eof if roots == 0 => Err(parser.not_well_formed("no root element")),
                Event::Eof => return None,
                _ => Ok(()),
            };
            match result {
                Ok(()) if roots > 1 => {
                    return Some(parser.not_well_formed("more than one root element"))
                }
                Ok(()) => {}
                Err(error @ DecodeError::NotWellFormed { .. }) => return Some(error),
                Err(_) => return None,
            }
        }
    }

    /// Reads up to the root element and opens it.
    pub fn root(&mut self) -> Result<Element<'a>> {
        let mut first = true;
        let mut first_doctype = true;
        loop {
            match self.event()? {
                Event::Decl(declaration) if first => self.check_declaration(&declaration)?,
                Event::Text(text) if is_whitespace(&text) => {}
                Event::Comment(_) => {}
                Event::Start(start) => return self.open(&start),
                // A document type naming the CIM DTD by its external identifier only, as
                // some generators write (`<!DOCTYPE CIM SYSTEM "CIM_DTD_V20.dtd">`), declares
                // nothing here: it is skipped, and the DTD is never read. An internal subset
                // (entity declarations) is refused before anything it declares is used.
                Event::DocType(doctype) if first_doctype && !doctype.contains(&b'[') => {
                    first_doctype = false;
                }
                Event::DocType(_) => return Err(self.not_well_formed("doctype is not accepted")),
                Event::PI(_) => {
                    return Err(self.not_well_formed("processing instructions are not accepted"))
                }
                Event::Decl(_) => return Err(self.not_well_formed("misplaced xml declaration")),
                Event::Eof => return Err(self.not_well_formed("no root element")),
                Event::Text(_) | Event::CData(_) | Event::End(_) | Event::Empty(_) => {
                    return Err(self.not_well_formed("content outside the root element"))
                }
            }
            first = false;
        }
    }

    fn check_declaration(&self, declaration: &quick_xml::events::BytesDecl<'_>) -> Result<()> {
        let version = declaration
            .version()
            .map_err(|e| self.not_well_formed(e.to_string()))?;
        if !version.starts_with(b"1.") {
            return Err(self.not_well_formed("only xml 1.x is accepted"));
        }
        if let Some(encoding) = declaration.encoding() {
            let encoding = encoding.map_err(|e| self.not_well_formed(e.to_string()))?;
            if !encoding.eq_ignore_ascii_case(b"utf-8") {
                return Err(self.not_well_formed("only utf-8 is accepted"));
            }
        }
        Ok(())
    }

    /// The input text that `bytes`, a slice quick-xml handed out, covers: the input was
    /// validated as UTF-8 once, so slicing it again avoids validating each piece anew.
    fn input_str(&self, bytes: &[u8]) -> Result<&'a str> {
        let begin = (bytes.as_ptr() as usize).wrapping_sub(self.body.as_ptr() as usize);
        begin
            .checked_add(bytes.len())
            .and_then(|end| self.body.get(begin..end))
            .filter(|text| std::ptr::eq(text.as_ptr(), bytes.as_ptr()))
            .ok_or_else(|| self.not_well_formed("unexpected text layout"))
    }

    /// Resolves the predefined entities and character references of `raw`; unknown
    /// entities and references to characters XML 1.0 forbids are not well-formed.
    fn unescape(&self, raw: &'a str) -> Result<Cow<'a, str>> {
        if !raw.as_bytes().contains(&b'&') {
            return Ok(Cow::Borrowed(raw));
        }
        let unescaped =
            quick_xml::escape::unescape(raw).map_err(|e| self.not_well_formed(e.to_string()))?;
        if !unescaped.chars().all(is_xml_char) {
            return Err(self.not_well_formed("a character reference xml 1.0 does not allow"));
        }
        Ok(unescaped)
    }

    /// After the root element closed: only whitespace and comments may follow.
    pub fn end_document(&mut self) -> Result<()> {
        loop {
            match self.event()? {
                Event::Eof => return Ok(()),
                Event::Text(text) if is_whitespace(&text) => {}
                Event::Comment(_) => {}
                _ => return Err(self.not_well_formed("content after the root element")),
            }
        }
    }

    /// The next child element of the innermost open element, or `None` once that element's
    /// end tag is read (it is then closed). Whitespace and comments between children are
    /// skipped; other text is not valid.
    pub fn child(&mut self) -> Result<Option<Element<'a>>> {
        loop {
            match self.event()? {
                Event::Start(start) => return self.open(&start).map(Some),
                Event::End(end) => {
                    self.close(end.name().as_ref())?;
                    return Ok(None);
                }
                Event::Text(text) if is_whitespace(&text) => {}
                Event::Comment(_) => {}
                Event::Text(_) | Event::CData(_) => {
                    return Err(self.not_valid("unexpected text between elements"))
                }
                other => return Err(self.misplaced(&other)),
            }
        }
    }

    /// Checks that the end tag `name` closes the innermost open element.
    fn check_end(&self, name: &[u8]) -> Result<()> {
        match self.open.last() {
            Some(open) if *open == name => Ok(()),
            Some(open) => Err(self.not_well_formed(format!(
                "end tag {} does not match start tag {}",
                String::from_utf8_lossy(name),
                String::from_utf8_lossy(open)
            ))),
            None => Err(self.not_well_formed(format!(
                "end tag {} with no open element",
                String::from_utf8_lossy(name)
            ))),
        }
    }

    /// Closes the innermost open element with the end tag `name`.
    fn close(&mut self, name: &[u8]) -> Result<()> {
        self.check_end(name)?;
        self.open.pop();
        Ok(())
    }

    fn misplaced(&self, event: &Event<'_>) -> DecodeError {
        match event {
            Event::DocType(_) => self.not_well_formed("doctype is not accepted"),
            Event::PI(_) => self.not_well_formed("processing instructions are not accepted"),
            Event::Decl(_) => self.not_well_formed("misplaced xml declaration"),
            Event::Eof => self.not_well_formed("unexpected end of input"),
            _ => self.not_well_formed("unexpected markup"),
        }
    }

    /// Closes the innermost open element, which must have no child elements (whitespace and
    /// comments are allowed).
    pub fn end_empty(&mut self) -> Result<()> {
        match self.child()? {
            None => Ok(()),
            Some(child) => Err(self.unexpected(&child)),
        }
    }

    /// The next child, which must exist.
    pub fn required_child(&mut self, what: &str) -> Result<Element<'a>> {
        match self.child()? {
            Some(child) => Ok(child),
            None => Err(self.not_valid(format!("missing {what}"))),
        }
    }

    /// The text content of the innermost open element (unescaped, CDATA included), which
    /// it then closes. Child elements are not valid.
    pub fn text(&mut self) -> Result<Cow<'a, str>> {
        let mut content: Cow<'a, str> = Cow::Borrowed("");
        let mut raw_len = 0usize;
        loop {
            let piece: Cow<'a, str> = match self.event()? {
                Event::Text(text) => {
                    raw_len += text.len();
                    self.check_text_len(raw_len)?;
                    let raw = self.input_str(&text)?;
                    self.unescape(raw)?
                }
                Event::CData(data) => {
                    raw_len += data.len();
                    self.check_text_len(raw_len)?;
                    match data.into_inner() {
                        Cow::Borrowed(bytes) => Cow::Borrowed(
                            std::str::from_utf8(bytes)
                                .map_err(|_| self.not_well_formed("invalid utf-8"))?,
                        ),
                        Cow::Owned(bytes) => Cow::Owned(
                            String::from_utf8(bytes)
                                .map_err(|_| self.not_well_formed("invalid utf-8"))?,
                        ),
                    }
                }
                Event::Comment(_) => continue,
                Event::End(end) => {
                    self.check_end(end.name().as_ref())?;
                    self.pending_close = true;
                    return Ok(content);
                }
                Event::Start(start) => {
                    let child = self.open(&start)?;
                    return Err(self.not_valid(format!(
                        "element {} where only text is allowed",
                        child.name_str()
                    )));
                }
                other => return Err(self.misplaced(&other)),
            };
            if content.is_empty() {
                content = piece;
            } else {
                content.to_mut().push_str(&piece);
            }
        }
    }

    fn check_text_len(&self, len: usize) -> Result<()> {
        if len > self.limits.text_bytes_max {
            Err(self.limit(Limit::TextBytes))
        } else {
            Ok(())
        }
    }

    /// The values of the attributes named in `names` (case-sensitive, as XML is), unescaped;
    /// `None` for absent ones. Other attributes are ignored. Duplicates are not well-formed.
    pub fn attributes<const N: usize>(
        &self,
        element: &Element<'a>,
        names: [&[u8]; N],
    ) -> Result<[Option<Cow<'a, str>>; N]> {
        let mut values: [Option<Cow<'a, str>>; N] = std::array::from_fn(|_| None);
        let mut seen: [&[u8]; ATTRIBUTES_MAX] = [b""; ATTRIBUTES_MAX];
        let mut attributes = Attributes::new(element.source, element.name.len());
        attributes.with_checks(false);
        for (count, attribute) in attributes.enumerate() {
            let attribute = attribute.map_err(|e| self.not_well_formed(e.to_string()))?;
            let key = attribute.key.into_inner();
            if count >= ATTRIBUTES_MAX {
                return Err(self.not_valid("too many attributes"));
            }
            if seen[..count].contains(&key) {
                return Err(self.not_well_formed(format!(
                    "duplicate attribute {}",
                    String::from_utf8_lossy(key)
                )));
            }
            seen[count] = key;
            if !is_xml_name(key) {
                return Err(self.not_well_formed(format!(
                    "{:?} is not an xml attribute name",
                    String::from_utf8_lossy(key)
                )));
            }
            if attribute.value.len() > self.limits.attribute_bytes_max {
                return Err(self.limit(Limit::AttributeBytes));
            }
            if attribute.value.contains(&b'<') {
                return Err(self.not_well_formed(format!(
                    "a < in the value of attribute {}",
                    String::from_utf8_lossy(key)
                )));
            }
            let Some(slot) = names.iter().position(|name| *name == key) else {
                continue;
            };
            let raw = self.input_str(&attribute.value)?;
            values[slot] = Some(self.unescape(raw)?);
        }
        Ok(values)
    }

    /// Checks every attribute of `element` as [`Parser::attributes`] checks those it reads:
    /// syntax, names, duplicates, and the references in their values.
    fn check_attributes(&self, element: &Element<'a>) -> Result<()> {
        self.attributes(element, [])?;
        let mut attributes = Attributes::new(element.source, element.name.len());
        attributes.with_checks(false);
        for attribute in attributes {
            let attribute = attribute.map_err(|e| self.not_well_formed(e.to_string()))?;
            self.unescape(self.input_str(&attribute.value)?)?;
        }
        Ok(())
    }

    /// An attribute that must be present.
    pub fn required(
        &self,
        value: Option<Cow<'a, str>>,
        element: &Element<'_>,
        attribute: &str,
    ) -> Result<Cow<'a, str>> {
        value.ok_or_else(|| {
            self.not_valid(format!(
                "{} has no {attribute} attribute",
                element.name_str()
            ))
        })
    }

    /// A boolean attribute (`true`/`false`, any case), or `default` when absent.
    pub fn flag(&self, value: Option<&str>, attribute: &str, default: bool) -> Result<bool> {
        match value {
            None => Ok(default),
            Some(text) if text.eq_ignore_ascii_case("true") => Ok(true),
            Some(text) if text.eq_ignore_ascii_case("false") => Ok(false),
            Some(text) => Err(self.not_valid(format!("{attribute}={text:?} is not true or false"))),
        }
    }
}

fn position(reader: &Reader<&[u8]>) -> usize {
    usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX)
}

/// Whether `name` is an XML 1.0 name as far as ASCII goes: a letter, `_` or `:` first, then
/// also digits, `-` and `.`. Non-ASCII characters pass: CIM-XML names are ASCII, and the
/// ranges XML allows beyond it are wide (quick-xml checks no name at all).
fn is_xml_name(name: &[u8]) -> bool {
    let start = |b: u8| b.is_ascii_alphabetic() || b == b'_' || b == b':' || b >= 0x80;
    let Some((&first, rest)) = name.split_first() else {
        return false;
    };
    start(first)
        && rest
            .iter()
            .all(|&b| start(b) || b.is_ascii_digit() || b == b'-' || b == b'.')
}

fn is_whitespace(text: &[u8]) -> bool {
    text.iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}

/// The offset of the first character XML 1.0 forbids in (valid UTF-8) `input`: C0 controls
/// other than TAB, LF, CR; U+FFFE and U+FFFF.
fn forbidden_character(input: &[u8]) -> Option<usize> {
    /// Bytes checked at once: a branch-free test per block lets the compiler vectorise the
    /// common case of a block with nothing suspicious (TAB/LF/CR are suspicious here too, so
    /// indented input takes the slower per-byte look at those blocks only).
    const BLOCK: usize = 32;
    let suspicious = |byte: u8| byte < 0x20 || byte == 0xEF;
    let mut start = 0;
    for block in input.chunks(BLOCK) {
        if block
            .iter()
            .fold(false, |any, &byte| any | suspicious(byte))
        {
            for index in start..start + block.len() {
                let forbidden = match input[index] {
                    b'\t' | b'\n' | b'\r' => false,
                    0..=0x1F => true,
                    // U+FFFE and U+FFFF are EF BF BE and EF BF BF.
                    0xEF => {
                        input.get(index + 1) == Some(&0xBF)
                            && matches!(input.get(index + 2), Some(0xBE | 0xBF))
                    }
                    _ => false,
                };
                if forbidden {
                    return Some(index);
                }
            }
        }
        start += block.len();
    }
    None
}
