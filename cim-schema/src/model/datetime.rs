//! The CIM `datetime` type (DSP0004 5.2.4): the 25-character timestamp and interval formats,
//! with the asterisk wildcards of reduced precision.

use std::fmt;
use std::str::FromStr;

/// A CIM datetime: either a timestamp `yyyymmddhhmmss.mmmmmmsutc` (`s` is `+` or `-`, `utc` the
/// offset from UTC in minutes) or an interval `ddddddddhhmmss.mmmmmm:000`.
///
/// Fields may be replaced by asterisks from the least significant end to express reduced
/// precision (`20261122******.******+000`); the microseconds may lose trailing digits only. The
/// value keeps its exact 25 characters, so it formats back exactly as it was parsed.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Datetime {
    text: [u8; 25],
}

/// Why a string is not a CIM datetime.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DatetimeError {
    /// The string is not 25 characters long.
    #[error("a datetime has 25 characters, found {0}")]
    Length(usize),
    /// A character is not allowed at its position.
    #[error("unexpected character at position {0} of the datetime")]
    Character(usize),
    /// A field is out of its range (a month of 13, a minute of 61).
    #[error("the {0} field of the datetime is out of range")]
    Range(&'static str),
    /// An asterisk wildcard stands before a field that has digits.
    #[error("asterisks must replace the least significant fields only")]
    Wildcard,
}

/// The fields of a datetime; `None` where the field is wildcarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatetimeFields {
    /// A point in time.
    Timestamp {
        /// 0..=9999
        year: Option<u16>,
        /// 1..=12
        month: Option<u8>,
        /// 1..=31
        day: Option<u8>,
        /// 0..=23
        hour: Option<u8>,
        /// 0..=59
        minute: Option<u8>,
        /// 0..=60 (a leap second)
        second: Option<u8>,
        /// The known microsecond digits as a number, and how many digits are known.
        microseconds: Option<(u32, u8)>,
        /// Minutes east of UTC, -999..=999.
        utc_offset_minutes: i16,
    },
    /// A duration.
    Interval {
        /// 0..=99_999_999
        days: Option<u32>,
        /// 0..=23
        hours: Option<u8>,
        /// 0..=59
        minutes: Option<u8>,
        /// 0..=59
        seconds: Option<u8>,
        /// The known microsecond digits as a number, and how many digits are known.
        microseconds: Option<(u32, u8)>,
    },
}

/// A field of the 25-character form: start, length, name, and the largest value allowed.
struct Field {
    start: usize,
    len: usize,
    name: &'static str,
    min: u32,
    max: u32,
}

const TIMESTAMP_FIELDS: [Field; 6] = [
    Field {
        start: 0,
        len: 4,
        name: "year",
        min: 0,
        max: 9999,
    },
    Field {
        start: 4,
        len: 2,
        name: "month",
        min: 1,
        max: 12,
    },
    Field {
        start: 6,
        len: 2,
        name: "day",
        min: 1,
        max: 31,
    },
    Field {
        start: 8,
        len: 2,
        name: "hour",
        min: 0,
        max: 23,
    },
    Field {
        start: 10,
        len: 2,
        name: "minute",
        min: 0,
        max: 59,
    },
    Field {
        start: 12,
        len: 2,
        name: "second",
        min: 0,
        max: 60,
    },
];

const INTERVAL_FIELDS: [Field; 4] = [
    Field {
        start: 0,
        len: 8,
        name: "days",
        min: 0,
        max: 99_999_999,
    },
    Field {
        start: 8,
        len: 2,
        name: "hours",
        min: 0,
        max: 23,
    },
    Field {
        start: 10,
        len: 2,
        name: "minutes",
        min: 0,
        max: 59,
    },
    Field {
        start: 12,
        len: 2,
        name: "seconds",
        min: 0,
        max: 59,
    },
];

impl Datetime {
    /// Parses the 25-character form.
    pub fn parse(text: &str) -> Result<Datetime, DatetimeError> {
        let bytes = text.as_bytes();
        let Ok(text) = <[u8; 25]>::try_from(bytes) else {
            return Err(DatetimeError::Length(text.chars().count()));
        };
        let interval = text[21] == b':';
        if text[14] != b'.' {
            return Err(DatetimeError::Character(14));
        }
        let fields: &[Field] = if interval {
            if &text[22..25] != b"000" {
                let at = (22..25).find(|&i| text[i] != b'0').unwrap_or(22);
                return Err(DatetimeError::Character(at));
            }
            &INTERVAL_FIELDS
        } else {
            if text[21] != b'+' && text[21] != b'-' {
                return Err(DatetimeError::Character(21));
            }
            if let Some(at) = (22..25).find(|&i| !text[i].is_ascii_digit()) {
                return Err(DatetimeError::Character(at));
            }
            &TIMESTAMP_FIELDS
        };
        let mut wildcarded = false;
        for field in fields {
            let digits = &text[field.start..field.start + field.len];
            if digits.iter().all(|&b| b == b'*') {
                wildcarded = true;
                continue;
            }
            if let Some(offset) = digits.iter().position(|b| !b.is_ascii_digit()) {
                return Err(DatetimeError::Character(field.start + offset));
            }
            if wildcarded {
                return Err(DatetimeError::Wildcard);
            }
            let value = digits
                .iter()
                .fold(0u32, |n, &b| n * 10 + u32::from(b - b'0'));
            if value < field.min || value > field.max {
                return Err(DatetimeError::Range(field.name));
            }
        }
        // Microseconds: known digits, then asterisks only.
        let micro = &text[15..21];
        let known = micro.iter().take_while(|b| b.is_ascii_digit()).count();
        if let Some(offset) = micro[known..].iter().position(|&b| b != b'*') {
            return Err(DatetimeError::Character(15 + known + offset));
        }
        if wildcarded && known > 0 {
            return Err(DatetimeError::Wildcard);
        }
        Ok(Datetime { text })
    }

    /// A timestamp from its fields, with full precision.
    pub fn timestamp(
        (year, month, day): (u16, u8, u8),
        (hour, minute, second): (u8, u8, u8),
        microsecond: u32,
        utc_offset_minutes: i16,
    ) -> Result<Datetime, DatetimeError> {
        let sign = if utc_offset_minutes < 0 { '-' } else { '+' };
        let text = format!(
            "{year:04}{month:02}{day:02}{hour:02}{minute:02}{second:02}.{microsecond:06}{sign}{:03}",
            utc_offset_minutes.unsigned_abs()
        );
        Datetime::parse(&text)
    }

    /// An interval from its fields, with full precision.
    pub fn interval(
        days: u32,
        (hours, minutes, seconds): (u8, u8, u8),
        microseconds: u32,
    ) -> Result<Datetime, DatetimeError> {
        let text = format!("{days:08}{hours:02}{minutes:02}{seconds:02}.{microseconds:06}:000");
        Datetime::parse(&text)
    }

    /// True for an interval, false for a timestamp.
    pub fn is_interval(&self) -> bool {
        self.text[21] == b':'
    }

    /// The 25 characters.
    pub fn as_str(&self) -> &str {
        // Invariant: `parse` accepted only ASCII digits, '*', '.', '+', '-' and ':'.
        std::str::from_utf8(&self.text).expect("a parsed datetime is ASCII")
    }

    /// The fields, with `None` for wildcarded ones.
    pub fn fields(&self) -> DatetimeFields {
        let number = |start: usize, len: usize| -> Option<u32> {
            let digits = &self.text[start..start + len];
            if digits[0] == b'*' {
                return None;
            }
            Some(
                digits
                    .iter()
                    .fold(0u32, |n, &b| n * 10 + u32::from(b - b'0')),
            )
        };
        // Field values were range-checked by `parse`, so the narrowing below cannot truncate.
        let small = |start: usize| number(start, 2).map(|v| v as u8);
        let micro = &self.text[15..21];
        let known = micro.iter().take_while(|b| b.is_ascii_digit()).count();
        let microseconds = (known > 0).then(|| {
            let value = micro[..known]
                .iter()
                .fold(0u32, |n, &b| n * 10 + u32::from(b - b'0'));
            (value, known as u8)
        });
        if self.is_interval() {
            DatetimeFields::Interval {
                days: number(0, 8),
                hours: small(8),
                minutes: small(10),
                seconds: small(12),
                microseconds,
            }
        } else {
            let offset = number(22, 3).unwrap_or(0) as i16;
            DatetimeFields::Timestamp {
                year: number(0, 4).map(|v| v as u16),
                month: small(4),
                day: small(6),
                hour: small(8),
                minute: small(10),
                second: small(12),
                microseconds,
                utc_offset_minutes: if self.text[21] == b'-' {
                    -offset
                } else {
                    offset
                },
            }
        }
    }
}

impl FromStr for Datetime {
    type Err = DatetimeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Datetime::parse(s)
    }
}

impl fmt::Display for Datetime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Datetime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Datetime({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_intervals_parse_and_format_exactly() {
        for text in [
            "20261122230520.585089+000",
            "19990404******.******+000",
            "20050503104354.0000**-420",
            "00000001132312.000000:000",
            "12345678******.******:000",
            "**************.******+000",
        ] {
            let value = Datetime::parse(text).unwrap();
            assert_eq!(value.to_string(), text);
        }
        let ts = Datetime::parse("20261122230520.585089-060").unwrap();
        assert!(!ts.is_interval());
        assert_eq!(
            ts.fields(),
            DatetimeFields::Timestamp {
                year: Some(2026),
                month: Some(11),
                day: Some(22),
                hour: Some(23),
                minute: Some(5),
                second: Some(20),
                microseconds: Some((585_089, 6)),
                utc_offset_minutes: -60,
            }
        );
        let iv = Datetime::interval(3, (4, 5, 6), 7).unwrap();
        assert_eq!(iv.as_str(), "00000003040506.000007:000");
        assert!(iv.is_interval());
    }

    #[test]
    fn malformed_datetimes_are_refused() {
        assert_eq!(Datetime::parse("2026"), Err(DatetimeError::Length(4)));
        assert_eq!(
            Datetime::parse("20261322230520.585089+000"),
            Err(DatetimeError::Range("month"))
        );
        assert_eq!(
            Datetime::parse("2026112223**20.585089+000"),
            Err(DatetimeError::Wildcard)
        );
        assert_eq!(
            Datetime::parse("20261122230520.585089:001"),
            Err(DatetimeError::Character(24))
        );
        assert_eq!(
            Datetime::parse("20261122230520.5*5089+000"),
            Err(DatetimeError::Character(17))
        );
        assert_eq!(
            Datetime::parse("20261122230520x585089+000"),
            Err(DatetimeError::Character(14))
        );
        assert!(Datetime::parse("2026112223052é.58508+000").is_err());
    }
}
