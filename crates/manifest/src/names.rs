//! Validated names. Every value that becomes part of a repo path is one of these types, and they can only
//! be built valid: no `..`, no `/` where a folder is not allowed, no NUL, nothing outside the patterns of SPEC §2.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a name was refused; `kind` says what was being parsed ("environment", "application", ...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {value:?}: {reason}")]
pub struct NameError {
    pub kind: &'static str,
    pub value: String,
    pub reason: &'static str,
}

fn err(kind: &'static str, value: &str, reason: &'static str) -> NameError {
    let mut shown: String = value.chars().take(80).collect();
    if shown.len() < value.len() {
        shown.push('…');
    }
    NameError { kind, value: shown, reason }
}

/// `[a-z0-9]([a-z0-9-]{0,max-2}[a-z0-9])?` (or starting with `[a-z]` when `letter_first`).
fn check_dns_label(kind: &'static str, value: &str, max: usize, letter_first: bool) -> Result<(), NameError> {
    let b = value.as_bytes();
    if b.is_empty() {
        return Err(err(kind, value, "must not be empty"));
    }
    if b.len() > max {
        return Err(err(kind, value, "is too long"));
    }
    let ok_inner = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-';
    let ok_edge = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !b.iter().all(|&c| ok_inner(c)) {
        return Err(err(kind, value, "may only contain a-z, 0-9 and '-'"));
    }
    if letter_first && !b[0].is_ascii_lowercase() {
        return Err(err(kind, value, "must start with a letter a-z"));
    }
    if !ok_edge(b[0]) || !ok_edge(b[b.len() - 1]) {
        return Err(err(kind, value, "must start and end with a letter or digit"));
    }
    Ok(())
}

macro_rules! string_name {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// What this name is called in error messages.
            pub const KIND: &'static str = $kind;

            /// Validates `value`.
            pub fn parse(value: &str) -> Result<Self, NameError> {
                let check: fn(&str) -> Result<(), NameError> = $check;
                check(value)?;
                Ok(Self(value.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = NameError;
            fn try_from(value: String) -> Result<Self, NameError> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = NameError;
            fn from_str(value: &str) -> Result<Self, NameError> {
                Self::parse(value)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_name!(
    /// An environment: `[a-z]([a-z0-9-]{0,61}[a-z0-9])?`, optionally behind one folder (`review/fix-foo`).
    EnvName,
    "environment",
    |v| {
        const KIND: &str = "environment";
        match v.split_once('/') {
            Some((folder, name)) => {
                check_dns_label(KIND, folder, 63, true).map_err(|e| NameError { reason: "has an invalid folder", ..e })?;
                check_dns_label(KIND, name, 63, true)
                    .map_err(|e| err(KIND, v, if name.contains('/') { "may have at most one folder" } else { e.reason }))
            }
            None => check_dns_label(KIND, v, 63, true),
        }
    }
);

string_name!(
    /// An environment group: the same pattern as an environment, without a folder.
    GroupName,
    "environment group",
    |v| check_dns_label("environment group", v, 63, true)
);

string_name!(
    /// An application: `[a-z0-9]([a-z0-9-]{0,37}[a-z0-9])?`, at most 39 characters.
    AppName,
    "application",
    |v| check_dns_label("application", v, 39, false)
);

string_name!(
    /// A team: the application pattern, at most 20 characters.
    TeamName,
    "team",
    |v| check_dns_label("team", v, 20, false)
);

string_name!(
    /// A lock id: `[A-Za-z0-9_.-]{1,100}`, not starting with `.` (so never `.`, `..` or `.git`).
    LockId,
    "lock id",
    |v| {
        const KIND: &str = "lock id";
        if v.is_empty() {
            return Err(err(KIND, v, "must not be empty"));
        }
        if v.len() > 100 {
            return Err(err(KIND, v, "is too long"));
        }
        if !v.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-')) {
            return Err(err(KIND, v, "may only contain A-Z, a-z, 0-9, '_', '.' and '-'"));
        }
        // `.`, `..` and `.git` (in any case, with trailing dots) are names git refuses as tree entries.
        if v.starts_with('.') {
            return Err(err(KIND, v, "must not start with '.'"));
        }
        Ok(())
    }
);

string_name!(
    /// A git tag name: a valid ref name under `refs/tags/`, at most 200 characters, no `..`, no leading `-`.
    TagName,
    "tag",
    |v| {
        const KIND: &str = "tag";
        if v.is_empty() {
            return Err(err(KIND, v, "must not be empty"));
        }
        if v.len() > 200 {
            return Err(err(KIND, v, "is too long"));
        }
        if v.starts_with('-') || v.contains("..") || v.bytes().any(|c| c.is_ascii_control() || c == b' ') {
            return Err(err(KIND, v, "is not a valid git tag name"));
        }
        if !git2::Reference::is_valid_name(&format!("refs/tags/{v}")) {
            return Err(err(KIND, v, "is not a valid git tag name"));
        }
        Ok(())
    }
);

/// A release version: a positive integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct Version(u64);

impl Version {
    pub const KIND: &'static str = "version";

    pub fn new(value: u64) -> Result<Self, NameError> {
        if value == 0 {
            return Err(err(Self::KIND, "0", "must be a positive integer"));
        }
        Ok(Self(value))
    }

    /// Parses the decimal form used in paths and files (surrounding whitespace allowed).
    pub fn parse(value: &str) -> Result<Self, NameError> {
        let t = value.trim();
        if t.is_empty() || !t.bytes().all(|c| c.is_ascii_digit()) {
            return Err(err(Self::KIND, value, "must be a positive integer"));
        }
        let n: u64 = t.parse().map_err(|_| err(Self::KIND, value, "is too large"))?;
        Self::new(n)
    }

    pub fn get(self) -> u64 {
        self.0
    }

    /// The version after this one.
    pub fn next(self) -> Option<Self> {
        self.0.checked_add(1).map(Self)
    }
}

impl std::str::FromStr for Version {
    type Err = NameError;
    fn from_str(value: &str) -> Result<Self, NameError> {
        Self::parse(value)
    }
}

impl TryFrom<u64> for Version {
    type Error = NameError;
    fn try_from(value: u64) -> Result<Self, NameError> {
        Self::new(value)
    }
}

impl From<Version> for u64 {
    fn from(value: Version) -> u64 {
        value.0
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn env_names() {
        for ok in ["dev", "a", "staging-1", "review/fix-foo", "a0"] {
            assert!(EnvName::parse(ok).is_ok(), "{ok}");
        }
        let long = "a".repeat(64);
        for bad in
            ["", "../x", "a/b/c", "Dev", "1dev", "dev-", "-dev", "a\0b", "/dev", "dev/", ".", "..", long.as_str()]
        {
            assert!(EnvName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(EnvName::parse(&"a".repeat(63)).is_ok());
    }

    #[test]
    fn app_and_team_names() {
        assert!(AppName::parse("0app").is_ok());
        assert!(AppName::parse(&"a".repeat(39)).is_ok());
        assert!(AppName::parse(&"a".repeat(40)).is_err());
        assert!(AppName::parse("a/b").is_err());
        assert!(TeamName::parse(&"t".repeat(20)).is_ok());
        assert!(TeamName::parse(&"t".repeat(21)).is_err());
    }

    #[test]
    fn lock_ids() {
        assert!(LockId::parse("my.lock_1-A").is_ok());
        for bad in ["", ".", "..", ".git", ".GIT", ".git.", "a/b", "a b", "a\0"] {
            assert!(LockId::parse(bad).is_err(), "{bad:?}");
        }
        assert!(LockId::parse(&"x".repeat(101)).is_err());
    }

    #[test]
    fn tag_names() {
        for ok in ["v1.0", "release/2026-11-23", "train_1"] {
            assert!(TagName::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a..b", "-x", "a b", "x.lock", "a/", "/a", "a\0", "a~1", "a^", "a:b", "@{x"] {
            assert!(TagName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn versions() {
        assert_eq!(Version::parse("42").map(Version::get), Ok(42));
        assert_eq!(Version::parse(" 7\n").map(Version::get), Ok(7));
        for bad in ["0", "-1", "1.5", "", "abc", "99999999999999999999999"] {
            assert!(Version::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn error_names_kind() {
        let e = AppName::parse("Bad").unwrap_err();
        assert_eq!(e.kind, "application");
        assert!(e.to_string().contains("application"));
    }

    proptest! {
        #[test]
        fn valid_names_are_safe_path_parts(s in "\\PC{0,80}") {
            if let Ok(n) = EnvName::parse(&s) {
                prop_assert!(n.as_str().split('/').count() <= 2);
                prop_assert!(n.as_str().split('/').all(|p| !p.is_empty() && p != "." && p != ".."));
            }
            for ok in [AppName::parse(&s).is_ok(), TeamName::parse(&s).is_ok(), LockId::parse(&s).is_ok()] {
                if ok {
                    prop_assert!(!s.contains('/') && !s.contains('\0') && s != "." && s != ".." && !s.is_empty());
                }
            }
        }

        #[test]
        fn env_pattern_roundtrip(s in "[a-z]([a-z0-9-]{0,20}[a-z0-9])?") {
            prop_assert!(EnvName::parse(&s).is_ok());
        }
    }
}
