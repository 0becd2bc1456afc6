//! Case-insensitive CIM names that keep their spelling.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// A CIM element name (class, property, method, parameter, qualifier, namespace segment).
///
/// DSP0004 makes names case-insensitive: `CIM_System` and `cim_system` are the same class. A
/// `Name` compares, hashes and orders without regard to case but keeps the spelling it was
/// created with, which is the spelling shown to clients.
///
/// The spelling is shared: instances are copied and reshaped for every response, and copying
/// a name is then a reference count, not an allocation.
#[derive(Clone)]
pub struct Name(Arc<str>);

impl Name {
    /// A name with the given spelling.
    pub fn new(spelling: impl Into<Arc<str>>) -> Self {
        Name(spelling.into())
    }

    /// The spelling the name was created with.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when `other` names the same thing (case-insensitively).
    pub fn matches(&self, other: &str) -> bool {
        eq_ignore_case(&self.0, other)
    }
}

/// Compares two names the way DSP0004 does: without regard to case.
pub fn eq_ignore_case(a: &str, b: &str) -> bool {
    // Names are compared on every lookup of a request (parameters, classes, properties), and
    // most are ASCII that is spelt alike or differs early: one pass over the bytes decides
    // those. Up to the first pair of bytes that differ beyond ASCII case, both strings hold
    // the same characters, so the pair starts a character in each; if both are ASCII, the
    // folded forms differ there. With no such pair and different lengths, the longer string
    // has more characters, each folding to at least one. Only a difference involving a
    // non-ASCII byte needs the Unicode fold.
    let (x, y) = (a.as_bytes(), b.as_bytes());
    if x == y {
        return true;
    }
    for (&p, &q) in x.iter().zip(y) {
        if !p.eq_ignore_ascii_case(&q) {
            return !(p.is_ascii() && q.is_ascii()) && eq_folded(a, b);
        }
    }
    x.len() == y.len()
}

/// [`eq_ignore_case`] by the Unicode lower-case fold of every character.
fn eq_folded(a: &str, b: &str) -> bool {
    folded(a).eq(folded(b))
}

fn folded(s: &str) -> impl Iterator<Item = char> + '_ {
    s.chars().flat_map(char::to_lowercase)
}

impl PartialEq for Name {
    fn eq(&self, other: &Self) -> bool {
        eq_ignore_case(&self.0, &other.0)
    }
}

impl Eq for Name {}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        eq_ignore_case(&self.0, other)
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        eq_ignore_case(&self.0, other)
    }
}

impl Hash for Name {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_folded(&self.0, state);
    }
}

impl Ord for Name {
    fn cmp(&self, other: &Self) -> Ordering {
        folded(&self.0).cmp(folded(&other.0))
    }
}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Name {
    fn from(s: &str) -> Self {
        Name::new(s)
    }
}

impl From<String> for Name {
    fn from(s: String) -> Self {
        Name::new(s)
    }
}

impl From<&Name> for Arc<str> {
    /// The shared spelling: a reference count, not a copy.
    fn from(name: &Name) -> Self {
        name.0.clone()
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A borrowed, case-insensitive key for looking a [`Name`] up in an `IndexMap<Name, _>` without
/// allocating: `map.get(&NameKey("cim_system"))`.
#[derive(Debug, Clone, Copy)]
pub struct NameKey<'a>(pub &'a str);

impl Hash for NameKey<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_folded(self.0, state);
    }
}

impl indexmap::Equivalent<Name> for NameKey<'_> {
    fn equivalent(&self, key: &Name) -> bool {
        eq_ignore_case(self.0, &key.0)
    }
}

fn hash_folded<H: Hasher>(s: &str, state: &mut H) {
    // The folded form goes to the hasher in one `write`, so that equal names feed any hasher
    // the same bytes however they are spelt. Most names are short ASCII: fold those on the
    // stack; anything else folds char by char (an ASCII char folds to the same byte either way).
    const STACK_BYTES: usize = 64;
    if s.is_ascii() && s.len() <= STACK_BYTES {
        let mut buffer = [0u8; STACK_BYTES];
        for (slot, byte) in buffer.iter_mut().zip(s.bytes()) {
            *slot = byte.to_ascii_lowercase();
        }
        state.write(&buffer[..s.len()]);
    } else {
        let folded: String = folded(s).collect();
        state.write(folded.as_bytes());
    }
    state.write_u8(0xff);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::hash_map::DefaultHasher;

    fn hash_of(n: &Name) -> u64 {
        let mut h = DefaultHasher::new();
        n.hash(&mut h);
        h.finish()
    }

    #[test]
    fn names_compare_without_case_and_keep_spelling() {
        let a = Name::new("CIM_ComputerSystem");
        let b = Name::new("cim_computersystem");
        assert_eq!(a, b);
        assert_eq!(hash_of(&a), hash_of(&b));
        assert_eq!(a.as_str(), "CIM_ComputerSystem");
        assert_ne!(a, Name::new("CIM_System"));
        assert!(a.matches("CIM_COMPUTERSYSTEM"));
        let mut map = indexmap::IndexMap::new();
        map.insert(a, 1);
        assert_eq!(map.get(&NameKey("CIM_COMPUTERSYSTEM")), Some(&1));
    }

    #[test]
    fn non_ascii_names_fold() {
        assert_eq!(Name::new("Ärger"), Name::new("äRGER"));
        // KELVIN SIGN folds to an ASCII k: the lengths differ, the names do not.
        assert!(eq_ignore_case("\u{212A}elvin", "kelvin"));
        assert!(eq_ignore_case("kelvin", "\u{212A}ELVIN"));
        assert!(!eq_ignore_case("\u{212A}elvin", "kelvins"));
    }

    #[test]
    fn the_fast_comparison_agrees_with_the_unicode_fold() {
        let words = [
            "",
            "a",
            "A",
            "ab",
            "aB",
            "abc",
            "Ab",
            "b",
            "CIM_System",
            "cim_system",
            "CIM_Systems",
            "ä",
            "Ä",
            "äa",
            "ÄA",
            "aä",
            "Aä",
            "\u{212A}",
            "k",
            "K",
            "ß",
            "SS",
            "ss",
            "ẞ",
            "\u{130}",
            "i\u{307}",
            "I",
            "é",
            "É",
            "e\u{301}",
        ];
        for a in words {
            for b in words {
                assert_eq!(eq_ignore_case(a, b), eq_folded(a, b), "{a:?} {b:?}");
            }
        }
    }
}
