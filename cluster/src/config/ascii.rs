//! The line format of Serviceguard's ASCII configuration files: one `PARAMETER value` per line,
//! `#` comments on lines of their own, blank lines, values optionally in double quotes.
//! Parameter names are case-insensitive (cluster files write them in upper case, modular
//! package files in lower case); they are returned in upper case.

use super::Findings;

/// One `PARAMETER value` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The line number (1-based).
    pub line: usize,
    /// The parameter, in upper case.
    pub parameter: String,
    /// The value: the rest of the line, trimmed, without surrounding double quotes.
    pub value: String,
}

/// The longest line read; longer lines are errors (a generated file never has one).
pub const LINE_BYTES_MAX: usize = 4096;

/// The entries of `text`; malformed lines are reported to `findings` and skipped.
pub(crate) fn entries(text: &str, findings: &mut Findings) -> Vec<Entry> {
    let mut entries = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if raw.len() > LINE_BYTES_MAX {
            findings.add(
                super::Severity::Error,
                line,
                None,
                format!("line longer than {LINE_BYTES_MAX} bytes"),
            );
            continue;
        }
        let (name, rest) = trimmed
            .split_once(|c: char| c.is_ascii_whitespace())
            .unwrap_or((trimmed, ""));
        let valid_name = name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid_name {
            findings.add(
                super::Severity::Error,
                line,
                None,
                format!("{name:?} is not a parameter name"),
            );
            continue;
        }
        let parameter = name.to_ascii_uppercase();
        let value = rest.trim();
        let value = match value.strip_prefix('"') {
            Some(inner) => match inner.strip_suffix('"') {
                Some(inner) => inner,
                None => {
                    findings.error(line, &parameter, "unterminated quoted value");
                    continue;
                }
            },
            None => value,
        };
        if value.is_empty() {
            findings.error(line, &parameter, "no value");
            continue;
        }
        entries.push(Entry {
            line,
            parameter,
            value: value.to_owned(),
        });
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_comments_quotes_and_case() {
        let mut findings = Findings::new("t");
        let text =
            "# comment\n\nCLUSTER_NAME  prod\n  node_name \"node 1\"\nX\nBAD-NAME 1\nQ \"open\n";
        let entries = entries(text, &mut findings);
        assert_eq!(
            entries,
            vec![
                Entry {
                    line: 3,
                    parameter: "CLUSTER_NAME".into(),
                    value: "prod".into()
                },
                Entry {
                    line: 4,
                    parameter: "NODE_NAME".into(),
                    value: "node 1".into()
                },
            ]
        );
        let lines: Vec<usize> = findings.list.iter().map(|d| d.line).collect();
        assert_eq!(lines, vec![5, 6, 7]);
    }
}
