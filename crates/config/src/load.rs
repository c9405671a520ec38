//! Reading a config file: permissions, syntax, the old flat vault keys, every
//! deserialization error (each bad key is reported and then left out, so the next one is
//! found too), then the semantic checks.

use crate::error::{ConfigError, ConfigErrors};
use crate::schema::Config;
use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use toml_edit::{DocumentMut, ImDocument, Item, Table, Value};

/// Where `ward` looks for its configuration when no file is given.
pub const DEFAULT_PATH: &str = "/etc/ward/ward.toml";

/// Larger files are refused (a config is a few KiB).
const MAX_BYTES: u64 = 1 << 20;

/// Deserialization errors reported at most (each one removes a key before the retry).
const MAX_ROUNDS: usize = 256;

/// The old flat vault keys and their place in `[vault]`.
const LEGACY_VAULT: &[(&str, &str)] = &[
    ("vault_max_mib", "max_mib"),
    ("vault_max_file_mib", "max_file_mib"),
    ("vault_retention_hours", "retention_hours"),
];

/// One step of a key path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

struct KeyPath<'a>(&'a [Seg]);

impl fmt::Display for KeyPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

fn path_string(p: &[Seg]) -> String {
    KeyPath(p).to_string()
}

/// Read, check and validate a config file. Every problem found is returned, each with
/// its line, column, key and what to do. The file (and its directory) must not be
/// writable by anyone but root (or the user running this, when that is not root: so a
/// user can check a draft; `ward protect` runs as root, where only root qualifies).
pub fn check(path: &Path) -> Result<Config, ConfigErrors> {
    let whole = |reason: String| ConfigError {
        file: path.to_path_buf(),
        line: 0,
        column: 0,
        key: String::new(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::NotFound {
            if path == Path::new(DEFAULT_PATH) {
                " (without it ward protect uses the built-in defaults; the example is \
                 /usr/share/doc/ward/examples/ward.toml)"
            } else {
                ": check the path"
            }
        } else {
            ""
        };
        ConfigErrors::new(vec![whole(format!(
            "cannot read the config file: {e}{hint}"
        ))])
    })?;
    if !meta.is_file() {
        return Err(ConfigErrors::new(vec![whole(
            "not a regular file: give the path of a TOML file".into(),
        )]));
    }
    if meta.len() > MAX_BYTES {
        return Err(ConfigErrors::new(vec![whole(format!(
            "{} bytes is too large for a config file (at most {MAX_BYTES}): is this the right file?",
            meta.len()
        ))]));
    }
    let mut errors: Vec<ConfigError> = permission_problems(path, &meta)
        .into_iter()
        .map(whole)
        .collect();
    let text = match std::fs::read(path) {
        Ok(b) => match String::from_utf8(b) {
            Ok(t) => t,
            Err(e) => {
                let off = e.utf8_error().valid_up_to();
                let text = String::from_utf8_lossy(&e.into_bytes()[..off]).into_owned();
                let (line, column) = Positions::new(&text).at(off);
                errors.push(ConfigError {
                    file: path.to_path_buf(),
                    line,
                    column,
                    key: String::new(),
                    reason: "not UTF-8 text: save the file as UTF-8".into(),
                });
                return Err(ConfigErrors::new(errors));
            }
        },
        Err(e) => {
            errors.push(whole(format!("cannot read the config file: {e}")));
            return Err(ConfigErrors::new(errors));
        }
    };
    let world_readable = meta.mode() & 0o004 != 0;
    match parse_checked(&text, path, world_readable) {
        Ok(c) if errors.is_empty() => Ok(c),
        Ok(_) => Err(ConfigErrors::new(errors)),
        Err(e) => {
            errors.extend(e);
            Err(ConfigErrors::new(errors))
        }
    }
}

/// Parse and validate configuration text that did not come from a file on disk (tests,
/// `--config -`): no permission checks. `file` names it in errors.
pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigErrors> {
    parse_checked(text, file, false)
}

impl Config {
    /// The agent's loader. `None` reads [`DEFAULT_PATH`] and, when that file does not
    /// exist, logs so and returns the defaults; an explicitly given file must exist.
    /// Otherwise exactly [`check`].
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigErrors> {
        match path {
            Some(p) => check(p),
            None => {
                let p = Path::new(DEFAULT_PATH);
                match std::fs::symlink_metadata(p) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        tracing::info!(
                            "no config file at {DEFAULT_PATH}: using the built-in defaults"
                        );
                        Ok(Config::default())
                    }
                    _ => check(p),
                }
            }
        }
    }
}

fn owner_ok(uid: u32) -> bool {
    uid == 0 || uid == nix::unistd::geteuid().as_raw()
}

fn user_name(uid: u32) -> String {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(u)) => format!("{} (uid {uid})", u.name),
        _ => format!("uid {uid}"),
    }
}

/// Reasons the file or a directory it is reached through can be changed by a non-root
/// user, each with the command that fixes it.
fn permission_problems(path: &Path, meta: &std::fs::Metadata) -> Vec<String> {
    let mut out = Vec::new();
    let shown = path.display();
    if !owner_ok(meta.uid()) {
        out.push(format!(
            "owned by {}, who can change ward's settings: run `chown root:root {shown}`",
            user_name(meta.uid())
        ));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        out.push(format!(
            "writable by {} (mode {mode:04o}): run `chmod go-w {shown}`",
            if mode & 0o002 != 0 {
                "every user"
            } else {
                "its group"
            }
        ));
    }
    // The directories holding the file (the link's and, for a symlink, the target's):
    // whoever can write one can replace the file.
    let mut dirs: Vec<PathBuf> = Vec::new();
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    if let Some(d) = abs.parent() {
        dirs.push(d.to_path_buf());
    }
    if let Ok(real) = std::fs::canonicalize(path) {
        if let Some(d) = real.parent() {
            if !dirs.iter().any(|x| x == d) {
                dirs.push(d.to_path_buf());
            }
        }
    }
    for d in dirs {
        let Ok(dm) = std::fs::metadata(&d) else {
            continue;
        };
        let ds = d.display();
        if !owner_ok(dm.uid()) {
            out.push(format!(
                "its directory {ds} is owned by {}, who could replace the file: run \
                 `chown root:root {ds}`",
                user_name(dm.uid())
            ));
        }
        let dmode = dm.mode() & 0o7777;
        if dmode & 0o022 != 0 {
            out.push(format!(
                "its directory {ds} is writable by {} (mode {dmode:04o}), who could replace \
                 the file: run `chmod go-w {ds}` or move the file to /etc/ward",
                if dmode & 0o002 != 0 {
                    "every user"
                } else {
                    "its group"
                }
            ));
        }
    }
    out
}

/// Byte offset to 1-based line and column (in characters).
pub(crate) struct Positions<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> Positions<'a> {
    pub(crate) fn new(text: &'a str) -> Positions<'a> {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Positions { text, line_starts }
    }

    pub(crate) fn at(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        let start = self.line_starts[line - 1];
        let col = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (line, col + 1)
    }
}

fn contains(span: Option<std::ops::Range<usize>>, off: usize) -> bool {
    span.is_some_and(|s| s.start <= off && off < s.end.max(s.start + 1))
}

/// The deepest key path whose key or value contains byte offset `off`.
fn find_in_table(t: &Table, off: usize, prefix: &mut Vec<Seg>) -> Option<Vec<Seg>> {
    for (k, item) in t.iter() {
        prefix.push(Seg::Key(k.to_string()));
        if let Some(deeper) = find_in_item(item, off, prefix) {
            return Some(deeper);
        }
        let kspan = t.key(k).and_then(|k| k.span());
        if contains(kspan, off) || contains(item.span(), off) {
            return Some(prefix.clone());
        }
        prefix.pop();
    }
    None
}

fn find_in_item(item: &Item, off: usize, prefix: &mut Vec<Seg>) -> Option<Vec<Seg>> {
    match item {
        Item::Table(t) => find_in_table(t, off, prefix),
        Item::ArrayOfTables(a) => {
            for (i, t) in a.iter().enumerate() {
                prefix.push(Seg::Index(i));
                if let Some(d) = find_in_table(t, off, prefix) {
                    return Some(d);
                }
                if contains(t.span(), off) {
                    return Some(prefix.clone());
                }
                prefix.pop();
            }
            None
        }
        Item::Value(v) => find_in_value(v, off, prefix),
        Item::None => None,
    }
}

fn find_in_value(v: &Value, off: usize, prefix: &mut Vec<Seg>) -> Option<Vec<Seg>> {
    match v {
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                prefix.push(Seg::Index(i));
                if let Some(d) = find_in_value(v, off, prefix) {
                    return Some(d);
                }
                if contains(v.span(), off) {
                    return Some(prefix.clone());
                }
                prefix.pop();
            }
            None
        }
        Value::InlineTable(t) => {
            for (k, v) in t.iter() {
                prefix.push(Seg::Key(k.to_string()));
                if let Some(d) = find_in_value(v, off, prefix) {
                    return Some(d);
                }
                let kspan = t.key(k).and_then(|k| k.span());
                if contains(kspan, off) || contains(v.span(), off) {
                    return Some(prefix.clone());
                }
                prefix.pop();
            }
            None
        }
        _ => None,
    }
}

fn find(root: &Table, off: usize) -> Option<Vec<Seg>> {
    find_in_table(root, off, &mut Vec::new())
}

/// The span of the value (else the key) at `path`.
fn span_of(root: &Table, path: &[Seg]) -> Option<std::ops::Range<usize>> {
    enum Node<'a> {
        Table(&'a Table),
        Item(&'a Item),
        Value(&'a Value),
    }
    let mut node = Node::Table(root);
    let mut key_span = None;
    for seg in path {
        node = match (node, seg) {
            (Node::Table(t), Seg::Key(k)) => {
                key_span = t.key(k).and_then(|k| k.span());
                Node::Item(t.get(k)?)
            }
            (Node::Item(Item::Table(t)), Seg::Key(k)) => {
                key_span = t.key(k).and_then(|k| k.span());
                Node::Item(t.get(k)?)
            }
            (Node::Item(Item::ArrayOfTables(a)), Seg::Index(i)) => Node::Table(a.get(*i)?),
            (Node::Item(Item::Value(v)) | Node::Value(v), seg) => match (v, seg) {
                (Value::Array(a), Seg::Index(i)) => Node::Value(a.get(*i)?),
                (Value::InlineTable(t), Seg::Key(k)) => {
                    key_span = t.key(k).and_then(|k| k.span());
                    Node::Value(t.get(k)?)
                }
                _ => return None,
            },
            _ => return None,
        };
    }
    let own = match node {
        Node::Table(t) => t.span(),
        Node::Item(i) => i.span(),
        Node::Value(v) => v.span(),
    };
    own.or(key_span)
}

fn remove(root: &mut Table, path: &[Seg]) -> bool {
    fn in_table(t: &mut Table, path: &[Seg]) -> bool {
        match path {
            [Seg::Key(k)] => t.remove(k).is_some(),
            [Seg::Key(k), rest @ ..] => t.get_mut(k).is_some_and(|i| in_item(i, rest)),
            _ => false,
        }
    }
    fn in_item(item: &mut Item, path: &[Seg]) -> bool {
        match item {
            Item::Table(t) => in_table(t, path),
            Item::ArrayOfTables(a) => match path {
                [Seg::Index(i)] if *i < a.len() => {
                    a.remove(*i);
                    true
                }
                [Seg::Index(i), rest @ ..] => a.get_mut(*i).is_some_and(|t| in_table(t, rest)),
                _ => false,
            },
            Item::Value(v) => in_value(v, path),
            Item::None => false,
        }
    }
    fn in_value(v: &mut Value, path: &[Seg]) -> bool {
        match (v, path) {
            (Value::Array(a), [Seg::Index(i)]) if *i < a.len() => {
                a.remove(*i);
                true
            }
            (Value::Array(a), [Seg::Index(i), rest @ ..]) => {
                a.get_mut(*i).is_some_and(|v| in_value(v, rest))
            }
            (Value::InlineTable(t), [Seg::Key(k)]) => t.remove(k).is_some(),
            (Value::InlineTable(t), [Seg::Key(k), rest @ ..]) => {
                t.get_mut(k).is_some_and(|v| in_value(v, rest))
            }
            _ => false,
        }
    }
    in_table(root, path)
}

/// Map the old flat vault keys onto `[vault]` (values keep their spans, so errors still
/// point at what the user wrote). Returns conflicts as (offset, key, reason).
fn normalize_legacy(root: &mut Table) -> Vec<(usize, String, String)> {
    let mut conflicts = Vec::new();
    if let Some(Item::Value(Value::Boolean(_))) = root.get("vault") {
        if let Some(v) = root.remove("vault") {
            let mut t = Table::new();
            t.set_implicit(true);
            t.insert("enabled", v);
            root.insert("vault", Item::Table(t));
        }
    }
    for (old, new) in LEGACY_VAULT {
        if !root.contains_key(old) {
            continue;
        }
        let off = root.key(old).and_then(|k| k.span()).map_or(0, |s| s.start);
        let Some(value) = root.remove(old) else {
            continue;
        };
        if !root.contains_key("vault") {
            let mut t = Table::new();
            t.set_implicit(true);
            root.insert("vault", Item::Table(t));
        }
        match root.get_mut("vault") {
            Some(Item::Table(t)) => {
                if t.contains_key(new) {
                    conflicts.push((
                        off,
                        old.to_string(),
                        format!(
                            "set twice: `{old}` is the old spelling of [vault] `{new}`, which \
                             is also set: keep only `{new}` in [vault]"
                        ),
                    ));
                } else {
                    t.insert(new, value);
                }
            }
            Some(Item::Value(Value::InlineTable(t))) => {
                if t.contains_key(new) {
                    conflicts.push((
                        off,
                        old.to_string(),
                        format!(
                            "set twice: `{old}` is the old spelling of vault.{new}, which is \
                             also set: keep only vault.{new}"
                        ),
                    ));
                } else if let Item::Value(v) = value {
                    t.insert(*new, v);
                }
            }
            // `vault` has a wrong type: serde reports that; drop the old key silently.
            _ => {}
        }
    }
    conflicts
}

/// The key a "missing field `x`" message is about.
fn missing_key(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")
        .and_then(|r| r.split('`').next())
}

/// Serde's messages made into what to do.
fn reason(message: &str, canonical: Option<&[Seg]>, shown: &str, defaults: &toml::Value) -> String {
    let friendly = message
        .replace("expected usize", "expected a whole number")
        .replace("expected u64", "expected a whole number")
        .replace("expected u32", "expected a whole number")
        .replace("expected path string", "expected a path in quotes")
        .replace("expected a sequence", "expected an array")
        .replace("unknown field", "unknown key")
        .replace("missing field", "missing key")
        .replace(
            "invalid socket address syntax",
            "not an address: write IP:PORT, like \"127.0.0.1:9464\"",
        )
        .replace(
            "wanted string or table",
            "expected one of the words this key takes, in quotes",
        );
    let friendly = match friendly.find("expected struct ") {
        Some(i) => format!("{}expected a table", &friendly[..i]),
        None => friendly,
    };
    if friendly.starts_with("unknown key") {
        return format!("{friendly}: remove it or correct its spelling");
    }
    if friendly.starts_with("unknown variant") {
        return format!("{friendly}: use one of these");
    }
    if friendly.starts_with("missing key") {
        return format!("{friendly}: add it to this table (or remove the table)");
    }
    if canonical.is_some_and(|p| p == [Seg::Key("vault".into())]) {
        return format!("{friendly}: write `vault = true` / `vault = false`, or a [vault] table");
    }
    // An example from the defaults, when there is one.
    let example = canonical.and_then(|p| {
        let mut v = defaults;
        let mut name = None;
        for s in p {
            match (s, v) {
                (Seg::Key(k), toml::Value::Table(t)) => {
                    v = t.get(k)?;
                    name = Some(k.as_str());
                }
                _ => return None,
            }
        }
        let value = match v {
            toml::Value::Array(a) if a.is_empty() => return None,
            toml::Value::Table(_) => return None,
            other => other.to_string(),
        };
        name?;
        let written = shown.rsplit('.').next().unwrap_or(shown);
        Some(format!("{written} = {value}"))
    });
    match example {
        Some(e) => format!("{friendly}; for example `{e}` (the default)"),
        None => friendly,
    }
}

fn parse_checked(text: &str, file: &Path, world_readable: bool) -> Result<Config, ConfigErrors> {
    let pos = Positions::new(text);
    let error_at = |offset: Option<usize>, key: String, reason: String| {
        let (line, column) = offset.map_or((0, 0), |o| pos.at(o));
        ConfigError {
            file: file.to_path_buf(),
            line,
            column,
            key,
            reason,
        }
    };
    let doc = match ImDocument::parse(text) {
        Ok(d) => d,
        Err(e) => {
            let off = e.span().map_or(0, |s| s.start);
            return Err(ConfigErrors::new(vec![error_at(
                Some(off),
                String::new(),
                format!(
                    "TOML syntax error: {}",
                    e.message().trim_end().replace('\n', "; ")
                ),
            )]));
        }
    };
    let original: &Table = doc.as_table();
    // The key as written, for an offset.
    let shown = |off: usize, fallback: &str| {
        find(original, off).map_or_else(|| fallback.to_string(), |p| path_string(&p))
    };
    let mut root = original.clone();
    let mut errors = Vec::new();
    for (off, key, reason) in normalize_legacy(&mut root) {
        errors.push(error_at(Some(off), key, reason));
    }
    let defaults = toml::Value::try_from(Config::default()).unwrap_or(toml::Value::Boolean(false));

    let mut config = None;
    // Keys left out after an error: a "missing key" for one of them is not news.
    let mut removed: Vec<Vec<Seg>> = Vec::new();
    for _ in 0..MAX_ROUNDS {
        match toml_edit::de::from_document::<Config>(DocumentMut::from(root.clone())) {
            Ok(c) => {
                config = Some(c);
                break;
            }
            Err(e) => {
                let off = e.span().map(|s| s.start);
                let canonical = off.and_then(|o| find(&root, o));
                let key = match (off, &canonical) {
                    (Some(o), Some(c)) => shown(o, &path_string(c)),
                    _ => String::new(),
                };
                let consequence = canonical.as_ref().is_some_and(|c| {
                    missing_key(e.message()).is_some_and(|k| {
                        let mut p = c.clone();
                        p.push(Seg::Key(k.to_string()));
                        removed.contains(&p)
                    })
                });
                if !consequence {
                    let why = reason(e.message(), canonical.as_deref(), &key, &defaults);
                    errors.push(error_at(off, key, why));
                }
                match canonical {
                    Some(c) if remove(&mut root, &c) => {
                        removed.push(c);
                        continue;
                    }
                    _ => break,
                }
            }
        }
    }
    if let Some(c) = &config {
        for p in crate::validate::validate(c, world_readable) {
            let canonical = path_string(&p.path);
            let mut reason = p.reason.replace("{FILE}", &file.display().to_string());
            let exact = span_of(&root, &p.path).map(|s| s.start);
            let (off, key) = match exact {
                Some(o) => (Some(o), shown(o, &canonical)),
                None => {
                    // A default that does not fit what the file sets beside it: point at
                    // the nearest enclosing table the file writes.
                    reason = format!("not set, and its default does not fit: {reason}");
                    let near = (1..p.path.len())
                        .rev()
                        .find_map(|n| span_of(&root, &p.path[..n]))
                        .map(|s| s.start);
                    (near, canonical)
                }
            };
            errors.push(error_at(off, key, reason));
        }
    }
    match config {
        Some(c) if errors.is_empty() => Ok(c),
        _ => {
            if errors.is_empty() {
                errors.push(error_at(
                    None,
                    String::new(),
                    "cannot be read as a ward configuration".into(),
                ));
            }
            Err(ConfigErrors::new(errors))
        }
    }
}
