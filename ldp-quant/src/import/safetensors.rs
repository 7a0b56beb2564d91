//! Streaming safetensors reader: the JSON header is read and validated (every tensor inside the
//! data section, sizes matching shapes, no gaps or overlaps — the checks of the `safetensors`
//! crate), then only the requested tensors' bytes are read.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context};

use super::{decode, BoundedFile, StoredDtype, TensorMeta, TensorSource};

/// Largest header accepted (the `safetensors` crate's limit).
pub const MAX_HEADER: u64 = 100_000_000;

#[derive(Debug, Clone)]
struct Entry {
    dtype: StoredDtype,
    shape: Vec<usize>,
    /// Absolute byte range in the file.
    start: u64,
    end: u64,
}

/// An open safetensors file.
#[derive(Debug)]
pub struct StFile {
    file: BoundedFile,
    tensors: BTreeMap<String, Entry>,
}

fn dtype_of(s: &str) -> (StoredDtype, u64) {
    match s {
        "F32" => (StoredDtype::F32, 4),
        "F16" => (StoredDtype::F16, 2),
        "BF16" => (StoredDtype::BF16, 2),
        "F64" | "I64" | "U64" => (StoredDtype::Other(s.into()), 8),
        "I32" | "U32" => (StoredDtype::Other(s.into()), 4),
        "I16" | "U16" => (StoredDtype::Other(s.into()), 2),
        "I8" | "U8" | "BOOL" | "F8_E4M3" | "F8_E5M2" => (StoredDtype::Other(s.into()), 1),
        _ => (StoredDtype::Other(s.into()), 0),
    }
}

impl StFile {
    /// Opens `path` and reads its header.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let mut file = BoundedFile::open(path)?;
        let bad = |m: String| anyhow::anyhow!("not a valid safetensors file: {m}");
        if file.len < 8 {
            return Err(bad(format!(
                "{} bytes, shorter than the 8-byte header length",
                file.len
            )));
        }
        let n8 = file.read_at(0, 8, "safetensors header length")?;
        let mut a = [0u8; 8];
        a.copy_from_slice(&n8);
        let n = u64::from_le_bytes(a);
        if n > MAX_HEADER {
            return Err(bad(format!("header too large ({n} bytes)")));
        }
        if n > file.len - 8 {
            return Err(bad(format!(
                "header of {n} bytes but the file has only {} after the length (truncated?)",
                file.len - 8
            )));
        }
        let h = file.read_at(8, n, "safetensors header")?;
        let text = std::str::from_utf8(&h).map_err(|e| bad(format!("header is not UTF-8: {e}")))?;
        let json: serde_json::Value =
            serde_json::from_str(text).map_err(|e| bad(format!("header is not JSON: {e}")))?;
        let obj = json
            .as_object()
            .ok_or_else(|| bad("header is not a JSON object".into()))?;
        let data_start = 8 + n;
        let data_len = file.len - data_start;
        let mut tensors = BTreeMap::new();
        let mut ranges = Vec::new();
        for (name, v) in obj {
            if name == "__metadata__" {
                continue;
            }
            let dt = v
                .get("dtype")
                .and_then(|d| d.as_str())
                .ok_or_else(|| bad(format!("tensor `{name}` has no dtype")))?;
            let (dtype, size) = dtype_of(dt);
            if size == 0 {
                return Err(bad(format!("tensor `{name}` has unknown dtype `{dt}`")));
            }
            let shape: Vec<usize> = v
                .get("shape")
                .and_then(|s| s.as_array())
                .ok_or_else(|| bad(format!("tensor `{name}` has no shape")))?
                .iter()
                .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
                .collect::<Option<_>>()
                .ok_or_else(|| bad(format!("tensor `{name}` has a bad shape")))?;
            let offs: Vec<u64> = v
                .get("data_offsets")
                .and_then(|s| s.as_array())
                .ok_or_else(|| bad(format!("tensor `{name}` has no data_offsets")))?
                .iter()
                .map(|d| d.as_u64())
                .collect::<Option<_>>()
                .ok_or_else(|| bad(format!("tensor `{name}` has bad data_offsets")))?;
            let [s, e] = offs[..] else {
                return Err(bad(format!("tensor `{name}` has bad data_offsets")));
            };
            let numel = shape
                .iter()
                .try_fold(1u64, |a, &d| a.checked_mul(d as u64))
                .and_then(|x| x.checked_mul(size));
            if e < s || e > data_len || numel != Some(e - s) {
                return Err(bad(format!(
                    "tensor `{name}`: data_offsets [{s}, {e}] do not fit its {dt} shape {:?} or the {data_len}-byte data section",
                    shape
                )));
            }
            ranges.push((s, e));
            tensors.insert(
                name.clone(),
                Entry {
                    dtype,
                    shape,
                    start: data_start + s,
                    end: data_start + e,
                },
            );
        }
        ranges.sort_unstable();
        let mut at = 0u64;
        for (s, e) in ranges {
            if s != at {
                return Err(bad("tensor data ranges overlap or leave gaps".into()));
            }
            at = e;
        }
        if at != data_len {
            return Err(bad(format!(
                "the tensors cover {at} bytes but the data section has {data_len} (truncated or padded file?)"
            )));
        }
        Ok(Self { file, tensors })
    }
}

impl TensorSource for StFile {
    fn names(&self) -> Vec<String> {
        self.tensors.keys().cloned().collect()
    }
    fn meta(&self, name: &str) -> Option<TensorMeta> {
        self.tensors.get(name).map(|e| TensorMeta {
            shape: e.shape.clone(),
            dtype: e.dtype.clone(),
        })
    }
    fn read_f32(&mut self, name: &str) -> anyhow::Result<Vec<f32>> {
        let e = self
            .tensors
            .get(name)
            .with_context(|| format!("no tensor `{name}`"))?
            .clone();
        if e.dtype.size() == 0 {
            bail!("tensor `{name}` has dtype {}", e.dtype.name());
        }
        let bytes = self
            .file
            .read_at(e.start, e.end - e.start, &format!("tensor `{name}`"))?;
        Ok(decode(&e.dtype, &bytes))
    }
    fn len(&self) -> usize {
        self.tensors.len()
    }
}
