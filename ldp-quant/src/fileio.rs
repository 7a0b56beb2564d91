//! Careful file access for the command line: bounded reads of regular files only, outputs
//! written through a temporary file and renamed, and outputs that would overwrite an input
//! refused.
//!
//! * **Reads** ([`read_regular`]): the path must be a regular file (not a device such as
//!   `/dev/zero`, a FIFO or a directory), its size at most what the format can address, and the
//!   read stops at that size even if the file grows meanwhile. `.npy` files are bounded more
//!   tightly by `npy::read_f32` (header first, then exactly the size the header declares).
//! * **Writes** ([`write_atomic`]): the bytes go to a temporary file in the output's directory,
//!   which is flushed to disk and renamed over the output, so an interrupted or failed run
//!   never leaves a half-written blob or `.npy` (at worst a stray `.ldp-quant-*.tmp` file).
//! * **Same file** ([`refuse_overwrite`]): an output path that names an input — the same path
//!   after canonicalization, or another name of the same file (hard link: same device and
//!   inode) — is refused before anything is read.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// Opens `path` for reading after checking that it is a regular file of at most `max` bytes;
/// returns the file and its size.
pub fn open_regular(path: &Path, max: u64, what: &str) -> anyhow::Result<(File, u64)> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    if !meta.is_file() {
        bail!(
            "cannot read `{}`: not a regular file (a directory, device or pipe); {what} must be a regular file",
            path.display()
        );
    }
    let len = meta.len();
    if len > max {
        bail!(
            "`{}` is {len} bytes, more than {what} can be ({max} bytes)",
            path.display()
        );
    }
    let f = File::open(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    Ok((f, len))
}

/// Reads at most `limit` bytes from `f`; an error if the file holds more (it grew after the
/// size check) or fewer than `expect` bytes.
pub fn read_exact_len(f: &mut File, path: &Path, expect: u64) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(usize::try_from(expect).unwrap_or(0));
    f.take(expect.saturating_add(1))
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read `{}`", path.display()))?;
    if bytes.len() as u64 != expect {
        bail!(
            "`{}` changed while it was read ({} bytes, expected {expect})",
            path.display(),
            bytes.len()
        );
    }
    Ok(bytes)
}

/// Reads a whole regular file of at most `max` bytes ([`open_regular`]).
pub fn read_regular(path: &Path, max: u64, what: &str) -> anyhow::Result<Vec<u8>> {
    let (mut f, len) = open_regular(path, max, what)?;
    read_exact_len(&mut f, path, len)
}

/// Reads a model blob: a regular file of at most `u32::MAX` bytes (the header's length field),
/// whose size equals the length its header declares when the header is readable.
pub fn read_blob(path: &Path) -> anyhow::Result<Vec<u8>> {
    use ldp_core::blob::format::{Header, HEADER_LEN};
    let (mut f, len) = open_regular(path, u32::MAX as u64, "a model blob")?;
    let mut head = Vec::with_capacity(HEADER_LEN);
    (&mut f)
        .take(HEADER_LEN as u64)
        .read_to_end(&mut head)
        .with_context(|| format!("cannot read `{}`", path.display()))?;
    if let Ok(h) = Header::from_bytes(&head) {
        if h.total_len as u64 != len {
            bail!(
                "`{}`: invalid model blob: length mismatch: header says {} bytes, the file has {len} (truncated or padded file)",
                path.display(),
                h.total_len
            );
        }
    }
    // Anything else wrong with the header is reported by `Model::parse` on the whole file.
    let rest = read_exact_len(&mut f, path, len - head.len() as u64)?;
    head.extend_from_slice(&rest);
    Ok(head)
}

/// Writes `bytes` to `path` through a temporary file in the same directory, flushed and then
/// renamed over `path`: readers see the old file or the whole new one, never a part.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .with_context(|| format!("cannot write `{}`: not a file name", path.display()))?;
    let mut tmp_name = std::ffi::OsString::from(".ldp-quant-");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write `{}`", path.display()));
    }
    Ok(())
}

/// Whether `a` and `b` name the same existing file: the same canonical path, or (Unix) the same
/// device and inode (a hard link).
fn same_file(a: &Path, b: &Path) -> bool {
    let (Ok(ma), Ok(mb)) = (std::fs::metadata(a), std::fs::metadata(b)) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if ma.dev() == mb.dev() && ma.ino() == mb.ino() {
            return true;
        }
    }
    let _ = (&ma, &mb);
    matches!(
        (std::fs::canonicalize(a), std::fs::canonicalize(b)),
        (Ok(ca), Ok(cb)) if ca == cb
    )
}

/// Refuses an `output` that names one of `inputs` (`(option, path)` pairs, e.g.
/// `("--weights", path)`), which the run would overwrite.
pub fn refuse_overwrite(output: &Path, inputs: &[(&str, &Path)]) -> anyhow::Result<()> {
    for (opt, input) in inputs {
        if same_file(output, input) {
            bail!(
                "the output `{}` is the same file as {opt} `{}`: writing it would destroy the input; choose another output path",
                output.display(),
                input.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.bin");
        write_atomic(&p, b"first").unwrap();
        write_atomic(&p, b"second").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"second");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
        // A directory that does not exist: an error, nothing written.
        assert!(write_atomic(&dir.path().join("no/such/dir.bin"), b"x").is_err());
    }

    #[test]
    fn non_regular_and_oversized_files_are_refused() {
        let e = read_regular(Path::new("/dev/zero"), 1 << 20, "test file").unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let e = read_regular(dir.path(), 1 << 20, "test file").unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let p = dir.path().join("big");
        std::fs::write(&p, [0u8; 100]).unwrap();
        let e = read_regular(&p, 99, "test file").unwrap_err();
        assert!(e.to_string().contains("more than"), "{e}");
        assert_eq!(read_regular(&p, 100, "test file").unwrap().len(), 100);
    }

    #[test]
    fn same_file_detects_paths_and_hard_links() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::write(&a, b"x").unwrap();
        let dotted = dir.path().join(".").join("a");
        assert!(refuse_overwrite(&dotted, &[("--in", &a)]).is_err());
        let link = dir.path().join("link");
        std::fs::hard_link(&a, &link).unwrap();
        assert!(refuse_overwrite(&link, &[("--in", &a)]).is_err());
        let other = dir.path().join("b");
        assert!(refuse_overwrite(&other, &[("--in", &a)]).is_ok());
        std::fs::write(&other, b"x").unwrap();
        assert!(refuse_overwrite(&other, &[("--in", &a)]).is_ok());
    }
}
