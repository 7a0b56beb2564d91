//! `.npy` files: little-endian f32 in and out (f64 reading for reference data).
//!
//! Parsing is done by `npyz`; this module adds the checks a command-line tool needs before it
//! trusts a file: the dtype, C order, a shape whose size does not overflow, and a data section of
//! exactly the declared length (a truncated file is reported as such).

use std::path::Path;

use anyhow::{bail, Context};
use npyz::WriterBuilder;

/// A dense array in C order.
#[derive(Debug, Clone, PartialEq)]
pub struct Array<T> {
    /// Shape, outermost first.
    pub shape: Vec<usize>,
    /// Elements, row-major.
    pub data: Vec<T>,
}

impl<T> Array<T> {
    /// Shape as `[a, b, c]`.
    pub fn shape_str(&self) -> String {
        shape_str(&self.shape)
    }
}

/// Formats a shape as `[a, b, c]`.
pub fn shape_str(shape: &[usize]) -> String {
    let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

/// Guards `npyz` against shapes whose element count overflows (it multiplies them unchecked):
/// finds the `'shape': (...)` tuple in the header text and multiplies with overflow checks.
fn precheck_header(bytes: &[u8]) -> anyhow::Result<()> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        bail!("not a .npy file (missing the \\x93NUMPY magic)");
    }
    let (hlen, start): (usize, usize) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                bail!("truncated .npy header");
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        v => bail!("unsupported .npy format version {v}"),
    };
    let end = start
        .checked_add(hlen)
        .filter(|&e| e <= bytes.len())
        .context("truncated .npy header")?;
    let text = String::from_utf8_lossy(&bytes[start..end]);
    if let Some(at) = text.find("'shape'") {
        let rest = &text[at..];
        if let (Some(open), Some(close)) = (rest.find('('), rest.find(')')) {
            if open < close {
                let mut n: u64 = 1;
                for part in rest[open + 1..close].split(',') {
                    let t = part.trim().trim_end_matches('L');
                    if t.is_empty() {
                        continue;
                    }
                    let d: u64 = t
                        .parse()
                        .with_context(|| format!("bad dimension `{t}` in the .npy shape"))?;
                    n = n
                        .checked_mul(d)
                        .filter(|&n| n <= (isize::MAX as u64) / 8)
                        .context("the .npy shape is impossibly large")?;
                }
            }
        }
    }
    Ok(())
}

/// Parses the header and returns it with the raw data section.
fn header_and_data(bytes: &[u8]) -> anyhow::Result<(npyz::NpyHeader, &[u8])> {
    precheck_header(bytes)?;
    let mut rest: &[u8] = bytes;
    let header = npyz::NpyHeader::from_reader(&mut rest).context("cannot parse the .npy header")?;
    if header.order() != npyz::Order::C {
        bail!("the array is in Fortran order; save it with C order (np.ascontiguousarray)");
    }
    Ok((header, rest))
}

fn type_str(header: &npyz::NpyHeader) -> String {
    match header.dtype() {
        npyz::DType::Plain(t) => t.to_string(),
        other => other.descr(),
    }
}

fn decode<T, const N: usize>(
    bytes: &[u8],
    want: &str,
    hint: &str,
    conv: fn([u8; N]) -> T,
) -> anyhow::Result<Array<T>> {
    let (header, data) = header_and_data(bytes)?;
    let found = type_str(&header);
    if found != want {
        bail!("the array has dtype `{found}`, expected `{want}`; {hint}");
    }
    let shape: Vec<usize> = header
        .shape()
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<_, _>>()
        .context("the .npy shape does not fit in memory")?;
    let n = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .context("the .npy shape is impossibly large")?;
    let need = n
        .checked_mul(N)
        .context("the .npy shape is impossibly large")?;
    if data.len() < need {
        bail!(
            "truncated .npy file: shape {} needs {need} data bytes, found {}",
            shape_str(&shape),
            data.len()
        );
    }
    if data.len() > need {
        bail!(
            ".npy file has {} bytes after the data of shape {} (corrupted?)",
            data.len() - need,
            shape_str(&shape)
        );
    }
    let data = data
        .chunks_exact(N)
        .map(|c| {
            let mut a = [0u8; N];
            a.copy_from_slice(c);
            conv(a)
        })
        .collect();
    Ok(Array { shape, data })
}

/// Decodes an f32 little-endian `.npy` image.
pub fn parse_f32(bytes: &[u8]) -> anyhow::Result<Array<f32>> {
    decode(
        bytes,
        "<f4",
        "convert it with `x.astype(np.float32)` before saving",
        f32::from_le_bytes,
    )
}

/// Decodes an f64 little-endian `.npy` image.
pub fn parse_f64(bytes: &[u8]) -> anyhow::Result<Array<f64>> {
    decode(
        bytes,
        "<f8",
        "expected a float64 reference array",
        f64::from_le_bytes,
    )
}

/// The longest `.npy` header read (numpy writes a few hundred bytes).
const MAX_HEADER: u64 = 1 << 20;

/// Reads a `.npy` file without trusting it: a regular file ([`crate::fileio::open_regular`]);
/// the header is read first, and for the dtypes read here (`<f4`, `<f8`) the file must be
/// exactly the header plus the data size it declares before the data is read. Other dtypes
/// read only the header (the decoder then names the dtype).
fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let (mut f, len) = crate::fileio::open_regular(path, u64::MAX, "a .npy file")?;
    let mut pre = Vec::with_capacity(12);
    (&mut f)
        .take(12)
        .read_to_end(&mut pre)
        .with_context(|| format!("cannot read `{}`", path.display()))?;
    if pre.len() < 10 || &pre[..6] != b"\x93NUMPY" {
        // Too short or not a .npy file: the decoder reports it.
        return Ok(pre);
    }
    let (hlen, start): (u64, u64) = match pre[6] {
        1 => (u16::from_le_bytes([pre[8], pre[9]]) as u64, 10),
        _ if pre.len() >= 12 => (
            u32::from_le_bytes([pre[8], pre[9], pre[10], pre[11]]) as u64,
            12,
        ),
        _ => return Ok(pre),
    };
    if hlen > MAX_HEADER {
        bail!(
            "`{}`: the .npy header claims {hlen} bytes; not a .npy file written by numpy",
            path.display()
        );
    }
    let head_end = (start + hlen).min(len);
    let mut head = pre;
    let more = head_end.saturating_sub(head.len() as u64);
    (&mut f)
        .take(more)
        .read_to_end(&mut head)
        .with_context(|| format!("cannot read `{}`", path.display()))?;
    // The data size the header declares (checked arithmetic), when the header parses.
    let declared = header_and_data(&head).ok().and_then(|(h, _)| {
        let item: u64 = match type_str(&h).as_str() {
            "<f4" => 4,
            "<f8" => 8,
            _ => return None,
        };
        h.shape()
            .iter()
            .try_fold(item, |a, &d| a.checked_mul(d))
            .and_then(|n| n.checked_add(head_end))
    });
    let Some(total) = declared else {
        // Bad header or another dtype: the decoder reports it from the header alone.
        return Ok(head);
    };
    if len < total {
        bail!(
            "`{}`: truncated .npy file: the header declares {total} bytes, the file has {len}",
            path.display()
        );
    }
    if len > total {
        bail!(
            "`{}`: .npy file has {} bytes after the data its header declares (corrupted?)",
            path.display(),
            len - total
        );
    }
    let rest = crate::fileio::read_exact_len(&mut f, path, total - head.len() as u64)?;
    head.extend_from_slice(&rest);
    Ok(head)
}

/// Reads an f32 little-endian `.npy` file.
pub fn read_f32(path: &Path) -> anyhow::Result<Array<f32>> {
    parse_f32(&read(path)?).with_context(|| format!("`{}`", path.display()))
}

/// Reads an f64 little-endian `.npy` file.
pub fn read_f64(path: &Path) -> anyhow::Result<Array<f64>> {
    parse_f64(&read(path)?).with_context(|| format!("`{}`", path.display()))
}

/// The `.npy` header of an f32 array (`<f4`, C order) as numpy writes it: format 1.0 (2.0 when
/// the dictionary needs more than 65535 bytes), padded with spaces to a multiple of 64 bytes.
/// The returned vector has room for `data_bytes` more.
fn header_f32(shape: &[usize], data_bytes: usize) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let tuple = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {tuple}, }}");
    let v1 = dict.len() + 65 <= 65535;
    let pre = if v1 { 10 } else { 12 };
    while (pre + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let mut out = Vec::with_capacity(pre + dict.len() + data_bytes);
    out.extend_from_slice(b"\x93NUMPY");
    if v1 {
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&[2, 0]);
        out.extend_from_slice(&(dict.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out
}

/// An f32 `.npy` file read piece by piece (the data is not loaded at once): [`open_f32`].
#[derive(Debug)]
pub struct F32Reader {
    /// Shape, outermost first.
    pub shape: Vec<usize>,
    file: std::fs::File,
    /// Values not read yet.
    left: usize,
}

/// Opens an f32 little-endian `.npy` file, checks its header (dtype, C order, a shape whose size
/// does not overflow) and that the data section has exactly the declared length, and returns a
/// reader positioned at the data.
pub fn open_f32(path: &Path) -> anyhow::Result<F32Reader> {
    use std::io::Read;
    let ctx = || format!("`{}`", path.display());
    let (mut file, len) = crate::fileio::open_regular(path, u64::MAX, "a .npy file")?;
    let mut head = vec![0u8; 12.min(len as usize)];
    file.read_exact(&mut head).with_context(ctx)?;
    let hlen = match head.get(6) {
        Some(1) if head.len() >= 10 => 10 + u16::from_le_bytes([head[8], head[9]]) as u64,
        Some(2 | 3) if head.len() >= 12 => {
            12 + u32::from_le_bytes([head[8], head[9], head[10], head[11]]) as u64
        }
        _ => 0,
    };
    if hlen == 0 || hlen > len {
        // Let the whole-file parser report what is wrong.
        precheck_header(&head).with_context(ctx)?;
        bail!("{}: truncated .npy header", ctx());
    }
    let mut rest = vec![0u8; hlen as usize - head.len()];
    file.read_exact(&mut rest).with_context(ctx)?;
    head.extend_from_slice(&rest);
    let (header, _) = header_and_data(&head).with_context(ctx)?;
    let found = type_str(&header);
    if found != "<f4" {
        bail!(
            "{}: the array has dtype `{found}`, expected `<f4`; convert it with \
             `x.astype(np.float32)` before saving",
            ctx()
        );
    }
    let shape: Vec<usize> = header
        .shape()
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<_, _>>()
        .context("the .npy shape does not fit in memory")
        .with_context(ctx)?;
    let n = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .and_then(|n| n.checked_mul(4).map(|_| n))
        .context("the .npy shape is impossibly large")
        .with_context(ctx)?;
    let data = len - hlen;
    let need = 4 * n as u64;
    if data < need {
        bail!(
            "{}: truncated .npy file: shape {} needs {need} data bytes, found {data}",
            ctx(),
            shape_str(&shape)
        );
    }
    if data > need {
        bail!(
            "{}: .npy file has {} bytes after the data of shape {} (corrupted?)",
            ctx(),
            data - need,
            shape_str(&shape)
        );
    }
    Ok(F32Reader {
        shape,
        file,
        left: n,
    })
}

impl F32Reader {
    /// Reads the next `dst.len()` values (error past the end of the data).
    pub fn read_into(&mut self, dst: &mut [f32]) -> anyhow::Result<()> {
        use std::io::Read;
        if dst.len() > self.left {
            bail!("internal: reading past the end of the .npy data");
        }
        self.file
            .read_exact(bytemuck::cast_slice_mut(dst))
            .context("cannot read the .npy data")?;
        if cfg!(target_endian = "big") {
            for v in dst.iter_mut() {
                *v = f32::from_le_bytes(v.to_ne_bytes());
            }
        }
        self.left -= dst.len();
        Ok(())
    }
}

/// An f32 `.npy` file written piece by piece: [`create_f32`], [`F32Writer::write`] the values in
/// order, then [`F32Writer::finish`]. The values go to `<path>.partial`, renamed to `path` by
/// `finish` (so `path` may be the file being read, and a failed run leaves no half-written
/// output); dropped without `finish`, the partial file is removed.
#[derive(Debug)]
pub struct F32Writer {
    out: Option<std::io::BufWriter<std::fs::File>>,
    left: usize,
    path: std::path::PathBuf,
    tmp: std::path::PathBuf,
}

/// Creates `<path>.partial` and writes the header of an f32 array of `shape`.
pub fn create_f32(path: &Path, shape: &[usize]) -> anyhow::Result<F32Writer> {
    use std::io::Write;
    let n = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .context("internal: output shape overflows")?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".partial");
    let tmp = std::path::PathBuf::from(tmp);
    let file =
        std::fs::File::create(&tmp).with_context(|| format!("cannot write `{}`", tmp.display()))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    out.write_all(&header_f32(shape, 0))
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    Ok(F32Writer {
        out: Some(out),
        left: n,
        path: path.to_path_buf(),
        tmp,
    })
}

impl Drop for F32Writer {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

impl F32Writer {
    /// Appends values.
    pub fn write(&mut self, data: &[f32]) -> anyhow::Result<()> {
        use std::io::Write;
        if data.len() > self.left {
            bail!("internal: more values than the .npy shape holds");
        }
        let out = self.out.as_mut().context("internal: writer finished")?;
        let r = if cfg!(target_endian = "little") {
            out.write_all(bytemuck::cast_slice(data))
        } else {
            data.iter()
                .try_for_each(|v| out.write_all(&v.to_le_bytes()))
        };
        r.with_context(|| format!("cannot write `{}`", self.path.display()))?;
        self.left -= data.len();
        Ok(())
    }

    /// Checks that every value was written, flushes the file and renames it to its path.
    pub fn finish(mut self) -> anyhow::Result<()> {
        use std::io::Write;
        if self.left != 0 {
            bail!(
                "internal: {} values of the .npy array not written",
                self.left
            );
        }
        let mut out = self.out.take().context("internal: writer finished")?;
        let r = out.flush();
        drop(out);
        let r = r.and_then(|_| std::fs::rename(&self.tmp, &self.path));
        if r.is_err() {
            let _ = std::fs::remove_file(&self.tmp);
        }
        r.with_context(|| format!("cannot write `{}`", self.path.display()))
    }
}

/// Encodes an f32 array as `.npy` bytes (`<f4`, C order).
pub fn to_bytes_f32(shape: &[usize], data: &[f32]) -> anyhow::Result<Vec<u8>> {
    let n: usize = shape.iter().product();
    if n != data.len() {
        bail!(
            "internal: shape {} does not match {} elements",
            shape_str(shape),
            data.len()
        );
    }
    let mut out = header_f32(shape, 4 * data.len());
    if cfg!(target_endian = "little") {
        out.extend_from_slice(bytemuck::cast_slice(data));
    } else {
        for v in data {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    Ok(out)
}

/// Encodes an f64 array as `.npy` bytes (`<f8`, C order).
pub fn to_bytes_f64(shape: &[usize], data: &[f64]) -> anyhow::Result<Vec<u8>> {
    let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    let mut out = Vec::new();
    {
        let mut w = npyz::WriteOptions::<f64>::new()
            .default_dtype()
            .shape(&shape)
            .writer(&mut out)
            .begin_nd()
            .context("cannot encode .npy")?;
        w.extend(data.iter().copied())
            .context("cannot encode .npy")?;
        w.finish().context("cannot encode .npy")?;
    }
    Ok(out)
}

/// Writes an f32 `.npy` file (through a temporary file, renamed: [`crate::fileio::write_atomic`]).
pub fn write_f32(path: &Path, shape: &[usize], data: &[f32]) -> anyhow::Result<()> {
    let bytes = to_bytes_f32(shape, data)?;
    crate::fileio::write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_f32() {
        let data: Vec<f32> = (0..24).map(|i| i as f32 * 0.5 - 3.0).collect();
        let b = to_bytes_f32(&[2, 3, 4], &data).unwrap();
        let a = parse_f32(&b).unwrap();
        assert_eq!(a.shape, vec![2, 3, 4]);
        assert_eq!(a.data, data);
    }

    /// The hand-written header parses (with npyz) for 0- to 4-dimensional shapes, and the
    /// header is padded to 64 bytes as numpy does.
    #[test]
    fn f32_header_parses_for_every_rank() {
        for shape in [
            vec![],
            vec![5],
            vec![2, 3],
            vec![1, 128, 32, 32],
            vec![0, 4],
        ] {
            let n: usize = shape.iter().product();
            let data: Vec<f32> = (0..n).map(|i| i as f32 - 7.5).collect();
            let b = to_bytes_f32(&shape, &data).unwrap();
            let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
            assert_eq!((10 + hlen) % 64, 0);
            let a = parse_f32(&b).unwrap();
            assert_eq!(a.shape, shape);
            assert_eq!(a.data, data);
        }
    }

    /// The streaming reader and writer against the whole-array functions: same bytes written,
    /// same values read, truncated / trailing / wrong-dtype files refused.
    #[test]
    fn streaming_reader_and_writer() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        let data: Vec<f32> = (0..60).map(|i| i as f32 * 0.25 - 2.0).collect();
        let mut w = create_f32(&p, &[3, 4, 5]).unwrap();
        for part in data.chunks(20) {
            w.write(part).unwrap();
        }
        assert!(w.write(&[1.0]).is_err());
        w.finish().unwrap();
        assert_eq!(
            std::fs::read(&p).unwrap(),
            to_bytes_f32(&[3, 4, 5], &data).unwrap()
        );
        let mut r = open_f32(&p).unwrap();
        assert_eq!(r.shape, vec![3, 4, 5]);
        let mut got = vec![0.0f32; 60];
        for part in got.chunks_mut(20) {
            r.read_into(part).unwrap();
        }
        assert_eq!(got, data);
        assert!(r.read_into(&mut [0.0]).is_err());
        let short = create_f32(&p, &[2]).unwrap();
        assert!(short.finish().is_err());
        // A failed write leaves the old file and no partial file.
        assert_eq!(open_f32(&p).unwrap().shape, vec![3, 4, 5]);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let b = to_bytes_f32(&[3, 4, 5], &data).unwrap();
        for cut in [0, 5, 9, 11, 40, b.len() - 1] {
            std::fs::write(&p, &b[..cut]).unwrap();
            assert!(open_f32(&p).is_err(), "cut {cut}");
        }
        let mut long = b.clone();
        long.push(0);
        std::fs::write(&p, &long).unwrap();
        assert!(open_f32(&p).is_err());
        std::fs::write(&p, to_bytes_f64(&[2], &[1.0, 2.0]).unwrap()).unwrap();
        let e = open_f32(&p).unwrap_err();
        assert!(format!("{e:#}").contains("<f8"), "{e:#}");
    }

    #[test]
    fn rejects_f64_truncated_and_trailing() {
        let b = to_bytes_f64(&[2, 2], &[1.0, 2.0, 3.0, 4.0]).unwrap();
        let e = parse_f32(&b).unwrap_err().to_string();
        assert!(e.contains("<f8"), "{e}");
        assert_eq!(parse_f64(&b).unwrap().data, vec![1.0, 2.0, 3.0, 4.0]);
        let b = to_bytes_f32(&[4], &[1.0; 4]).unwrap();
        for cut in 0..b.len() {
            assert!(parse_f32(&b[..cut]).is_err(), "cut {cut}");
        }
        let mut long = b.clone();
        long.push(0);
        assert!(parse_f32(&long).is_err());
    }

    #[test]
    fn rejects_huge_shape() {
        let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }\n";
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        b.extend_from_slice(dict.as_bytes());
        b.extend_from_slice(&[0u8; 4]);
        let e = parse_f32(&b).unwrap_err().to_string();
        assert!(e.contains("large"), "{e}");
    }
}
