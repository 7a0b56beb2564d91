//! Just enough of the `.npy` format: read little-endian f32/f64 C-order arrays, write f32.

use std::path::Path;

/// An array read from a `.npy` file, widened to f64.
pub struct Array {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

fn header_field<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let at = header.find(&format!("'{key}'"))? + key.len() + 2;
    let rest = header[at..].trim_start().strip_prefix(':')?.trim_start();
    Some(rest)
}

/// Reads a `.npy` file of `<f4` or `<f8`, C order.
pub fn read(path: &Path) -> Result<Array, String> {
    let b = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let bad = |m: &str| format!("{}: {m}", path.display());
    if b.len() < 10 || &b[..6] != b"\x93NUMPY" {
        return Err(bad("not a .npy file"));
    }
    let (hlen, start) = match b[6] {
        1 => (u16::from_le_bytes([b[8], b[9]]) as usize, 10),
        2 | 3 => {
            if b.len() < 12 {
                return Err(bad("truncated header"));
            }
            (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12)
        }
        v => return Err(bad(&format!("unsupported .npy version {v}"))),
    };
    let header = std::str::from_utf8(
        b.get(start..start + hlen)
            .ok_or_else(|| bad("truncated header"))?,
    )
    .map_err(|_| bad("header is not text"))?;
    let descr = header_field(header, "descr").ok_or_else(|| bad("no descr"))?;
    let width = if descr.starts_with("'<f4'") {
        4
    } else if descr.starts_with("'<f8'") {
        8
    } else {
        return Err(bad(&format!(
            "dtype {} is not float32 or float64 (little-endian)",
            descr.split(',').next().unwrap_or("")
        )));
    };
    if header_field(header, "fortran_order").is_some_and(|v| v.starts_with("True")) {
        return Err(bad("Fortran-order arrays are not supported"));
    }
    let shape_s = header_field(header, "shape").ok_or_else(|| bad("no shape"))?;
    let inner = shape_s
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad("bad shape"))?;
    let shape: Vec<usize> = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| bad("bad shape")))
        .collect::<Result<_, _>>()?;
    let n: usize = shape.iter().product();
    let data_bytes = &b[start + hlen..];
    if data_bytes.len() != n * width {
        return Err(bad(&format!(
            "{} data bytes for shape {:?} of {}-byte floats",
            data_bytes.len(),
            shape,
            width
        )));
    }
    let data = if width == 4 {
        data_bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
            .collect()
    } else {
        data_bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect()
    };
    Ok(Array { shape, data })
}

/// Writes a `<f4` C-order `.npy` (version 1.0).
pub fn write_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<(), String> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_s = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_s}, }}");
    // Pad so that magic + version + length + header + '\n' is a multiple of 64.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len() * 4);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, out).map_err(|e| format!("writing {}: {e}", path.display()))
}

/// Raw little-endian f32 bytes (the firmware's input/expected format).
pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Converts a PyTorch-layout sample to channels-last: `[1, C, H, W]` → `[H][W][C]` for
/// images (4-D); `[1, N, C]` tokens (3-D) are channels-last already.
pub fn to_channels_last(a: &Array) -> Result<Vec<f64>, String> {
    match a.shape.as_slice() {
        [1, c, h, w] => {
            let (c, h, w) = (*c, *h, *w);
            let mut out = vec![0.0; c * h * w];
            for ch in 0..c {
                for p in 0..h * w {
                    out[p * c + ch] = a.data[ch * h * w + p];
                }
            }
            Ok(out)
        }
        [1, _, _] => Ok(a.data.clone()),
        s => Err(format!(
            "expected one sample [1, C, H, W] or [1, N, C], got shape {s:?}"
        )),
    }
}
