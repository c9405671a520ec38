//! Configuration errors: where each one is and what to do about it.

use std::fmt;
use std::path::PathBuf;

/// One problem in a configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (as given).
    pub file: PathBuf,
    /// 1-based line; 0 when the problem concerns the whole file (unreadable, unsafe
    /// permissions) or a setting that is not written in it.
    pub line: usize,
    /// 1-based column in characters; 0 with `line` 0.
    pub column: usize,
    /// Key path as written in the file (`vault.max_mib`, `path[1].mode`,
    /// `vault_max_mib`); empty for whole-file problems and syntax errors.
    pub key: String,
    /// What is wrong and what to do.
    pub reason: String,
}

impl fmt::Display for ConfigError {
    /// `FILE:LINE:COL: key: reason`; whole-file problems are `FILE: reason`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.reason)
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in a configuration file, in file order (whole-file problems
/// first). Never empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors {
    errors: Vec<ConfigError>,
}

impl ConfigErrors {
    pub(crate) fn new(mut errors: Vec<ConfigError>) -> ConfigErrors {
        errors.sort_by_key(|e| (e.line, e.column));
        errors.dedup();
        ConfigErrors { errors }
    }

    /// The errors, in file order.
    pub fn errors(&self) -> &[ConfigError] {
        &self.errors
    }

    /// How many errors there are (at least 1).
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Always false: a `ConfigErrors` holds at least one error.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }
}

impl fmt::Display for ConfigErrors {
    /// One line per error, `FILE:LINE:COL: key: reason`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;
    fn into_iter(self) -> Self::IntoIter {
        self.errors.into_iter()
    }
}
