//! Names: path components, extensions, and which extensions benign tools use.
//!
//! An extension is *unknown* unless it is a data, document, image, archive, compressor,
//! backup or temporary-file extension, a numeric one (log rotation), one ending in `~`, or
//! the standard extension of a file-encryption tool used by people (`gpg`, `age`, ...; a
//! ransomware using those needs one more damaged file).

pub(crate) fn parent_dir(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[..i],
        None => "",
    }
}

pub(crate) fn file_name(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// The extension of the last path component (without the dot), if any.
pub(crate) fn extension(path: &str) -> Option<&str> {
    let name = file_name(path);
    let (stem, ext) = name.rsplit_once('.')?;
    if stem.is_empty() || ext.is_empty() {
        return None;
    }
    Some(ext)
}

/// Extensions that benign tools append or use: data formats, compressors, archives,
/// backups, temporary files, rotations.
pub(crate) const BENIGN_EXT: &[&str] = &[
    "txt",
    "csv",
    "tsv",
    "log",
    "md",
    "json",
    "xml",
    "yaml",
    "yml",
    "ini",
    "cfg",
    "conf",
    "html",
    "htm",
    "css",
    "js",
    "py",
    "rs",
    "c",
    "h",
    "cpp",
    "sh",
    "doc",
    "docx",
    "xls",
    "xlsx",
    "ppt",
    "pptx",
    "odt",
    "ods",
    "odp",
    "rtf",
    "pdf",
    "png",
    "jpg",
    "jpeg",
    "gif",
    "bmp",
    "tif",
    "tiff",
    "svg",
    "webp",
    "heic",
    "dcm",
    "dicom",
    "gz",
    "tgz",
    "bz2",
    "tbz",
    "tbz2",
    "xz",
    "txz",
    "zst",
    "zstd",
    "lz4",
    "lzma",
    "lz",
    "z",
    "zip",
    "7z",
    "rar",
    "tar",
    "cpio",
    "bak",
    "old",
    "orig",
    "tmp",
    "temp",
    "swp",
    "swo",
    "part",
    "partial",
    "new",
    "save",
    "sav",
    "backup",
    "db",
    "sqlite",
    "sqlite3",
    "journal",
    "wal",
    "shm",
    "mp3",
    "mp4",
    "wav",
    "avi",
    "mkv",
    "mov",
    "lock",
    "pid",
    "dpkg-new",
    "dpkg-old",
    "dpkg-dist",
    "rpmnew",
    "rpmsave",
    "rej",
    "diff",
    "patch",
    "pack",
    "idx",
    // Standard extensions of file-encryption tools used by people (gpg, age, ccrypt,
    // aescrypt, openssl): a ransomware using them needs one more damaged file.
    "gpg",
    "pgp",
    "asc",
    "age",
    "cpt",
    "aes",
    "enc",
];

pub(crate) fn benign_ext(ext: &str) -> bool {
    ext.is_empty()
        || ext.len() > 16
        || ext.bytes().all(|b| b.is_ascii_digit())
        || ext.ends_with('~')
        || BENIGN_EXT.iter().any(|e| e.eq_ignore_ascii_case(ext))
}

/// `to` is `from` plus `.<unknown extension>`.
pub(crate) fn appended_unknown_ext(from: &str, to: &str) -> bool {
    match to.strip_prefix(from).and_then(|r| r.strip_prefix('.')) {
        Some(ext) => !ext.is_empty() && !ext.contains('/') && !benign_ext(ext),
        None => false,
    }
}

/// The rename gives the file an unknown extension it did not have.
pub(crate) fn renamed_to_unknown_ext(from: &str, to: &str) -> bool {
    match extension(to) {
        Some(e) => extension(from) != Some(e) && !benign_ext(e),
        None => false,
    }
}
