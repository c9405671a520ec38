//! Attack families and benign look-alike workloads.

use crate::formats;
use crate::scratch::{open_scratch, valid_rel, Checked, Scratch};
use crate::{io_err, Kind, ProfileInfo, RunOptions, RunReport, SimError};
use chacha20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use chacha20::ChaCha20;
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use std::collections::BTreeSet;
use std::fs::{self, Permissions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Ransom note dropped by `new-then-delete` in every directory it visits.
pub const RANSOM_NOTE_NAME: &str = "README_RESTORE.txt";
const RANSOM_NOTE: &str = "\
!!! ALL YOUR FILES HAVE BEEN ENCRYPTED !!!

Your documents, databases, images and backups are encrypted with a strong
algorithm and a unique key. Do not rename or modify the encrypted files.

(This note was written by ward-sim, a SAFE ransomware SIMULATOR, inside a
scratch directory. No real attacker is involved. Restore with ward.)
";

macro_rules! p {
    ($name:literal, $kind:ident, $desc:literal) => {
        ProfileInfo {
            name: $name,
            kind: Kind::$kind,
            description: $desc,
        }
    };
}

static PROFILES: &[ProfileInfo] = &[
    p!("inplace", Attack, "open each file read-write and overwrite it with ChaCha20 ciphertext of the same length"),
    p!("new-then-delete", Attack, "WannaCry-like: write FILE.WNCRY (encrypted), delete FILE, drop README_RESTORE.txt in every directory"),
    p!("openssl", Attack, "per file run `openssl enc -aes-256-cbc -pbkdf2` to FILE.enc, then `rm FILE` (child processes)"),
    p!("intermittent", Attack, "encrypt only the first 4 KiB of each file in place"),
    p!("fork-per-file", Attack, "one child process per file (`ward simulate __child`), each writes FILE.locked and deletes FILE"),
    p!("rename-first", Attack, "rename FILE to FILE.locked, then overwrite it in place with ciphertext"),
    p!("truncate-rewrite", Attack, "read FILE, truncate it to zero, write the ciphertext"),
    p!("header-preserving", Attack, "keep the first min(1 KiB, half) bytes (magic numbers survive), encrypt the rest in place"),
    p!("intermittent-blocks", Attack, "encrypt one 4 KiB block every 64 KiB in place"),
    p!("armoured", Attack, "replace each file with base64 text of its ciphertext (low-entropy output)"),
    p!("multi-threaded", Attack, "4 threads encrypting files in place concurrently"),
    p!("slow", Attack, "encrypt in place one file every 3 seconds (or --delay if longer)"),
    p!("mmap", Attack, "encrypt files in place through a shared writable memory mapping"),
    p!("gpg", Attack, "per file run `gpg --symmetric` to FILE.gpg, then `rm FILE`"),
    p!("archive-then-wipe", Attack, "tar all files, encrypt the archive, overwrite originals with zeros and delete them"),
    p!("gzip", Benign, "gzip the corpus files, then gunzip them back (byte-identical)"),
    p!("tar", Benign, "`tar czf` the corpus into a new archive inside the directory"),
    p!("cp", Benign, "`cp -a` the largest subtree to a new sibling directory"),
    p!("git", Benign, "copy a subtree into a new directory, git init, add, commit and gc it"),
    p!("sqlite", Benign, "many transactions of bulk inserts with random blobs into a corpus SQLite database"),
    p!("random-files", Benign, "create 100 new files of random bytes in a new directory"),
    p!("zstd", Benign, "zstd --rm the corpus files, then decompress them back"),
    p!("xz", Benign, "xz the corpus files, then decompress them back"),
    p!("zip", Benign, "`zip` the corpus into a new archive inside the directory"),
    p!("encrypted-backup", Benign, "`tar | openssl enc` the corpus into ONE new encrypted file, originals kept"),
    p!("rsync", Benign, "`rsync -a` the largest subtree to a new sibling directory"),
    p!("editor-save", Benign, "edit text files the way editors save: write a temp file, then rename it over the original"),
    p!("logrotate", Benign, "rotate logs: FILE.log -> FILE.log.1 (gzipped), new empty FILE.log"),
    p!("mass-delete", Benign, "delete every corpus file of the largest subtree with one `rm`"),
    p!("image-reencode", Benign, "decode and re-encode every PNG with another filter and compression level"),
    p!("dicom-reencode", Benign, "re-encode DICOM images to Deflated Explicit VR Little Endian (temp + rename)"),
    p!("one-file-encrypt", Benign, "a person encrypting one document with openssl, keeping the original"),
];

/// Every profile, attacks first.
pub fn profiles() -> &'static [ProfileInfo] {
    PROFILES
}

type ProfileFn = fn(&mut Ctx<'_>) -> Result<(), SimError>;

fn dispatch(name: &str) -> Option<ProfileFn> {
    Some(match name {
        "inplace" => p_inplace,
        "new-then-delete" => p_new_then_delete,
        "openssl" => p_openssl,
        "intermittent" => p_intermittent,
        "fork-per-file" => p_fork_per_file,
        "rename-first" => p_rename_first,
        "truncate-rewrite" => p_truncate_rewrite,
        "header-preserving" => p_header_preserving,
        "intermittent-blocks" => p_intermittent_blocks,
        "armoured" => p_armoured,
        "multi-threaded" => p_multi_threaded,
        "slow" => p_slow,
        "mmap" => p_mmap,
        "gpg" => p_gpg,
        "archive-then-wipe" => p_archive_then_wipe,
        "gzip" => b_gzip,
        "tar" => b_tar,
        "cp" => b_cp,
        "git" => b_git,
        "sqlite" => b_sqlite,
        "random-files" => b_random_files,
        "zstd" => b_zstd,
        "xz" => b_xz,
        "zip" => b_zip,
        "encrypted-backup" => b_encrypted_backup,
        "rsync" => b_rsync,
        "editor-save" => b_editor_save,
        "logrotate" => b_logrotate,
        "mass-delete" => b_mass_delete,
        "image-reencode" => b_image_reencode,
        "dicom-reencode" => b_dicom_reencode,
        "one-file-encrypt" => b_one_file_encrypt,
        _ => return None,
    })
}

/// Run profile `name` against the scratch directory `dir`.
pub fn run(name: &str, dir: &Path, opts: &RunOptions) -> Result<RunReport, SimError> {
    let info = PROFILES
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| SimError::UnknownProfile(name.to_string()))?;
    let f = dispatch(name).ok_or_else(|| SimError::UnknownProfile(name.to_string()))?;
    let s = open_scratch(dir)?;
    let mut c = Ctx::new(s, opts, info);
    eprintln!(
        "ward-sim {}: {} profile in {}",
        info.name,
        info.kind,
        c.s.root().display()
    );
    f(&mut c)?;
    let rep = c.finish();
    eprintln!(
        "ward-sim {}: done: {} files touched, {} created, {} deleted, {} processes, {} ms",
        rep.profile,
        rep.files_touched.len(),
        rep.files_created.len(),
        rep.files_deleted.len(),
        rep.processes_spawned,
        rep.duration_ms
    );
    Ok(rep)
}

// ---------------------------------------------------------------- context

pub(crate) struct Ctx<'a> {
    s: Scratch,
    opts: &'a RunOptions,
    info: &'static ProfileInfo,
    rng: StdRng,
    key: [u8; 32],
    touched: Vec<String>,
    touched_set: BTreeSet<String>,
    created: Vec<String>,
    created_set: BTreeSet<String>,
    spawned: usize,
    bytes: u64,
    notes: Vec<String>,
    start: Instant,
}

impl<'a> Ctx<'a> {
    fn new(s: Scratch, opts: &'a RunOptions, info: &'static ProfileInfo) -> Self {
        let mut rng = StdRng::from_entropy();
        let mut key = [0u8; 32];
        rng.fill_bytes(&mut key);
        Ctx {
            s,
            opts,
            info,
            rng,
            key,
            touched: Vec::new(),
            touched_set: BTreeSet::new(),
            created: Vec::new(),
            created_set: BTreeSet::new(),
            spawned: 0,
            bytes: 0,
            notes: Vec::new(),
            start: Instant::now(),
        }
    }

    fn finish(self) -> RunReport {
        let files_created = self
            .created
            .iter()
            .filter(|r| !self.s.is_free(r))
            .cloned()
            .collect();
        let files_deleted = self
            .touched
            .iter()
            .filter(|r| self.s.is_free(r))
            .cloned()
            .collect();
        RunReport {
            profile: self.info.name.to_string(),
            kind: self.info.kind,
            files_touched: self.touched,
            files_created,
            files_deleted,
            processes_spawned: self.spawned,
            bytes_written: self.bytes,
            duration_ms: self.start.elapsed().as_millis() as u64,
            notes: self.notes,
        }
    }

    fn touch(&mut self, rel: &str) {
        if self.info.kind == Kind::Attack {
            mark_first_damage();
        }
        if self.touched_set.insert(rel.to_string()) {
            self.touched.push(rel.to_string());
        }
    }

    fn create(&mut self, rel: &str) {
        if self.created_set.insert(rel.to_string()) {
            self.created.push(rel.to_string());
        }
    }

    fn note(&mut self, n: impl Into<String>) {
        self.notes.push(n.into());
    }

    fn limit(&self, mut v: Vec<String>) -> Vec<String> {
        if let Some(m) = self.opts.max_files {
            v.truncate(m);
        }
        v
    }

    fn nothing(&self, reason: &str) -> SimError {
        SimError::NothingToDo {
            profile: self.info.name.to_string(),
            dir: self.s.root().to_path_buf(),
            reason: reason.to_string(),
        }
    }

    /// Corpus files to work on (walk order, limited by max_files).
    fn targets(&self) -> Result<Vec<String>, SimError> {
        let t = self.limit(self.s.corpus_targets()?);
        if t.is_empty() {
            return Err(self.nothing("no corpus files listed in the marker are left"));
        }
        Ok(t)
    }

    fn targets_where(&self, f: impl Fn(&str) -> bool, what: &str) -> Result<Vec<String>, SimError> {
        let t: Vec<String> = self
            .s
            .corpus_targets()?
            .into_iter()
            .filter(|r| f(r))
            .collect();
        let t = self.limit(t);
        if t.is_empty() {
            return Err(self.nothing(&format!("no {what} left in the corpus")));
        }
        Ok(t)
    }

    // `is_multiple_of` is newer than the workspace MSRV (1.80).
    #[allow(clippy::manual_is_multiple_of)]
    fn pace(&self, i: usize, n: usize, rel: &str, delay: Duration) {
        if i > 0 && !delay.is_zero() {
            std::thread::sleep(delay);
        }
        if delay >= Duration::from_millis(200) || n <= 20 || i % 25 == 0 || i + 1 == n {
            eprintln!("ward-sim {}: [{}/{}] {}", self.info.name, i + 1, n, rel);
        }
    }

    fn encrypt(&mut self, buf: &mut [u8]) -> [u8; 12] {
        let mut nonce = [0u8; 12];
        self.rng.fill_bytes(&mut nonce);
        chacha(&self.key, &nonce, 0, buf);
        nonce
    }

    fn random_bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        self.rng.fill_bytes(&mut v);
        v
    }

    fn password(&mut self) -> String {
        let b: [u8; 24] = self.rng.gen();
        hex::encode(b)
    }

    /// Run an external tool, failing with its stderr if it does not succeed.
    fn exec(&mut self, mut cmd: Command) -> Result<(), SimError> {
        self.spawned += 1;
        let out = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| tool_failed(&cmd, e.to_string()))?;
        if !out.status.success() {
            return Err(tool_failed(&cmd, describe_failure(&out)));
        }
        Ok(())
    }

    /// Run a tool with `input` on stdin.
    fn exec_stdin(&mut self, mut cmd: Command, input: Vec<u8>) -> Result<(), SimError> {
        self.spawned += 1;
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| tool_failed(&cmd, e.to_string()))?;
        let mut stdin = child.stdin.take().expect("piped stdin");
        let writer = std::thread::spawn(move || stdin.write_all(&input));
        let out = child
            .wait_with_output()
            .map_err(|e| tool_failed(&cmd, e.to_string()))?;
        let _ = writer.join();
        if !out.status.success() {
            return Err(tool_failed(&cmd, describe_failure(&out)));
        }
        Ok(())
    }

    /// Delete a checked pre-existing file (re-checked immediately before).
    fn remove(&mut self, rel: &str) -> Result<(), SimError> {
        if let Some(c) = self.s.check_existing(rel)? {
            fs::remove_file(&c.abs).map_err(io_err(&c.abs))?;
        }
        Ok(())
    }

    /// Drop the identical ransom note in the directory of `rel`, once.
    fn drop_note(&mut self, rel: &str, visited: &mut BTreeSet<String>) -> Result<(), SimError> {
        let dir = parent_rel(rel);
        if !visited.insert(dir.clone()) {
            return Ok(());
        }
        let note = join_rel(&dir, RANSOM_NOTE_NAME);
        if !self.s.is_free(&note) {
            return Ok(());
        }
        let mut f = self.s.create_new(&note)?;
        f.write_all(RANSOM_NOTE.as_bytes()).map_err(io_err(&note))?;
        self.bytes += RANSOM_NOTE.len() as u64;
        self.create(&note);
        Ok(())
    }

    /// Read a whole checked file.
    fn read_all(&self, c: &Checked) -> Result<Vec<u8>, SimError> {
        let mut f = self.s.open_checked(c, false)?;
        let mut buf = Vec::with_capacity(c.meta.len() as usize);
        f.read_to_end(&mut buf).map_err(io_err(&c.abs))?;
        Ok(buf)
    }

    /// Write a new file created with O_EXCL.
    fn write_new(&mut self, rel: &str, data: &[u8]) -> Result<(), SimError> {
        let mut f = self.s.create_new(rel)?;
        self.create(rel);
        f.write_all(data).map_err(io_err(self.s.root().join(rel)))?;
        self.bytes += data.len() as u64;
        Ok(())
    }

    /// For each target: pace, check, then call `f` (skipping unsafe paths).
    fn each(
        &mut self,
        targets: &[String],
        delay: Duration,
        mut f: impl FnMut(&mut Self, &str, Checked) -> Result<(), SimError>,
    ) -> Result<(), SimError> {
        for (i, rel) in targets.iter().enumerate() {
            self.pace(i, targets.len(), rel, delay);
            match self.s.check_existing(rel)? {
                Some(c) => f(self, rel, c)?,
                None => self.note(format!(
                    "skipped {rel}: not a regular file inside the scratch directory"
                )),
            }
        }
        Ok(())
    }

    fn tool(&self, name: &'static str, package: &'static str) -> Result<PathBuf, SimError> {
        find_tool(name).ok_or(SimError::MissingTool {
            tool: name,
            package,
        })
    }

    /// Top-level directory holding the most corpus files.
    fn largest_subtree(&self) -> Result<String, SimError> {
        let mut counts = std::collections::BTreeMap::<String, usize>::new();
        for r in self.s.corpus_targets()? {
            if let Some((top, _)) = r.split_once('/') {
                *counts.entry(top.to_string()).or_default() += 1;
            }
        }
        counts
            .into_iter()
            .max_by_key(|(name, n)| (*n, std::cmp::Reverse(name.clone())))
            .map(|(name, _)| name)
            .ok_or_else(|| self.nothing("no corpus subdirectory left"))
    }
}

fn chacha(key: &[u8; 32], nonce: &[u8; 12], offset: u64, buf: &mut [u8]) {
    let mut c = ChaCha20::new(key.into(), nonce.into());
    c.seek(offset);
    c.apply_keystream(buf);
}

fn tool_failed(cmd: &Command, detail: String) -> SimError {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    let mut secret_next = false;
    for a in cmd.get_args() {
        let a = a.to_string_lossy();
        s.push(' ');
        // never echo passwords
        if a.starts_with("pass:") {
            s.push_str("pass:***");
        } else if secret_next {
            s.push_str("***");
        } else {
            s.push_str(&a);
        }
        secret_next = a == "--passphrase";
        if s.len() > 300 {
            s.push_str(" ...");
            break;
        }
    }
    SimError::ToolFailed { command: s, detail }
}

fn describe_failure(out: &std::process::Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr);
    let err = err.trim();
    let tail: String = err
        .chars()
        .rev()
        .take(600)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!(
        "{} ({})",
        out.status,
        if tail.is_empty() {
            "no error output"
        } else {
            &tail
        }
    )
}

/// Search PATH (and the usual system directories) for an executable.
pub(crate) fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    for d in ["/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"] {
        dirs.push(PathBuf::from(d));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| {
        fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    })
}

fn parent_rel(rel: &str) -> String {
    rel.rsplit_once('/')
        .map(|(d, _)| d.to_string())
        .unwrap_or_default()
}

fn join_rel(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

fn file_name(rel: &str) -> &str {
    rel.rsplit('/').next().unwrap_or(rel)
}

/// Ransomware-style container: magic, 256-byte "encrypted key" blob,
/// nonce, original size, then the ciphertext.
fn locked_blob(magic: &[u8; 8], blob: &[u8], nonce: &[u8; 12], ciphertext: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ciphertext.len() + 300);
    out.extend_from_slice(magic);
    out.extend_from_slice(&(blob.len() as u32).to_le_bytes());
    out.extend_from_slice(blob);
    out.extend_from_slice(nonce);
    out.extend_from_slice(&(ciphertext.len() as u64).to_le_bytes());
    out.extend_from_slice(ciphertext);
    out
}

// ---------------------------------------------------------------- attacks

fn encrypt_in_place(c: &mut Ctx<'_>, rel: &str, chk: Checked) -> Result<(), SimError> {
    let mut f = c.s.open_checked(&chk, true)?;
    let mut buf = Vec::with_capacity(chk.meta.len() as usize);
    f.read_to_end(&mut buf).map_err(io_err(&chk.abs))?;
    c.encrypt(&mut buf);
    f.seek(SeekFrom::Start(0)).map_err(io_err(&chk.abs))?;
    f.write_all(&buf).map_err(io_err(&chk.abs))?;
    c.bytes += buf.len() as u64;
    c.touch(rel);
    Ok(())
}

fn p_inplace(c: &mut Ctx<'_>) -> Result<(), SimError> {
    let t = c.targets()?;
    c.each(&t, c.opts.delay, encrypt_in_place)
}

fn p_slow(c: &mut Ctx<'_>) -> Result<(), SimError> {
    let t = c.targets()?;
    let delay = c.opts.delay.max(Duration::from_secs(3));
    c.each(&t, delay, encrypt_in_place)
}

fn p_new_then_delete(c: &mut Ctx<'_>) -> Result<(), SimError> {
    let t = c.targets()?;
    let mut visited = BTreeSet::new();
    c.each(&t, c.opts.delay, |c, rel, chk| {
        c.drop_note(rel, &mut visited)?;
        let out = format!("{rel}.WNCRY");
        if !c.s.is_free(&out) {
            c.note(format!("skipped {rel}: {out} already exists"));
            return Ok(());
        }
        let mut data = c.read_all(&chk)?;
        let nonce = c.encrypt(&mut data);
        let blob = c.random_bytes(256);
        c.write_new(&out, &locked_blob(b"WANACRY!", &blob, &nonce, &data))?;
        c.remove(rel)?;
        c.touch(rel);
        Ok(())
    })
}

fn p_openssl(c: &mut Ctx<'_>) -> Result<(), SimError> {
    let openssl = c.tool("openssl", "openssl")?;
    let rm = c.tool("rm", "coreutils")?;
    let pass = c.password();
    let t = c.targets()?;
    c.each(&t, c.opts.delay, |c, rel, chk| {
        let out = format!("{rel}.enc");
        if !c.s.is_free(&out) {
            c.note(format!("skipped {rel}: {out} already exists"));
            return Ok(());
        }
        let out_abs = c.s.prepare_new(&out)?;
        let mut cmd = Command::new(&openssl);
        cmd.args(["enc", "-aes-256-cbc", "-salt", "-pbkdf2", "-pass"])
            .arg(format!("pass:{pass}"))
            .arg("-in")
            .arg(&chk.abs)
            .arg("-out")
            .arg(&out_abs);
        c.create(&out);
        c.exec(cmd)?;
        if c.s.check_existing(rel)?.is_some() {
            let mut cmd = Command::new(&rm);
            cmd.arg("-f").arg("--").arg(&chk.abs);
            c.exec(cmd)?;
        }
        c.touch(rel);
        Ok(())
    })
}

fn p_intermittent(c: &mut Ctx<'_>) -> Result<(), SimError> {
    let t = c.targets()?;
    c.each(&t, c.opts.delay, |c, rel, chk| {
        let mut f = c.s.open_checked(&chk, true)?;
        let mut buf = vec![0u8; 4096.min(chk.meta.len() as usize)];
        f.read_exact(&mut buf).map_err(io_err(&chk.abs))?;
        c.encrypt(&mut buf);
        f.seek(SeekFrom::Start(0)).map_err(io_err(&chk.abs))?;
        f.write_all(&buf).map_err(io_err(&chk.abs))?;
        c.bytes += buf.len() as u64;
        c.touch(rel);
        Ok(())
    })
}

fn p_fork_per_file(c: &mut Ctx<'_>) -> Result<(), SimError> {
    let exe = c.opts.exe.clone();
    if !exe.is_file() {
        return Err(SimError::ToolFailed {
            command: exe.display().to_string(),
            detail: "the ward executable for fork-per-file children was not found; pass the path of the `ward` binary in RunOptions::exe".into(),
        });
    }
    let root = c.s.root().to_path_buf();
    let t = c.targets()?;
    c.each(&t, c.opts.delay, |c, rel, _chk| {
        let mut cmd = Command::new(&exe);
        cmd.args(["simulate", "__child", "--dir"])
            .arg(&root)
            .arg(rel);
        c.exec(cmd)?;
        c.touch(rel);
        c.create(&format!("{rel}.locked"));
        Ok(())
    })
}

/// One fork-per-file child: encrypt `rel` (a corpus file listed in the
/// marker of `dir`) into `rel.locked` — magic `WARDLOCK`, a 256-byte key blob,
/// the nonce, the size and the ChaCha20 ciphertext — then delete `rel`.
pub fn child_one(dir: &Path, rel: &Path) -> Result<(), SimError> {
    let s = open_scratch(dir)?;
    // Accept REL relative to DIR, or an absolute path inside the scratch root.
    let rel = rel.strip_prefix(s.root()).unwrap_or(rel);
    let rel_str = rel
        .to_str()
        .map(|r| r.trim_start_matches("./").to_string())
        .unwrap_or_default();
    if !valid_rel(&rel_str) || !s.is_corpus_file(&rel_str) {
        return Err(SimError::UnsafePath {
            path: rel.to_path_buf(),
            reason: "it is not a corpus file listed in the scratch marker".into(),
        });
    }
    let chk = s
        .check_existing(&rel_str)?
        .ok_or_else(|| SimError::UnsafePath {
            path: s.root().join(&rel_str),
            reason: "it is missing, a symlink, or not a regular file inside the scratch directory"
                .into(),
        })?;
    let out = format!("{rel_str}.locked");
    let mut rng = StdRng::from_entropy();
    let mut key = [0u8; 32];
    let mut nonce = [0u8; 12];
    let mut blob = vec![0u8; 256];
    rng.fill_bytes(&mut key);
    rng.fill_bytes(&mut nonce);
    rng.fill_bytes(&mut blob);
    let mut data = Vec::new();
    s.open_checked(&chk, false)?
        .read_to_end(&mut data)
        .map_err(io_err(&chk.abs))?;
    chacha(&key, &nonce, 0, &mut data);
    let mut f = s.create_new(&out)?;
    f.write_all(&locked_blob(b"WARDLOCK", &blob, &nonce, &data))
        .map_err(io_err(s.root().join(&out)))?;
    drop(f);
    if let Some(c) = s.check_existing(&rel_str)? {
        mark_first_damage();
        fs::remove_file(&c.abs).map_err(io_err(&c.abs))?;
    }
    Ok(())
}

/// Log, once per process on stderr, the wall-clock time of the attacker's first damaging
/// operation on a pre-existing file (`ward eval` measures containment latency from it, not
/// from ward's own first counted event).
pub fn mark_first_damage() {
    use std::sync::atomic::{AtomicBool, Ordering};
    static DONE: AtomicBool = AtomicBool::new(false);
    if !DONE.swap(true, Ordering::Relaxed) {
        let ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        eprintln!("{FIRST_DAMAGE_TAG} {ns}");
    }
}

/// The stderr tag of [`mark_first_damage`].
pub const FIRST_DAMAGE_TAG: &str = "ward-sim: first-damage-unix-ns";

/// The earliest first-damage time logged in `log` (unix ns), if any.
pub fn first_damage_in(log: &str) -> Option<u128> {
    log.lines()
        .filter_map(|l| l.strip_prefix(FIRST_DAMAGE_TAG))
        .filter_map(|v| v.trim().parse::<u128>().ok())
        .min()
}

fn p_rename_first(c: &mut Ctx<'_>) -> Result<(), SimError> {
    let t = c.targets()?;
    c.each(&t, c.opts.delay, |c, rel, chk| {
        let out = format!("{rel}.locked");
        if !c.s.is_free(&out) {
            c.note(format!("skipped {rel}: {out} already exists"));
            return Ok(());
        }
        let out_abs = c.s.prepare_new(&out)?;
        fs::rename(&chk.abs, &out_abs).map_err(io_err(&chk.abs))?;
        c.touch(rel);
        c.create(&out);
        if let Some(nc) = c.s.check_existing(&out)? {
            encrypt_in_place(c, rel, nc)?;
        }
        Ok(())
    })
}

fn p_truncate_rewrite(c: &mut Ctx<'_>) -> Result<(), SimError> {
    let t = c.targets()?;
    c.each(&t, c.opts.delay, |c, rel, chk| {
        let mut data = c.read_all(&chk)?;
        c.encrypt(&mut data);
        let mut f = c.s.open_checked(&chk, true)?;
        f.set_len(0).map_err(io_err(&chk.abs))?;
        f.write_all(&data).map_err(io_err(&chk.abs))?;
        c.bytes += data.len() as u64;
        c.touch(rel);
        Ok(())
    })
}

fn p_header_preserving(c: &mut Ctx<'_>) -> Result<(), SimError> {
    let t = c.targets()?;
    c.each(&t, c.opts.delay, |c, rel, chk| {
        let mut f = c.s.open_checked(&chk, true)?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf).map_err(io_err(&chk.abs))?;
        let keep = 1024.min(buf.len() / 2);
        c.encrypt(&mut buf[keep..]);
        f.seek(SeekFrom::Start(keep as u64))
            .map_err(io_err(&chk.abs))?;
        f.write_all(&buf[keep..]).map_err(io_err(&chk.abs))?;
        c.bytes += (buf.len() - keep) as u64;
        c.touch(rel);
        Ok(())
    })
}

fn p_intermittent_blocks(c: &mut Ctx<'_>) -> Result<(), SimError> {
    const BLOCK: u64 = 4096;
    const STRIDE: u64 = 64 * 1024;
    let t = c.targets()?;
    c.each(&t, c.opts.delay, |c, rel, chk| {
        let mut f = c.s.open_checked(&chk, true)?;
        let len = chk.meta.len();
        let mut nonce = [0u8; 12];
        c.rng.fill_bytes(&mut nonce);
        let mut off = 0;
        while off < len {
            let n = BLOCK.min(len - off) as usize;
            let mut buf = vec![0u8; n];
            f.seek(SeekFrom::Start(off)).map_err(io_err(&chk.abs))?;
            f.read_exact(&mut buf).map_err(io_err(&chk.abs))?;
            chacha(&c.key, &nonce, off, &mut buf);
            f.seek(SeekFrom::Start(off)).map_err(io_err(&chk.abs))?;
            f.write_all(&buf).map_err(io_err(&chk.abs))?;
            c.bytes += n as u64;
            off += STRIDE;
        }
        c.touch(rel);
        Ok(())
    })
}

fn p_armoured(c: &mut Ctx<'_>) -> Result<(), SimError> {
    let t = c.targets()?;
    c.each(&t, c.opts.delay, |c, rel, chk| {
        let mut data = c.read_all(&chk)?;
        c.encrypt(&mut data);
        let text = formats::base64_lines(&data);
        let mut f = c.s.open_checked(&chk, true)?;
        f.set_len(0).map_err(io_err(&chk.abs))?;
        f.write_all(&text).map_err(io_err(&chk.abs))?;
        c.bytes += text.len() as u64;
        c.touch(rel);
        Ok(())
    })
}

fn p_multi_threaded(c: &mut Ctx<'_>) -> Result<(), SimError> {
    let t = c.targets()?;
    let queue = std::sync::Mutex::new(t.iter().cloned().collect::<std::collections::VecDeque<_>>());
    let n = t.len();
    let done = std::sync::Mutex::new(Vec::<String>::new());
    let s = &c.s;
    let key = c.key;
    let delay = c.opts.delay;
    let name = c.info.name;
    let bytes = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|scope| -> Result<(), SimError> {
        let mut handles = Vec::new();
        for _ in 0..4 {
            handles.push(scope.spawn(|| -> Result<(), SimError> {
                let mut rng = StdRng::from_entropy();
                let mut first = true;
                loop {
                    let Some(rel) = queue.lock().unwrap().pop_front() else {
                        return Ok(());
                    };
                    if !first && !delay.is_zero() {
                        std::thread::sleep(delay);
                    }
                    first = false;
                    let Some(chk) = s.check_existing(&rel)? else {
                        continue;
                    };
                    let mut f = s.open_checked(&chk, true)?;
                    let mut buf = Vec::new();
                    f.read_to_end(&mut buf).map_err(io_err(&chk.abs))?;
                    let mut nonce = [0u8; 12];
                    rng.fill_bytes(&mut nonce);
                    chacha(&key, &nonce, 0, &mut buf);
                    f.seek(SeekFrom::Start(0)).map_err(io_err(&chk.abs))?;
                    f.write_all(&buf).map_err(io_err(&chk.abs))?;
                    bytes.fetch_add(buf.len() as u64, std::sync::atomic::Ordering::Relaxed);
                    let mut d = done.lock().unwrap();
                    d.push(rel.clone());
                    if d.len() % 25 == 1 || d.len() == n {
                        eprintln!("ward-sim {name}: [{}/{n}] {rel}", d.len());
                    }
                }
            }));
        }
        for h in handles {
            h.join().expect("encryption thread panicked")?;
        }
        Ok(())
    })?;
    c.bytes += bytes.into_inner();
    for rel in done.into_inner().unwrap() {
        c.touch(&rel);
    }
    Ok(())
}

fn p_mmap(c: &mut Ctx<'_>) -> Result<(), SimError> {
    let t = c.targets()?;
    c.each(&t, c.opts.delay, |c, rel, chk| {
        if chk.meta.len() == 0 {
            return Ok(());
        }
        let f = c.s.open_checked(&chk, true)?;
        // SAFETY: the file was opened read-write by us, checked to be a regular
        // file inside the scratch directory, and nothing else in this process
        // maps or truncates it while the mapping lives. Another process
        // truncating it concurrently could raise SIGBUS; scratch files belong
        // to the simulator, so that is acceptable for a simulation.
        #[allow(unsafe_code)] // the `mmap` attack profile: memory-mapped writes are the point
        let mut map = unsafe { memmap2::MmapMut::map_mut(&f) }.map_err(io_err(&chk.abs))?;
        c.encrypt(&mut map[..]);
        map.flush().map_err(io_err(&chk.abs))?;
        c.bytes += map.len() as u64;
        c.touch(rel);
        Ok(())
    })
}

fn p_gpg(c: &mut Ctx<'_>) -> Result<(), SimError> {
    let gpg = c.tool("gpg", "gpg")?;
    let rm = c.tool("rm", "coreutils")?;
    let pass = c.password();
    let t = c.targets()?;
    let home_rel = c.s.unique(".gnupg-sim", "");
    let home = c.s.root().join(&home_rel);
    fs::create_dir(&home).map_err(io_err(&home))?;
    fs::set_permissions(&home, Permissions::from_mode(0o700)).map_err(io_err(&home))?;
    c.s.check_parent(&join_rel(&home_rel, "x"))?;
    let res = c.each(&t, c.opts.delay, |c, rel, chk| {
        let out = format!("{rel}.gpg");
        if !c.s.is_free(&out) {
            c.note(format!("skipped {rel}: {out} already exists"));
            return Ok(());
        }
        let out_abs = c.s.prepare_new(&out)?;
        let mut cmd = Command::new(&gpg);
        cmd.arg("--homedir")
            .arg(&home)
            .args([
                "--batch",
                "--quiet",
                "--no-tty",
                "--pinentry-mode",
                "loopback",
                "--no-symkey-cache",
                "--passphrase",
                &pass,
                "--symmetric",
                "--cipher-algo",
                "AES256",
                "--output",
            ])
            .arg(&out_abs)
            .arg(&chk.abs);
        c.create(&out);
        c.exec(cmd)?;
        if c.s.check_existing(rel)?.is_some() {
            let mut cmd = Command::new(&rm);
            cmd.arg("-f").arg("--").arg(&chk.abs);
            c.exec(cmd)?;
        }
        c.touch(rel);
        Ok(())
    });
    if let Some(gpgconf) = find_tool("gpgconf") {
        let _ = Command::new(gpgconf)
            .arg("--homedir")
            .arg(&home)
            .args(["--kill", "all"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    for f in c.s.walk_under(&home_rel)? {
        c.create(&f);
    }
    res
}

fn nul_list(rels: &[String]) -> Vec<u8> {
    let mut v = Vec::new();
    for r in rels {
        v.extend_from_slice(r.as_bytes());
        v.push(0);
    }
    v
}

fn p_archive_then_wipe(c: &mut Ctx<'_>) -> Result<(), SimError> {
    let tar = c.tool("tar", "tar")?;
    let t = c.targets()?;
    let archive = c.s.unique("archive", ".tar");
    let archive_abs = c.s.prepare_new(&archive)?;
    let mut cmd = Command::new(&tar);
    cmd.arg("cf")
        .arg(&archive_abs)
        .arg("-C")
        .arg(c.s.root())
        .args(["--null", "-T", "-"]);
    c.create(&archive);
    c.exec_stdin(cmd, nul_list(&t))?;
    eprintln!(
        "ward-sim {}: archived {} files into {archive}",
        c.info.name,
        t.len()
    );
    let locked = format!("{archive}.locked");
    let chk =
        c.s.check_existing(&archive)?
            .ok_or_else(|| c.nothing("tar did not produce the archive"))?;
    let mut data = c.read_all(&chk)?;
    let nonce = c.encrypt(&mut data);
    let blob = c.random_bytes(256);
    c.write_new(&locked, &locked_blob(b"WARDLOCK", &blob, &nonce, &data))?;
    c.remove(&archive)?;
    c.each(&t, c.opts.delay, |c, rel, chk| {
        let mut f = c.s.open_checked(&chk, true)?;
        let zeros = vec![0u8; chk.meta.len() as usize];
        f.write_all(&zeros).map_err(io_err(&chk.abs))?;
        f.sync_all().map_err(io_err(&chk.abs))?;
        drop(f);
        c.bytes += zeros.len() as u64;
        c.remove(rel)?;
        c.touch(rel);
        Ok(())
    })
}

// ---------------------------------------------------------------- benign

/// Compress each file with `tool` (replacing it with FILE`ext`), then
/// decompress them back; the corpus ends byte-identical.
fn compress_roundtrip(
    c: &mut Ctx<'_>,
    tool: &'static str,
    package: &'static str,
    ext: &str,
    compress: &[&str],
    decompress: &[&str],
) -> Result<(), SimError> {
    let exe = c.tool(tool, package)?;
    let t: Vec<String> = c
        .targets()?
        .into_iter()
        .filter(|r| !r.ends_with(ext) && c.s.is_free(&format!("{r}{ext}")))
        .collect();
    if t.is_empty() {
        return Err(c.nothing("no uncompressed corpus files left"));
    }
    let mut checked = Vec::new();
    for rel in &t {
        if let Some(chk) = c.s.check_existing(rel)? {
            checked.push((rel.clone(), chk.abs));
        }
    }
    eprintln!(
        "ward-sim {}: compressing {} files with {tool}",
        c.info.name,
        checked.len()
    );
    for chunk in checked.chunks(200) {
        let mut cmd = Command::new(&exe);
        cmd.args(compress).arg("--");
        for (_, abs) in chunk {
            cmd.arg(abs);
        }
        c.exec(cmd)?;
        for (rel, _) in chunk {
            c.touch(rel);
        }
        if !c.opts.delay.is_zero() {
            std::thread::sleep(c.opts.delay);
        }
    }
    eprintln!(
        "ward-sim {}: decompressing {} files",
        c.info.name,
        checked.len()
    );
    for chunk in checked.chunks(200) {
        let mut cmd = Command::new(&exe);
        cmd.args(decompress).arg("--");
        for (rel, _) in chunk {
            let z = format!("{rel}{ext}");
            if c.s.check_existing(&z)?.is_some() {
                cmd.arg(c.s.abs(&z)?);
            }
        }
        c.exec(cmd)?;
    }
    c.note(format!(
        "each file was replaced by a transient FILE{ext} and restored byte-identical"
    ));
    Ok(())
}

fn b_gzip(c: &mut Ctx<'_>) -> Result<(), SimError> {
    compress_roundtrip(c, "gzip", "gzip", ".gz", &["-q"], &["-d", "-q"])
}

fn b_zstd(c: &mut Ctx<'_>) -> Result<(), SimError> {
    compress_roundtrip(
        c,
        "zstd",
        "zstd",
        ".zst",
        &["-q", "--rm"],
        &["-d", "-q", "--rm"],
    )
}

fn b_xz(c: &mut Ctx<'_>) -> Result<(), SimError> {
    compress_roundtrip(c, "xz", "xz-utils", ".xz", &["-q", "-T1"], &["-d", "-q"])
}

fn b_tar(c: &mut Ctx<'_>) -> Result<(), SimError> {
    let tar = c.tool("tar", "tar")?;
    let t = c.targets()?;
    let out = c.s.unique("share-backup", ".tar.gz");
    let out_abs = c.s.prepare_new(&out)?;
    eprintln!(
        "ward-sim {}: tar czf {out} ({} files)",
        c.info.name,
        t.len()
    );
    let mut cmd = Command::new(&tar);
    cmd.arg("czf")
        .arg(&out_abs)
        .arg("-C")
        .arg(c.s.root())
        .args(["--null", "-T", "-"]);
    c.create(&out);
    c.exec_stdin(cmd, nul_list(&t))
}

fn b_zip(c: &mut Ctx<'_>) -> Result<(), SimError> {
    let zip = c.tool("zip", "zip")?;
    let t = c.targets()?;
    let out = c.s.unique("share-export", ".zip");
    let out_abs = c.s.prepare_new(&out)?;
    eprintln!("ward-sim {}: zip {out} ({} files)", c.info.name, t.len());
    let mut cmd = Command::new(&zip);
    cmd.current_dir(c.s.root())
        .args(["-q", "-y"])
        .arg(&out_abs)
        .arg("-@");
    let mut list = Vec::new();
    for r in &t {
        list.extend_from_slice(r.as_bytes());
        list.push(b'\n');
    }
    c.create(&out);
    c.exec_stdin(cmd, list)
}

fn b_encrypted_backup(c: &mut Ctx<'_>) -> Result<(), SimError> {
    let tar = c.tool("tar", "tar")?;
    let openssl = c.tool("openssl", "openssl")?;
    let t = c.targets()?;
    let out = c.s.unique("nightly-backup", ".tar.gz.enc");
    let out_abs = c.s.prepare_new(&out)?;
    let pass = c.password();
    eprintln!(
        "ward-sim {}: tar | openssl enc > {out} ({} files)",
        c.info.name,
        t.len()
    );
    let mut tcmd = Command::new(&tar);
    tcmd.arg("czf")
        .arg("-")
        .arg("-C")
        .arg(c.s.root())
        .args(["--null", "-T", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut tchild = tcmd
        .spawn()
        .map_err(|e| tool_failed(&tcmd, e.to_string()))?;
    let tar_out = tchild.stdout.take().expect("piped stdout");
    let mut ocmd = Command::new(&openssl);
    ocmd.args(["enc", "-aes-256-cbc", "-salt", "-pbkdf2", "-pass"])
        .arg(format!("pass:{pass}"))
        .arg("-out")
        .arg(&out_abs)
        .stdin(Stdio::from(tar_out))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c.create(&out);
    c.spawned += 2;
    let ochild = ocmd
        .spawn()
        .map_err(|e| tool_failed(&ocmd, e.to_string()))?;
    let mut stdin = tchild.stdin.take().expect("piped stdin");
    let list = nul_list(&t);
    let writer = std::thread::spawn(move || stdin.write_all(&list));
    let tres = tchild
        .wait_with_output()
        .map_err(|e| tool_failed(&tcmd, e.to_string()))?;
    let _ = writer.join();
    let ores = ochild
        .wait_with_output()
        .map_err(|e| tool_failed(&ocmd, e.to_string()))?;
    if !tres.status.success() {
        return Err(tool_failed(&tcmd, describe_failure(&tres)));
    }
    if !ores.status.success() {
        return Err(tool_failed(&ocmd, describe_failure(&ores)));
    }
    Ok(())
}

fn copy_subtree(
    c: &mut Ctx<'_>,
    tool: &'static str,
    package: &'static str,
) -> Result<(), SimError> {
    let exe = c.tool(tool, package)?;
    let sub = c.largest_subtree()?;
    let dest = c.s.unique(&format!("{sub}-copy"), "");
    let src_abs = c.s.abs(&sub)?;
    let dest_abs = c.s.abs(&dest)?;
    c.s.check_parent(&join_rel(&sub, "x"))?;
    eprintln!("ward-sim {}: {tool} {sub}/ -> {dest}/", c.info.name);
    let mut cmd = Command::new(&exe);
    if tool == "rsync" {
        cmd.arg("-a")
            .arg("--")
            .arg(format!("{}/", src_abs.display()))
            .arg(format!("{}/", dest_abs.display()));
    } else {
        cmd.arg("-a").arg("--").arg(&src_abs).arg(&dest_abs);
    }
    let res = c.exec(cmd);
    for f in c.s.walk_under(&dest)? {
        c.create(&f);
    }
    res
}

fn b_cp(c: &mut Ctx<'_>) -> Result<(), SimError> {
    copy_subtree(c, "cp", "coreutils")
}

fn b_rsync(c: &mut Ctx<'_>) -> Result<(), SimError> {
    copy_subtree(c, "rsync", "rsync")
}

fn b_git(c: &mut Ctx<'_>) -> Result<(), SimError> {
    let git = c.tool("git", "git")?;
    let sub = c.largest_subtree()?;
    let prefix = format!("{sub}/");
    let t = c.targets_where(|r| r.starts_with(&prefix), "files in the chosen subtree")?;
    let work = c.s.unique("git-work", "");
    eprintln!(
        "ward-sim {}: copying {} files of {sub}/ into {work}/ and committing",
        c.info.name,
        t.len()
    );
    c.each(&t, c.opts.delay, |c, rel, chk| {
        let data = c.read_all(&chk)?;
        c.write_new(&join_rel(&work, rel), &data)
    })?;
    let work_abs = c.s.abs(&work)?;
    let steps: [&[&str]; 4] = [
        &["init", "-q"],
        &["add", "-A"],
        &["commit", "-q", "-m", "Import of share snapshot"],
        &["gc", "-q"],
    ];
    let mut res = Ok(());
    for step in steps {
        let mut cmd = Command::new(&git);
        cmd.env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_INDEX_FILE")
            .args([
                "-c",
                "user.name=ward-sim",
                "-c",
                "user.email=ward-sim@example.invalid",
                "-c",
                "init.defaultBranch=main",
                "-c",
                "commit.gpgsign=false",
                "-c",
                "core.hooksPath=/dev/null",
                "-C",
            ])
            .arg(&work_abs)
            .args(step);
        res = c.exec(cmd);
        if res.is_err() {
            break;
        }
    }
    for f in c.s.walk_under(&work)? {
        c.create(&f);
    }
    res
}

fn b_sqlite(c: &mut Ctx<'_>) -> Result<(), SimError> {
    let t = c.targets_where(|r| r.ends_with(".sqlite"), "SQLite databases")?;
    let rel = t[0].clone();
    let chk =
        c.s.check_existing(&rel)?
            .ok_or_else(|| c.nothing("the SQLite database is not a regular file"))?;
    let map = |source| SimError::Sqlite {
        path: chk.abs.clone(),
        source,
    };
    let conn = rusqlite::Connection::open_with_flags(
        &chk.abs,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NOFOLLOW,
    )
    .map_err(map)?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS attachments(id INTEGER PRIMARY KEY, patient_id INTEGER, kind TEXT, data BLOB)",
    )
    .map_err(map)?;
    let max_pid: i64 = conn
        .query_row("SELECT coalesce(max(id), 0) FROM patients", [], |r| {
            r.get(0)
        })
        .unwrap_or(0);
    if max_pid == 0 {
        conn.execute_batch("PRAGMA foreign_keys=OFF").map_err(map)?;
    }
    let txns = c.opts.max_files.unwrap_or(40).max(1);
    eprintln!(
        "ward-sim {}: {txns} transactions of bulk inserts into {rel}",
        c.info.name
    );
    for i in 0..txns {
        c.pace(i, txns, &rel, c.opts.delay);
        conn.execute_batch("BEGIN").map_err(map)?;
        for _ in 0..25 {
            let n = c.rng.gen_range(512..8192);
            let blob = c.random_bytes(n);
            let pid: i64 = c.rng.gen_range(1..=max_pid.max(1));
            conn.execute(
                "INSERT INTO attachments(patient_id, kind, data) VALUES (?1, 'scan-thumbnail', ?2)",
                rusqlite::params![pid, blob],
            )
            .map_err(map)?;
            c.bytes += n as u64;
        }
        conn.execute_batch("COMMIT").map_err(map)?;
    }
    conn.close().map_err(|(_, e)| map(e))?;
    c.touch(&rel);
    Ok(())
}

fn b_random_files(c: &mut Ctx<'_>) -> Result<(), SimError> {
    let n = c.opts.max_files.unwrap_or(100);
    let dir = c.s.unique("random-data", "");
    for i in 0..n {
        let rel = format!("{dir}/blob-{i:03}.bin");
        c.pace(i, n, &rel, c.opts.delay);
        let len = c.rng.gen_range(1024..65536);
        let data = c.random_bytes(len);
        c.write_new(&rel, &data)?;
    }
    Ok(())
}

fn b_editor_save(c: &mut Ctx<'_>) -> Result<(), SimError> {
    let mut t = c.targets_where(
        |r| r.ends_with(".txt") || r.ends_with(".md") || r.ends_with(".csv"),
        "text files",
    )?;
    if c.opts.max_files.is_none() {
        t.truncate(20);
    }
    c.each(&t, c.opts.delay, |c, rel, chk| {
        let mut data = c.read_all(&chk)?;
        data.extend_from_slice(b"\nReviewed and updated by the ward secretary.\n");
        let tmp = join_rel(&parent_rel(rel), &format!(".{}.swp", file_name(rel)));
        if !c.s.is_free(&tmp) {
            c.note(format!("skipped {rel}: {tmp} exists"));
            return Ok(());
        }
        let mut f = c.s.create_new(&tmp)?;
        f.write_all(&data).map_err(io_err(&chk.abs))?;
        f.set_permissions(chk.meta.permissions())
            .map_err(io_err(&chk.abs))?;
        f.sync_all().map_err(io_err(&chk.abs))?;
        drop(f);
        c.bytes += data.len() as u64;
        let tmp_abs = c.s.abs(&tmp)?;
        if c.s.check_existing(rel)?.is_some() {
            fs::rename(&tmp_abs, &chk.abs).map_err(io_err(&chk.abs))?;
        }
        c.touch(rel);
        Ok(())
    })
}

fn b_logrotate(c: &mut Ctx<'_>) -> Result<(), SimError> {
    let gzip = c.tool("gzip", "gzip")?;
    let t = c.targets_where(|r| r.ends_with(".log"), "log files")?;
    c.each(&t, c.opts.delay, |c, rel, chk| {
        let rotated = format!("{rel}.1");
        if !c.s.is_free(&rotated) || !c.s.is_free(&format!("{rotated}.gz")) {
            c.note(format!("skipped {rel}: {rotated} exists"));
            return Ok(());
        }
        let rot_abs = c.s.prepare_new(&rotated)?;
        fs::rename(&chk.abs, &rot_abs).map_err(io_err(&chk.abs))?;
        c.touch(rel);
        c.write_new(rel, b"")?;
        let mut cmd = Command::new(&gzip);
        cmd.arg("-q").arg("--").arg(&rot_abs);
        c.exec(cmd)?;
        c.create(&format!("{rotated}.gz"));
        Ok(())
    })
}

fn b_mass_delete(c: &mut Ctx<'_>) -> Result<(), SimError> {
    let rm = c.tool("rm", "coreutils")?;
    let sub = c.largest_subtree()?;
    let prefix = format!("{sub}/");
    let t = c.targets_where(|r| r.starts_with(&prefix), "files in the chosen subtree")?;
    eprintln!(
        "ward-sim {}: rm of {} files under {sub}/",
        c.info.name,
        t.len()
    );
    let mut cmd = Command::new(&rm);
    cmd.arg("-f").arg("--");
    let mut victims = Vec::new();
    for rel in &t {
        if let Some(chk) = c.s.check_existing(rel)? {
            cmd.arg(&chk.abs);
            victims.push(rel.clone());
        }
    }
    c.exec(cmd)?;
    for v in victims {
        c.touch(&v);
    }
    Ok(())
}

fn b_image_reencode(c: &mut Ctx<'_>) -> Result<(), SimError> {
    let t = c.targets_where(|r| r.ends_with(".png"), "PNG images")?;
    c.each(&t, c.opts.delay, |c, rel, chk| {
        let data = c.read_all(&chk)?;
        let img = formats::png_decode(&data).map_err(|reason| SimError::Format {
            path: chk.abs.clone(),
            reason,
        })?;
        let out = formats::png_encode(&img, 1, 9);
        let mut f = c.s.open_checked(&chk, true)?;
        f.set_len(0).map_err(io_err(&chk.abs))?;
        f.write_all(&out).map_err(io_err(&chk.abs))?;
        c.bytes += out.len() as u64;
        c.touch(rel);
        Ok(())
    })
}

fn b_dicom_reencode(c: &mut Ctx<'_>) -> Result<(), SimError> {
    let t = c.targets_where(|r| r.ends_with(".dcm"), "DICOM images")?;
    c.each(&t, c.opts.delay, |c, rel, chk| {
        let data = c.read_all(&chk)?;
        let Some(out) = formats::dicom_deflate(&data).map_err(|reason| SimError::Format {
            path: chk.abs.clone(),
            reason,
        })?
        else {
            return Ok(());
        };
        let tmp = format!("{rel}.tmp");
        if !c.s.is_free(&tmp) {
            c.note(format!("skipped {rel}: {tmp} exists"));
            return Ok(());
        }
        c.write_new(&tmp, &out)?;
        let tmp_abs = c.s.abs(&tmp)?;
        fs::rename(&tmp_abs, &chk.abs).map_err(io_err(&chk.abs))?;
        c.touch(rel);
        Ok(())
    })
}

fn b_one_file_encrypt(c: &mut Ctx<'_>) -> Result<(), SimError> {
    let openssl = c.tool("openssl", "openssl")?;
    let t = c.targets_where(
        |r| r.ends_with(".docx") || r.ends_with(".xlsx") || r.ends_with(".pdf"),
        "office documents",
    )?;
    let rel = t
        .iter()
        .find(|r| c.s.is_free(&format!("{r}.enc")))
        .cloned()
        .ok_or_else(|| c.nothing("every document already has an .enc copy"))?;
    let chk =
        c.s.check_existing(&rel)?
            .ok_or_else(|| c.nothing("the chosen document is not a regular file"))?;
    let out = format!("{rel}.enc");
    let out_abs = c.s.prepare_new(&out)?;
    let pass = c.password();
    eprintln!("ward-sim {}: openssl enc {rel} -> {out}", c.info.name);
    let mut cmd = Command::new(&openssl);
    cmd.args(["enc", "-aes-256-cbc", "-salt", "-pbkdf2", "-pass"])
        .arg(format!("pass:{pass}"))
        .arg("-in")
        .arg(&chk.abs)
        .arg("-out")
        .arg(&out_abs);
    c.create(&out);
    c.exec(cmd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_tool_error_names_the_debian_package() {
        assert!(find_tool("ward-sim-no-such-tool").is_none());
        assert!(find_tool("sh").is_some());
        let e = SimError::MissingTool {
            tool: "rsync",
            package: "rsync",
        };
        assert!(e.to_string().contains("apt-get install rsync"), "{e}");
    }

    #[test]
    fn every_listed_profile_is_dispatched() {
        for p in profiles() {
            assert!(dispatch(p.name).is_some(), "{}", p.name);
        }
        let attacks = profiles().iter().filter(|p| p.kind == Kind::Attack).count();
        assert_eq!(attacks, 15);
        assert_eq!(profiles().len(), 32);
    }

    #[test]
    fn tool_failure_hides_passwords() {
        let mut cmd = Command::new("openssl");
        cmd.args(["enc", "-pass", "pass:secret123", "--passphrase", "hunter2"]);
        let e = tool_failed(&cmd, "boom".into());
        assert!(!e.to_string().contains("secret123"), "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn locked_blob_layout() {
        let b = locked_blob(b"WARDLOCK", &[7; 256], &[1; 12], b"abc");
        assert!(b.starts_with(b"WARDLOCK"));
        assert_eq!(b.len(), 8 + 4 + 256 + 12 + 8 + 3);
        assert!(b.ends_with(b"abc"));
    }
}
