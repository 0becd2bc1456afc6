//! The audit log: one JSON object per line for every operation a principal attempts, appended to
//! a file of mode 0600 and written through to the operating system per entry (not fsynced:
//! a power loss may lose the last entries, a crash of the server does not).
//!
//! ```text
//! {"time":"2025-01-02T03:04:05.678Z","principal":"alice","peer":"127.0.0.1","operation":"DeleteInstance","target":"root/cimv2:CG_Package.Name=\"pkg1\"","outcome":"ok"}
//! {"time":"2025-01-02T03:04:06.000Z","principal":"mon","peer":"::1","operation":"InvokeMethod","target":"root/cimv2:CG_Package.Name=\"pkg1\"","outcome":"error","code":2,"description":"access denied"}
//! ```
//!
//! What is audited (state changes only, or reads too) is the server's choice.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

/// An append-only audit log file, shared by all connections (`Send + Sync`).
#[derive(Debug)]
pub struct AuditLog {
    file: Mutex<File>,
}

/// One audited operation.
#[derive(Clone, Debug)]
pub struct AuditEntry<'a> {
    /// When the operation finished (written as RFC 3339 UTC, in milliseconds).
    pub time: SystemTime,
    /// The principal's name (the server picks a marker such as `-` for unauthenticated requests).
    pub principal: &'a str,
    /// The peer's address.
    pub peer: IpAddr,
    /// The operation, as DSP0200 names it (`DeleteInstance`, `InvokeMethod`, ...).
    pub operation: &'a str,
    /// What it applied to: the namespace and the object path, as text.
    pub target: &'a str,
    /// How it ended.
    pub outcome: AuditOutcome<'a>,
}

/// How an audited operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditOutcome<'a> {
    /// It succeeded.
    Ok,
    /// It failed with a CIM status code.
    Error {
        /// The CIM status code (`CIM_ERR_ACCESS_DENIED` is 2).
        code: u32,
        /// The description sent to the client.
        description: &'a str,
    },
}

impl AuditLog {
    /// Opens `path` for appending, creating it with mode 0600 (an existing file keeps its mode).
    pub fn open(path: &Path) -> io::Result<AuditLog> {
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)?;
        Ok(AuditLog {
            file: Mutex::new(file),
        })
    }

    /// Appends `entry` as one line, in one write.
    pub fn record(&self, entry: &AuditEntry<'_>) -> io::Result<()> {
        let line = entry.to_json_line();
        // A panic while holding the lock cannot leave a part of a line: each line is one write.
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        file.write_all(line.as_bytes())
    }
}

impl AuditEntry<'_> {
    /// The entry as a JSON object followed by a newline.
    #[must_use]
    pub fn to_json_line(&self) -> String {
        let mut line = String::with_capacity(192);
        line.push_str("{\"time\":\"");
        line.push_str(&rfc3339_utc(self.time));
        line.push_str("\",\"principal\":");
        push_json_string(&mut line, self.principal);
        line.push_str(",\"peer\":\"");
        line.push_str(&self.peer.to_string());
        line.push_str("\",\"operation\":");
        push_json_string(&mut line, self.operation);
        line.push_str(",\"target\":");
        push_json_string(&mut line, self.target);
        match self.outcome {
            AuditOutcome::Ok => line.push_str(",\"outcome\":\"ok\""),
            AuditOutcome::Error { code, description } => {
                line.push_str(",\"outcome\":\"error\",\"code\":");
                line.push_str(&code.to_string());
                line.push_str(",\"description\":");
                push_json_string(&mut line, description);
            }
        }
        line.push_str("}\n");
        line
    }
}

/// Appends `text` as a JSON string literal (RFC 8259 escaping).
fn push_json_string(out: &mut String, text: &str) {
    out.push('"');
    for character in text.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // U+2028 and U+2029 are valid JSON but break line-oriented JavaScript readers.
            '\u{0}'..='\u{1f}' | '\u{7f}' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", u32::from(character)));
            }
            _ => out.push(character),
        }
    }
    out.push('"');
}

/// `time` as `YYYY-MM-DDTHH:MM:SS.mmmZ`; times before 1970 are written as 1970-01-01.
fn rfc3339_utc(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_epoch.as_secs();
    let (days, second_of_day) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60,
        since_epoch.subsec_millis()
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let shifted = days + 719_468; // days since 0000-03-01
    let era = shifted / 146_097;
    let day_of_era = shifted % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::net::Ipv6Addr;
    use std::os::unix::fs::PermissionsExt;
    use std::time::Duration;

    use super::*;

    #[test]
    fn formats_rfc3339_utc() {
        let at = |seconds: u64, millis: u64| {
            rfc3339_utc(UNIX_EPOCH + Duration::from_secs(seconds) + Duration::from_millis(millis))
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(at(1_709_251_199, 999), "2024-02-29T23:59:59.999Z");
        assert_eq!(at(4_102_444_800, 0), "2100-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339_utc(UNIX_EPOCH - Duration::from_secs(1)),
            "1970-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn writes_json_lines_that_read_back() {
        let directory = std::env::temp_dir().join(format!("cimguard-audit-{}", std::process::id()));
        let _ = fs::remove_dir_all(&directory);
        fs::create_dir_all(&directory).unwrap();
        let path = directory.join("audit.log");
        let log = AuditLog::open(&path).unwrap();
        let time = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let tricky = "q\"b\\n\nt\t\u{1}\u{2028}é";
        log.record(&AuditEntry {
            time,
            principal: "alice",
            peer: "127.0.0.1".parse().unwrap(),
            operation: "DeleteInstance",
            target: "root/cimv2:CG_Package.Name=\"pkg1\"",
            outcome: AuditOutcome::Ok,
        })
        .unwrap();
        drop(log);
        // Reopening appends.
        let log = AuditLog::open(&path).unwrap();
        log.record(&AuditEntry {
            time,
            principal: tricky,
            peer: IpAddr::V6(Ipv6Addr::LOCALHOST),
            operation: "InvokeMethod",
            target: tricky,
            outcome: AuditOutcome::Error {
                code: 2,
                description: tricky,
            },
        })
        .unwrap();

        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let text = fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0],
            "{\"time\":\"2023-11-14T22:13:20.123Z\",\"principal\":\"alice\",\
             \"peer\":\"127.0.0.1\",\"operation\":\"DeleteInstance\",\
             \"target\":\"root/cimv2:CG_Package.Name=\\\"pkg1\\\"\",\"outcome\":\"ok\"}"
        );
        let second: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(second["principal"], tricky);
        assert_eq!(second["peer"], "::1");
        assert_eq!(second["target"], tricky);
        assert_eq!(second["outcome"], "error");
        assert_eq!(second["code"], 2);
        assert_eq!(second["description"], tricky);
        fs::remove_dir_all(&directory).unwrap();
    }

    #[test]
    fn is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<AuditLog>();
    }
}
