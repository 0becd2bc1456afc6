//! The users file: who may log in, with which role, and how their password is checked.
//!
//! One line per user, `name:ROLE:credential`, where the credential is an argon2id PHC string
//! (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) or `pam` (the password is checked by PAM, the
//! role still comes from here). Lines starting with `#` and blank lines are kept as they are when
//! the file is saved again. Parsing is strict: any other line is an error naming its line number.
//!
//! ```text
//! # cimguard users
//! alice:FULL_ADMIN:$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$...
//! operator:MONITOR:pam
//! ```
//!
//! This module reads, edits and writes the file; checking a login is the
//! [`Authenticator`](super::Authenticator)'s job.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHashString, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use super::role::{Role, UnknownRole};

/// The longest user name, in bytes.
pub const USER_NAME_LENGTH_MAX: usize = 64;
/// The longest password accepted, in bytes (a longer one could never be sent within
/// [`CREDENTIALS_BYTES_MAX`](super::CREDENTIALS_BYTES_MAX)).
pub const PASSWORD_BYTES_MAX: usize = 512;
/// The largest users file read, in bytes.
pub const USERS_FILE_BYTES_MAX: u64 = 4 * 1024 * 1024;
/// Memory cost of new password hashes, in KiB (OWASP's argon2id recommendation).
pub const HASH_MEMORY_KIB: u32 = 19_456;
/// Passes over memory of new password hashes.
pub const HASH_TIME_COST: u32 = 2;
/// Lanes of new password hashes.
pub const HASH_PARALLELISM: u32 = 1;
/// The largest memory cost accepted from the users file, in KiB: a hash beyond it would let one
/// login attempt take a gigabyte.
pub const HASH_MEMORY_MAX_KIB: u32 = 256 * 1024;
/// The largest time cost accepted from the users file.
pub const HASH_TIME_COST_MAX: u32 = 16;
/// The largest parallelism accepted from the users file.
pub const HASH_PARALLELISM_MAX: u32 = 16;
/// The credential field of a user whose password PAM checks.
pub const PAM_MARKER: &str = "pam";

// New hashes must be accepted when the file is read back.
const _: () = assert!(
    HASH_MEMORY_KIB <= HASH_MEMORY_MAX_KIB
        && HASH_TIME_COST <= HASH_TIME_COST_MAX
        && HASH_PARALLELISM <= HASH_PARALLELISM_MAX
);

/// Salt length of new password hashes, in bytes.
const SALT_BYTES: usize = 16;

/// The users file: user entries in file order, with its comments and blank lines.
#[derive(Clone, Debug, Default)]
pub struct Users {
    lines: Vec<Line>,
}

/// One user: name, role and how the password is checked.
#[derive(Clone, Debug)]
pub struct UserEntry {
    name: String,
    role: Role,
    credential: Credential,
}

/// How a user's password is checked.
#[derive(Clone, Debug)]
pub(crate) enum Credential {
    /// Against this argon2id hash.
    Password(PasswordHashString),
    /// By PAM (service `cimguard`).
    Pam,
}

#[derive(Clone, Debug)]
enum Line {
    /// A comment or blank line, kept verbatim.
    Other(String),
    User(UserEntry),
}

/// Reading, parsing or writing the users file failed.
#[derive(Debug, thiserror::Error)]
pub enum UsersFileError {
    /// The file could not be read.
    #[error("cannot read users file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The file is larger than [`USERS_FILE_BYTES_MAX`].
    #[error("users file {path} is larger than {USERS_FILE_BYTES_MAX} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The file could not be written.
    #[error("cannot write users file {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A line is not a comment, a blank line or a valid user entry.
    #[error("users file line {line}: {problem}")]
    Line {
        /// The line number, from 1.
        line: usize,
        /// What is wrong with it.
        problem: LineProblem,
    },
}

/// What is wrong with a line of the users file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LineProblem {
    /// The line does not have exactly three colon-separated fields.
    #[error("expected name:ROLE:credential")]
    FieldCount,
    /// The user name is empty, too long or has a character outside `[A-Za-z0-9_.@-]`.
    #[error("invalid user name {0:?}")]
    InvalidName(String),
    /// The role is not a Serviceguard role.
    #[error(transparent)]
    UnknownRole(#[from] UnknownRole),
    /// The credential is neither `pam` nor an acceptable argon2id hash.
    #[error("invalid credential: {0}")]
    InvalidCredential(String),
    /// The user name appeared on an earlier line.
    #[error("user {name:?} already defined on line {first_line}")]
    DuplicateUser {
        /// The name.
        name: String,
        /// Where it was first defined.
        first_line: usize,
    },
}

/// An edit of the users could not be made; the users are unchanged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UsersError {
    /// The user name is empty, too long or has a character outside `[A-Za-z0-9_.@-]`.
    #[error("invalid user name {0:?} (1 to 64 of A-Z a-z 0-9 _ . @ -)")]
    InvalidName(String),
    /// A user of that name already exists.
    #[error("user {0:?} already exists")]
    Duplicate(String),
    /// There is no user of that name.
    #[error("no user {0:?}")]
    NotFound(String),
    /// The password is empty.
    #[error("the password is empty")]
    EmptyPassword,
    /// The password is longer than [`PASSWORD_BYTES_MAX`].
    #[error("the password is longer than {PASSWORD_BYTES_MAX} bytes")]
    PasswordTooLong,
    /// The operating system's random number generator failed.
    #[error("cannot generate a salt: {0}")]
    Random(String),
    /// Hashing failed.
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

impl Users {
    /// No users.
    #[must_use]
    pub fn new() -> Self {
        Users::default()
    }

    /// Reads and parses the users file at `path`. Warns (through `tracing`) when others than
    /// its owner may read it.
    pub fn load(path: &Path) -> Result<Users, UsersFileError> {
        let read_error = |source| UsersFileError::Read {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(read_error)?;
        let mode = file.metadata().map_err(read_error)?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(path = %path.display(), mode = format!("{mode:o}"),
                "the users file is readable by others than its owner; chmod 600 it");
        }
        let mut text = String::new();
        file.take(USERS_FILE_BYTES_MAX + 1)
            .read_to_string(&mut text)
            .map_err(read_error)?;
        if text.len() as u64 > USERS_FILE_BYTES_MAX {
            return Err(UsersFileError::TooLarge {
                path: path.to_owned(),
            });
        }
        Users::parse(&text)
    }

    /// Parses the text of a users file.
    pub fn parse(text: &str) -> Result<Users, UsersFileError> {
        let mut users = Users::new();
        let mut first_lines = std::collections::HashMap::new();
        for (index, line) in text.lines().enumerate() {
            let line_number = index + 1;
            if line.trim().is_empty() || line.starts_with('#') {
                users.lines.push(Line::Other(line.to_owned()));
                continue;
            }
            let entry = parse_entry(line).map_err(|problem| UsersFileError::Line {
                line: line_number,
                problem,
            })?;
            if let Some(&first_line) = first_lines.get(&entry.name) {
                return Err(UsersFileError::Line {
                    line: line_number,
                    problem: LineProblem::DuplicateUser {
                        name: entry.name,
                        first_line,
                    },
                });
            }
            first_lines.insert(entry.name.clone(), line_number);
            users.lines.push(Line::User(entry));
        }
        Ok(users)
    }

    /// The user called `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&UserEntry> {
        self.iter().find(|entry| entry.name == name)
    }

    /// The users in file order.
    pub fn iter(&self) -> impl Iterator<Item = &UserEntry> {
        self.lines.iter().filter_map(|line| match line {
            Line::User(entry) => Some(entry),
            Line::Other(_) => None,
        })
    }

    /// How many users there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether there are no users.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// Adds a user whose password is checked against a new argon2id hash (memory
    /// [`HASH_MEMORY_KIB`], time [`HASH_TIME_COST`], parallelism [`HASH_PARALLELISM`], random
    /// salt). Hashing takes tens of milliseconds.
    pub fn add(&mut self, name: &str, role: Role, password: &str) -> Result<(), UsersError> {
        self.check_new_name(name)?;
        let hash = hash_password(password.as_bytes())?;
        self.push(name, role, Credential::Password(hash));
        Ok(())
    }

    /// Adds a user whose password PAM checks (the `pam` marker in the file).
    pub fn add_pam(&mut self, name: &str, role: Role) -> Result<(), UsersError> {
        self.check_new_name(name)?;
        self.push(name, role, Credential::Pam);
        Ok(())
    }

    /// Replaces a user's password (or PAM marker) with a new hash of `password`.
    pub fn set_password(&mut self, name: &str, password: &str) -> Result<(), UsersError> {
        let hash = hash_password(password.as_bytes())?;
        self.entry_mut(name)?.credential = Credential::Password(hash);
        Ok(())
    }

    /// Removes the user called `name`.
    pub fn remove(&mut self, name: &str) -> Result<(), UsersError> {
        let position = self
            .lines
            .iter()
            .position(|line| matches!(line, Line::User(entry) if entry.name == name))
            .ok_or_else(|| UsersError::NotFound(name.to_owned()))?;
        self.lines.remove(position);
        Ok(())
    }

    /// Gives the user called `name` the role `role`.
    pub fn set_role(&mut self, name: &str, role: Role) -> Result<(), UsersError> {
        self.entry_mut(name)?.role = role;
        Ok(())
    }

    /// The file's text: comments and blank lines as read, one line per user.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        for line in &self.lines {
            match line {
                Line::Other(other) => text.push_str(other),
                Line::User(entry) => {
                    text.push_str(&entry.name);
                    text.push(':');
                    text.push_str(entry.role.as_str());
                    text.push(':');
                    text.push_str(match &entry.credential {
                        Credential::Password(hash) => hash.as_str(),
                        Credential::Pam => PAM_MARKER,
                    });
                }
            }
            text.push('\n');
        }
        text
    }

    /// Writes the file atomically: a temporary file of mode 0600 in the same directory, synced,
    /// renamed over `path`, then the directory synced. Readers see the old or the new file,
    /// never a part of one. Two writers at once are not serialised: the last rename wins.
    pub fn save(&self, path: &Path) -> Result<(), UsersFileError> {
        let write_error = |source| UsersFileError::Write {
            path: path.to_owned(),
            source,
        };
        let file_name = path
            .file_name()
            .ok_or_else(|| write_error(io::Error::other("the path has no file name")))?;
        let directory = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let mut temporary_name = std::ffi::OsString::from(".");
        temporary_name.push(file_name);
        temporary_name.push(format!(".tmp{}", std::process::id()));
        let temporary = directory.join(temporary_name);
        let result = write_synced(&temporary, self.to_text().as_bytes())
            .and_then(|()| fs::rename(&temporary, path))
            .and_then(|()| File::open(directory)?.sync_all());
        if result.is_err() {
            // Best effort: the temporary file is ours and useless now.
            let _ = fs::remove_file(&temporary);
        }
        result.map_err(write_error)
    }

    fn check_new_name(&self, name: &str) -> Result<(), UsersError> {
        if !is_valid_name(name) {
            return Err(UsersError::InvalidName(name.to_owned()));
        }
        if self.get(name).is_some() {
            return Err(UsersError::Duplicate(name.to_owned()));
        }
        Ok(())
    }

    fn push(&mut self, name: &str, role: Role, credential: Credential) {
        self.lines.push(Line::User(UserEntry {
            name: name.to_owned(),
            role,
            credential,
        }));
    }

    fn entry_mut(&mut self, name: &str) -> Result<&mut UserEntry, UsersError> {
        self.lines
            .iter_mut()
            .find_map(|line| match line {
                Line::User(entry) if entry.name == name => Some(entry),
                _ => None,
            })
            .ok_or_else(|| UsersError::NotFound(name.to_owned()))
    }
}

impl UserEntry {
    /// The user's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The user's role.
    #[must_use]
    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether PAM checks this user's password (rather than a hash in the file).
    #[must_use]
    pub fn uses_pam(&self) -> bool {
        matches!(self.credential, Credential::Pam)
    }

    pub(crate) fn credential(&self) -> &Credential {
        &self.credential
    }
}

/// Whether `name` is 1 to [`USER_NAME_LENGTH_MAX`] characters of `[A-Za-z0-9_.@-]`.
#[must_use]
pub fn is_valid_name(name: &str) -> bool {
    (1..=USER_NAME_LENGTH_MAX).contains(&name.len())
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"_.@-".contains(&byte))
}

/// The argon2id hasher with this module's parameters for new hashes.
pub(crate) fn hasher() -> Argon2<'static> {
    // The constants are within argon2's bounds (checked by a test), so this never falls back.
    let params =
        Params::new(HASH_MEMORY_KIB, HASH_TIME_COST, HASH_PARALLELISM, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A new argon2id hash of `password` with a random salt.
pub(crate) fn hash_password(password: &[u8]) -> Result<PasswordHashString, UsersError> {
    if password.is_empty() {
        return Err(UsersError::EmptyPassword);
    }
    if password.len() > PASSWORD_BYTES_MAX {
        return Err(UsersError::PasswordTooLong);
    }
    let mut salt = [0_u8; SALT_BYTES];
    OsRng
        .try_fill_bytes(&mut salt)
        .map_err(|error| UsersError::Random(error.to_string()))?;
    let salt =
        SaltString::encode_b64(&salt).map_err(|error| UsersError::Hash(error.to_string()))?;
    hasher()
        .hash_password(password, &salt)
        .map(|hash| hash.serialize())
        .map_err(|error| UsersError::Hash(error.to_string()))
}

/// Whether `password` matches `hash` (the hash's own parameters are used; the comparison of
/// outputs is constant-time).
pub(crate) fn verify_password(hash: &PasswordHashString, password: &[u8]) -> bool {
    use argon2::password_hash::PasswordVerifier;
    Argon2::default()
        .verify_password(password, &hash.password_hash())
        .is_ok()
}

fn parse_entry(line: &str) -> Result<UserEntry, LineProblem> {
    let mut fields = line.split(':');
    let (Some(name), Some(role), Some(credential), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(LineProblem::FieldCount);
    };
    if !is_valid_name(name) {
        return Err(LineProblem::InvalidName(name.to_owned()));
    }
    let role = role.parse::<Role>()?;
    let credential = if credential == PAM_MARKER {
        Credential::Pam
    } else {
        Credential::Password(parse_hash(credential).map_err(LineProblem::InvalidCredential)?)
    };
    Ok(UserEntry {
        name: name.to_owned(),
        role,
        credential,
    })
}

fn parse_hash(text: &str) -> Result<PasswordHashString, String> {
    let hash = PasswordHash::new(text).map_err(|error| error.to_string())?;
    if hash.algorithm != argon2::ARGON2ID_IDENT {
        return Err(format!("algorithm {} is not argon2id", hash.algorithm));
    }
    if hash.version != Some(Version::V0x13.into()) {
        return Err("version is not v=19".to_owned());
    }
    if hash.salt.is_none() || hash.hash.is_none() {
        return Err("salt or hash missing".to_owned());
    }
    let params = Params::try_from(&hash).map_err(|error| error.to_string())?;
    if params.m_cost() > HASH_MEMORY_MAX_KIB
        || params.t_cost() > HASH_TIME_COST_MAX
        || params.p_cost() > HASH_PARALLELISM_MAX
    {
        return Err(format!(
            "cost beyond m={HASH_MEMORY_MAX_KIB},t={HASH_TIME_COST_MAX},p={HASH_PARALLELISM_MAX}"
        ));
    }
    Ok(hash.serialize())
}

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    // A stale temporary file from a crashed writer of the same pid is replaced.
    match fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
        _ => {}
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid argon2id hash of "secret" with small parameters, so that tests run fast.
    pub(crate) fn cheap_hash(password: &str) -> String {
        let params = Params::new(64, 1, 1, None).unwrap();
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(password.as_bytes(), &salt)
            .unwrap()
            .to_string()
    }

    fn temporary_directory(name: &str) -> PathBuf {
        let directory =
            std::env::temp_dir().join(format!("cimguard-users-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&directory);
        fs::create_dir_all(&directory).unwrap();
        directory
    }

    #[test]
    fn hash_parameters_are_accepted_by_argon2() {
        Params::new(HASH_MEMORY_KIB, HASH_TIME_COST, HASH_PARALLELISM, None).unwrap();
    }

    #[test]
    fn parses_entries_comments_and_blank_lines() {
        let text = format!(
            "# users\n\nalice:FULL_ADMIN:{}\n  \nbob:monitor:pam\n",
            cheap_hash("secret")
        );
        let users = Users::parse(&text).unwrap();
        assert_eq!(users.len(), 2);
        let alice = users.get("alice").unwrap();
        assert_eq!(alice.role(), Role::FullAdmin);
        assert!(!alice.uses_pam());
        let Credential::Password(hash) = alice.credential() else {
            panic!("alice has a password hash");
        };
        assert!(verify_password(hash, b"secret"));
        assert!(!verify_password(hash, b"Secret"));
        assert!(users.get("bob").unwrap().uses_pam());
        assert!(users.get("carol").is_none());
        // Comments and blank lines survive; the role is written in capitals.
        assert_eq!(users.to_text(), text.replace("monitor", "MONITOR"));
    }

    #[test]
    fn reports_bad_lines_with_their_numbers() {
        let hash = cheap_hash("secret");
        let argon2i = hash.replace("argon2id", "argon2i");
        let expensive = hash.replace("m=64", "m=4000000");
        let cases: Vec<(String, LineProblem)> = vec![
            ("alice:MONITOR".into(), LineProblem::FieldCount),
            (format!("alice:MONITOR:{hash}:x"), LineProblem::FieldCount),
            (
                format!("al ice:MONITOR:{hash}"),
                LineProblem::InvalidName("al ice".into()),
            ),
            (
                format!(":MONITOR:{hash}"),
                LineProblem::InvalidName(String::new()),
            ),
            (
                format!("{}:MONITOR:{hash}", "a".repeat(65)),
                LineProblem::InvalidName("a".repeat(65)),
            ),
            (
                format!("alice:ADMIN:{hash}"),
                LineProblem::UnknownRole(UnknownRole {
                    text: "ADMIN".into(),
                }),
            ),
            (" # not a comment".into(), LineProblem::FieldCount),
        ];
        for (line, expected) in cases {
            let text = format!("# header\nbob:MONITOR:pam\n{line}\n");
            match Users::parse(&text) {
                Err(UsersFileError::Line { line: 3, problem }) => assert_eq!(problem, expected),
                other => panic!("{line:?}: {other:?}"),
            }
        }
        for credential in [
            "",
            "PAM",
            "plain",
            "$argon2id$v=19$m=64",
            &argon2i,
            &expensive,
        ] {
            let text = format!("alice:MONITOR:{credential}\n");
            assert!(
                matches!(
                    Users::parse(&text),
                    Err(UsersFileError::Line {
                        line: 1,
                        problem: LineProblem::InvalidCredential(_)
                    })
                ),
                "{credential:?}"
            );
        }
        let duplicate = "a:MONITOR:pam\n\nb:MONITOR:pam\na:FULL_ADMIN:pam\n";
        match Users::parse(duplicate) {
            Err(UsersFileError::Line { line: 4, problem }) => assert_eq!(
                problem,
                LineProblem::DuplicateUser {
                    name: "a".into(),
                    first_line: 1
                }
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn validates_names() {
        for name in ["a", "alice", "A.b-c_d@example.com", &"x".repeat(64)] {
            assert!(is_valid_name(name), "{name}");
        }
        for name in ["", "a:b", "a b", "é", "a/b", &"x".repeat(65)] {
            assert!(!is_valid_name(name), "{name}");
        }
    }

    #[test]
    fn adds_with_argon2id_and_edits_leaving_state_unchanged_on_error() {
        let mut users = Users::new();
        users.add("alice", Role::PackageAdmin, "s3cret").unwrap();
        let text = users.to_text();
        assert!(
            text.starts_with("alice:PACKAGE_ADMIN:$argon2id$v=19$m=19456,t=2,p=1$"),
            "{text}"
        );
        let Credential::Password(hash) = users.get("alice").unwrap().credential() else {
            panic!("alice has a password hash");
        };
        assert!(verify_password(hash, b"s3cret"));

        let before = users.to_text();
        assert_eq!(
            users.add("alice", Role::Monitor, "x"),
            Err(UsersError::Duplicate("alice".into()))
        );
        assert_eq!(
            users.add("a:b", Role::Monitor, "x"),
            Err(UsersError::InvalidName("a:b".into()))
        );
        assert_eq!(
            users.add("bob", Role::Monitor, ""),
            Err(UsersError::EmptyPassword)
        );
        assert_eq!(
            users.add("bob", Role::Monitor, &"x".repeat(PASSWORD_BYTES_MAX + 1)),
            Err(UsersError::PasswordTooLong)
        );
        assert_eq!(users.remove("bob"), Err(UsersError::NotFound("bob".into())));
        assert_eq!(
            users.set_role("bob", Role::Monitor),
            Err(UsersError::NotFound("bob".into()))
        );
        assert_eq!(users.to_text(), before);

        users.add_pam("bob", Role::Monitor).unwrap();
        users.set_role("alice", Role::FullAdmin).unwrap();
        assert_eq!(users.get("alice").unwrap().role(), Role::FullAdmin);
        users.remove("alice").unwrap();
        assert_eq!(users.to_text(), "bob:MONITOR:pam\n");
        // Round trip through the parser.
        assert_eq!(Users::parse(&before).unwrap().to_text(), before);
    }

    #[test]
    fn saves_atomically_with_mode_0600_and_loads_back() {
        let directory = temporary_directory("save");
        let path = directory.join("users");
        fs::write(&path, "old:MONITOR:pam\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let users = Users::parse(&format!(
            "# kept\nalice:FULL_ADMIN:{}\nbob:MONITOR:pam\n",
            cheap_hash("x")
        ))
        .unwrap();
        users.save(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(Users::load(&path).unwrap().to_text(), users.to_text());
        // Nothing but the users file is left in the directory.
        let names: Vec<_> = fs::read_dir(&directory)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, ["users"]);
        fs::remove_dir_all(&directory).unwrap();
    }

    #[test]
    fn load_reports_missing_and_bad_files() {
        let directory = temporary_directory("load");
        let missing = directory.join("missing");
        assert!(matches!(
            Users::load(&missing),
            Err(UsersFileError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound
        ));
        let bad = directory.join("bad");
        fs::write(&bad, "alice:MONITOR:pam\nbroken\n").unwrap();
        let error = Users::load(&bad).unwrap_err();
        assert_eq!(
            error.to_string(),
            "users file line 2: expected name:ROLE:credential"
        );
        fs::remove_dir_all(&directory).unwrap();
    }

    #[test]
    fn save_into_a_missing_directory_fails_cleanly() {
        let path = std::env::temp_dir()
            .join(format!("cimguard-no-such-dir-{}", std::process::id()))
            .join("users");
        assert!(matches!(
            Users::new().save(&path),
            Err(UsersFileError::Write { .. })
        ));
    }
}
