//! A minimal read-only zip reader for `torch.save` archives: the (ZIP64) end-of-central-directory
//! record, the central directory, and the data range of each *stored* (uncompressed) entry, which
//! is what `torch.save` writes. Nothing is decompressed; compressed or encrypted entries are
//! refused. Every offset and length read from the file is checked against the file size before
//! anything is allocated.

use std::collections::BTreeMap;

use anyhow::{bail, Context};

use super::BoundedFile;

/// Where an entry's bytes lie in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRange {
    /// Absolute offset of the first data byte.
    pub start: u64,
    /// Data length.
    pub len: u64,
    /// CRC-32 from the central directory.
    pub crc: u32,
}

/// Entry names → data ranges of a zip archive.
#[derive(Debug, Clone, Default)]
pub struct ZipIndex {
    /// The entries.
    pub entries: BTreeMap<String, EntryRange>,
}

fn u16_at(b: &[u8], i: usize) -> anyhow::Result<u16> {
    let s = b.get(i..i + 2).context("zip record truncated")?;
    Ok(u16::from_le_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], i: usize) -> anyhow::Result<u32> {
    let s = b.get(i..i + 4).context("zip record truncated")?;
    Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn u64_at(b: &[u8], i: usize) -> anyhow::Result<u64> {
    let s = b.get(i..i + 8).context("zip record truncated")?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Ok(u64::from_le_bytes(a))
}

/// Most entries accepted (a torch.save archive has one per storage plus a few).
const MAX_ENTRIES: u64 = 10_000_000;

impl ZipIndex {
    /// Reads the central directory of `f`.
    pub(crate) fn read(f: &mut BoundedFile) -> anyhow::Result<Self> {
        if f.len < 22 {
            bail!("not a zip archive: {} bytes, too short for an end-of-central-directory record (truncated?)", f.len);
        }
        let tail_len = f.len.min(22 + 65_535);
        let tail_start = f.len - tail_len;
        let tail = f.read_at(tail_start, tail_len, "zip end of central directory")?;
        let pos = (0..=tail.len() - 22)
            .rev()
            .find(|&i| tail[i..i + 4] == *b"PK\x05\x06")
            .context(
                "zip end-of-central-directory record not found (truncated or corrupted archive?)",
            )?;
        let eocd = &tail[pos..];
        let mut n_entries = u16_at(eocd, 10)? as u64;
        let mut cd_size = u32_at(eocd, 12)? as u64;
        let mut cd_off = u32_at(eocd, 16)? as u64;
        if n_entries == 0xFFFF || cd_size == 0xFFFF_FFFF || cd_off == 0xFFFF_FFFF {
            // ZIP64: the locator sits just before the EOCD record.
            let eocd_abs = tail_start + pos as u64;
            let loc_at = eocd_abs
                .checked_sub(20)
                .context("ZIP64 locator missing (corrupted archive?)")?;
            let loc = f.read_at(loc_at, 20, "ZIP64 locator")?;
            if loc[..4] != *b"PK\x06\x07" {
                bail!("ZIP64 end-of-central-directory locator not found (corrupted archive?)");
            }
            let rec_at = u64_at(&loc, 8)?;
            let rec = f.read_at(rec_at, 56, "ZIP64 end of central directory")?;
            if rec[..4] != *b"PK\x06\x06" {
                bail!("bad ZIP64 end-of-central-directory record (corrupted archive?)");
            }
            n_entries = u64_at(&rec, 32)?;
            cd_size = u64_at(&rec, 40)?;
            cd_off = u64_at(&rec, 48)?;
        }
        if n_entries > MAX_ENTRIES || n_entries.saturating_mul(46) > cd_size {
            bail!("zip central directory claims {n_entries} entries in {cd_size} bytes (corrupted archive?)");
        }
        let cd = f.read_at(cd_off, cd_size, "zip central directory")?;
        let mut entries = BTreeMap::new();
        let mut i = 0usize;
        for _ in 0..n_entries {
            if cd.get(i..i + 4) != Some(b"PK\x01\x02") {
                bail!(
                    "bad zip central directory entry at byte {} (corrupted archive?)",
                    cd_off + i as u64
                );
            }
            let flags = u16_at(&cd, i + 8)?;
            let method = u16_at(&cd, i + 10)?;
            let crc = u32_at(&cd, i + 16)?;
            let mut csize = u32_at(&cd, i + 20)? as u64;
            let mut usize_ = u32_at(&cd, i + 24)? as u64;
            let name_len = u16_at(&cd, i + 28)? as usize;
            let extra_len = u16_at(&cd, i + 30)? as usize;
            let comment_len = u16_at(&cd, i + 32)? as usize;
            let mut local = u32_at(&cd, i + 42)? as u64;
            let name_bytes = cd
                .get(i + 46..i + 46 + name_len)
                .context("zip entry name truncated")?;
            let name = String::from_utf8_lossy(name_bytes).into_owned();
            let extra = cd
                .get(i + 46 + name_len..i + 46 + name_len + extra_len)
                .context("zip extra field truncated")?;
            // ZIP64 extended information: the 0xFFFFFFFF fields, in this order.
            let mut j = 0usize;
            while j + 4 <= extra.len() {
                let id = u16_at(extra, j)?;
                let sz = u16_at(extra, j + 2)? as usize;
                let body = extra
                    .get(j + 4..j + 4 + sz)
                    .context("zip extra field truncated")?;
                if id == 1 {
                    let mut k = 0usize;
                    if usize_ == 0xFFFF_FFFF {
                        usize_ = u64_at(body, k)?;
                        k += 8;
                    }
                    if csize == 0xFFFF_FFFF {
                        csize = u64_at(body, k)?;
                        k += 8;
                    }
                    if local == 0xFFFF_FFFF {
                        local = u64_at(body, k)?;
                    }
                }
                j += 4 + sz;
            }
            i += 46 + name_len + extra_len + comment_len;
            if flags & 1 != 0 {
                bail!("zip entry `{name}` is encrypted");
            }
            if method != 0 || csize != usize_ {
                bail!(
                    "zip entry `{name}` is compressed (method {method}); torch.save stores entries \
                     uncompressed, so this is not a torch.save archive"
                );
            }
            let lh = f.read_at(local, 30, &format!("zip local header of `{name}`"))?;
            if lh[..4] != *b"PK\x03\x04" {
                bail!("bad zip local header for `{name}` (corrupted archive?)");
            }
            let start = local + 30 + u16_at(&lh, 26)? as u64 + u16_at(&lh, 28)? as u64;
            match start.checked_add(csize) {
                Some(end) if end <= f.len => {}
                _ => bail!(
                    "zip entry `{name}` ({csize} bytes at {start}) runs past the end of the file ({} bytes; truncated?)",
                    f.len
                ),
            }
            entries.insert(
                name,
                EntryRange {
                    start,
                    len: csize,
                    crc,
                },
            );
        }
        Ok(Self { entries })
    }
}
