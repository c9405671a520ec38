//! Decoy files: a realistic document placed at the top of each protected directory.
//!
//! Ransomware walks directories and encrypts what it finds; a decoy named to sort first
//! (`!ward-decoy.docx`) is usually among the first files it hits. Encrypting or renaming it
//! away is an immediate verdict; reading, copying, compressing or deleting it is not (backups
//! and clean-ups touch it too). ward removes its decoys when it stops. They are created
//! before the sensor starts, so they are "pre-existing" to every process.

use std::path::{Path, PathBuf};

/// The decoy's content: a small, valid Word document (a real zip with a document part).
pub const DECOY: &[u8] = include_bytes!("decoy.docx");

/// File name of the decoy in each protected directory.
pub const NAME: &str = "!ward-decoy.docx";

/// Place a decoy in each directory. Returns the paths created (existing files of that
/// name are left alone and not counted: ward never overwrites user data).
pub fn place(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let body: &[u8] = DECOY;
    let mut out = Vec::new();
    for d in dirs {
        let p = d.join(NAME);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&p)
        {
            Ok(mut f) => {
                use std::io::Write;
                if f.write_all(body).and_then(|_| f.sync_all()).is_ok() {
                    like_its_directory(&f, d);
                    out.push(p);
                } else {
                    let _ = std::fs::remove_file(&p);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                // Left by a ward that was killed: reuse it if it is exactly ours.
                if std::fs::read(&p).is_ok_and(|b| b == body) {
                    out.push(p);
                    continue;
                }
                tracing::warn!(
                    "{} already exists (left by an earlier run?); it is not used as a decoy",
                    p.display()
                );
            }
            Err(e) => tracing::warn!("cannot place a decoy in {}: {e}", d.display()),
        }
    }
    out
}

/// Give the decoy the directory's owner, group and read/write bits, so that whoever may
/// write files there (a Samba share's users, a service account) can also "encrypt" the
/// decoy: it is bait, and bait nobody can bite is useless.
fn like_its_directory(f: &std::fs::File, dir: &Path) {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let Ok(md) = std::fs::metadata(dir) else {
        return;
    };
    let _ = std::os::unix::fs::fchown(f, Some(md.uid()), Some(md.gid()));
    let mode = md.mode() & 0o666 | 0o600;
    let _ = f.set_permissions(std::fs::Permissions::from_mode(mode));
}

/// Remove decoys placed by [`place`] (if still there and still ours by name).
pub fn remove(paths: &[PathBuf]) {
    for p in paths {
        if p.file_name().is_some_and(|n| n == NAME) {
            let _ = std::fs::remove_file(Path::new(p));
        }
    }
}
