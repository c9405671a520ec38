//! `exclude` patterns, compiled: literal trees, absolute globs and file-name globs.

use glob::{MatchOptions, Pattern};
use std::path::{Component, Path, PathBuf};

const OPTIONS: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

/// The compiled `exclude` list. A pattern with a `/` is absolute and matches whole paths
/// (`*` and `?` stay within one component, `**` spans any number of them); one without
/// a `/` matches the file name (last component) anywhere. A literal path, or a literal
/// path followed by `/**`, excludes that whole tree and is also returned by
/// [`Excludes::prefixes`], for sensors that can skip trees cheaply.
#[derive(Clone, Debug, Default)]
pub struct Excludes {
    prefixes: Vec<PathBuf>,
    paths: Vec<Pattern>,
    names: Vec<Pattern>,
}

fn has_meta(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Why one pattern is not usable, saying how to write it.
pub(crate) fn pattern_error(p: &str) -> Option<String> {
    compile(p).err()
}

enum Compiled {
    Prefix(PathBuf),
    Path(Pattern),
    Name(Pattern),
}

fn compile(p: &str) -> Result<Compiled, String> {
    if p.is_empty() {
        return Err("an empty pattern excludes nothing: remove it".into());
    }
    if p.contains('/') {
        if !p.starts_with('/') {
            return Err(format!(
                "`{p}` is relative: write an absolute pattern (`/srv/share/tmp/**`) or a \
                 file-name pattern without `/` (`*.tmp`)"
            ));
        }
        if Path::new(p)
            .components()
            .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
        {
            return Err(format!(
                "`{p}` contains `.` or `..`: write the path without them"
            ));
        }
        let tree = p.strip_suffix("/**").unwrap_or(p);
        if !has_meta(tree) {
            let tree = if tree.is_empty() { "/" } else { tree };
            return Ok(Compiled::Prefix(PathBuf::from(tree)));
        }
        Pattern::new(p)
            .map(Compiled::Path)
            .map_err(|e| format!("bad glob `{p}`: {} (at character {})", e.msg, e.pos + 1))
    } else {
        Pattern::new(p)
            .map(Compiled::Name)
            .map_err(|e| format!("bad glob `{p}`: {} (at character {})", e.msg, e.pos + 1))
    }
}

impl Excludes {
    /// Compile patterns. On error returns the usable part and, for each bad pattern, its
    /// index and the reason.
    #[allow(clippy::result_large_err)]
    pub fn new(patterns: &[String]) -> Result<Excludes, (Excludes, Vec<(usize, String)>)> {
        let mut ex = Excludes::default();
        let mut errors = Vec::new();
        for (i, p) in patterns.iter().enumerate() {
            match compile(p) {
                Ok(Compiled::Prefix(t)) => ex.prefixes.push(t),
                Ok(Compiled::Path(g)) => ex.paths.push(g),
                Ok(Compiled::Name(g)) => ex.names.push(g),
                Err(e) => errors.push((i, e)),
            }
        }
        if errors.is_empty() {
            Ok(ex)
        } else {
            Err((ex, errors))
        }
    }

    /// Whether `path` (absolute) is excluded.
    pub fn matches(&self, path: &Path) -> bool {
        if self.prefixes.iter().any(|t| path.starts_with(t)) {
            return true;
        }
        if self
            .paths
            .iter()
            .any(|g| g.matches_path_with(path, OPTIONS))
        {
            return true;
        }
        match path.file_name().and_then(|n| n.to_str()) {
            Some(name) => self.names.iter().any(|g| g.matches_with(name, OPTIONS)),
            None => false,
        }
    }

    /// Literal trees excluded whole (for `SensorOptions::exclude`).
    pub fn prefixes(&self) -> &[PathBuf] {
        &self.prefixes
    }

    /// Whether nothing is excluded.
    pub fn is_empty(&self) -> bool {
        self.prefixes.is_empty() && self.paths.is_empty() && self.names.is_empty()
    }
}
