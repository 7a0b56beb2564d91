//! llama.cpp mmproj GGUF files (written by its image-encoder converter).
//!
//! The header, metadata and tensor infos are read (GGUF version 2 or 3; `general.alignment`
//! honoured), every count and length checked against the file size. `clip.projector_type`
//! (`ldp` = MobileVLM V1, `ldpv2` = MobileVLM V2) gives the architecture and
//! `clip.vision.image_size / clip.vision.patch_size` the token grid. The converter renames the
//! projector's keys (`model.mm_projector.` → `mm.`, then `mm.mlp.mlp` → `mm.model.mlp` and
//! `mm.peg.peg` → `mm.model.peg`), squeezes unit dimensions (depthwise `[C,3,3]`, 1×1 convs
//! `[C_out,C_in]`), stores matrices and convolutions as f16 and vectors as f32, and ggml lists
//! dimensions innermost first; [`GgufFile`] undoes all of that. The vision encoder (`v.*`) in the
//! same file is ignored.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use anyhow::{bail, Context};
use ldp_core::Arch;

use super::{decode, import_source, BoundedFile, Found, StoredDtype, TensorMeta, TensorSource};

/// The projector types this runtime runs, as `clip.projector_type` names them.
pub const SUPPORTED: &str =
    "`ldp` (MobileVLM V1 → mobilevlm-v1), `ldpv2` (MobileVLM V2 → mobilevlm-v2), `mlp` (LLaVA's \
     mlp2x_gelu → mlp2x-gelu)";

/// A metadata value (arrays are skipped, only their length kept).
#[derive(Debug, Clone, PartialEq)]
pub enum KvValue {
    /// Any unsigned integer type.
    U(u64),
    /// Any signed integer type.
    I(i64),
    /// f32 or f64.
    F(f64),
    /// bool.
    Bool(bool),
    /// string.
    Str(String),
    /// An array of this many items.
    Array(u64),
}

impl KvValue {
    fn as_u64(&self) -> Option<u64> {
        match *self {
            KvValue::U(v) => Some(v),
            KvValue::I(v) if v >= 0 => Some(v as u64),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
struct Info {
    /// ggml order (innermost first).
    dims: Vec<u64>,
    ty: u32,
    /// Absolute offset.
    start: u64,
}

/// ggml type names, for messages.
fn type_name(t: u32) -> String {
    let n = match t {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        6 => "Q5_0",
        7 => "Q5_1",
        8 => "Q8_0",
        9 => "Q8_1",
        10 => "Q2_K",
        11 => "Q3_K",
        12 => "Q4_K",
        13 => "Q5_K",
        14 => "Q6_K",
        15 => "Q8_K",
        24 => "I8",
        25 => "I16",
        26 => "I32",
        27 => "I64",
        28 => "F64",
        30 => "BF16",
        _ => return format!("ggml type {t}"),
    };
    n.to_string()
}

fn dtype_of(t: u32) -> StoredDtype {
    match t {
        0 => StoredDtype::F32,
        1 => StoredDtype::F16,
        30 => StoredDtype::BF16,
        other => StoredDtype::Other(type_name(other)),
    }
}

/// Header reader: a position and the file length bound every read.
struct Hdr {
    r: BufReader<File>,
    pos: u64,
    len: u64,
}

impl Hdr {
    fn bytes(&mut self, n: u64, what: &str) -> anyhow::Result<Vec<u8>> {
        if n > self.len.saturating_sub(self.pos) {
            bail!(
                "GGUF {what}: {n} bytes at offset {} run past the end of the file ({} bytes; truncated or corrupted?)",
                self.pos,
                self.len
            );
        }
        let mut b = vec![0u8; n as usize];
        self.r
            .read_exact(&mut b)
            .with_context(|| format!("GGUF {what}: read failed"))?;
        self.pos += n;
        Ok(b)
    }
    fn u32(&mut self, what: &str) -> anyhow::Result<u32> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self, what: &str) -> anyhow::Result<u64> {
        let b = self.bytes(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(&b);
        Ok(u64::from_le_bytes(a))
    }
    fn string(&mut self, what: &str) -> anyhow::Result<String> {
        let n = self.u64(what)?;
        let b = self.bytes(n, what)?;
        String::from_utf8(b).with_context(|| format!("GGUF {what}: not UTF-8"))
    }
    /// One value of type `t` (arrays: items read and dropped).
    fn value(&mut self, t: u32, what: &str, depth: u32) -> anyhow::Result<KvValue> {
        Ok(match t {
            0 => KvValue::U(self.bytes(1, what)?[0] as u64),
            1 => KvValue::I(self.bytes(1, what)?[0] as i8 as i64),
            2 => {
                let b = self.bytes(2, what)?;
                KvValue::U(u16::from_le_bytes([b[0], b[1]]) as u64)
            }
            3 => {
                let b = self.bytes(2, what)?;
                KvValue::I(i16::from_le_bytes([b[0], b[1]]) as i64)
            }
            4 => KvValue::U(self.u32(what)? as u64),
            5 => KvValue::I(self.u32(what)? as i32 as i64),
            6 => KvValue::F(f32::from_bits(self.u32(what)?) as f64),
            7 => KvValue::Bool(self.bytes(1, what)?[0] != 0),
            8 => KvValue::Str(self.string(what)?),
            9 => {
                if depth > 2 {
                    bail!("GGUF {what}: arrays nested too deep");
                }
                let it = self.u32(what)?;
                let n = self.u64(what)?;
                let min = match it {
                    0 | 1 | 7 => 1,
                    2 | 3 => 2,
                    4..=6 => 4,
                    8 | 10..=12 => 8,
                    9 => 12,
                    _ => bail!("GGUF {what}: unknown array item type {it}"),
                };
                if n.saturating_mul(min) > self.len - self.pos {
                    bail!("GGUF {what}: array of {n} items cannot fit in the file (corrupted?)");
                }
                if matches!(it, 8 | 9) {
                    for _ in 0..n {
                        self.value(it, what, depth + 1)?;
                    }
                } else {
                    self.bytes(n * min, what)?;
                }
                KvValue::Array(n)
            }
            10 => KvValue::U(self.u64(what)?),
            11 => KvValue::I(self.u64(what)? as i64),
            12 => KvValue::F(f64::from_bits(self.u64(what)?)),
            other => bail!("GGUF {what}: unknown value type {other} (corrupted file?)"),
        })
    }
}

/// An open GGUF file: metadata and tensor infos; tensor data read on demand.
#[derive(Debug)]
pub struct GgufFile {
    file: BoundedFile,
    /// GGUF version.
    pub version: u32,
    /// Alignment of the data section.
    pub alignment: u64,
    /// Metadata.
    pub kv: BTreeMap<String, KvValue>,
    infos: BTreeMap<String, Info>,
    /// Projector type the names are mapped for (`ldp`/`ldpv2`), once chosen.
    mapped: BTreeMap<String, String>,
}

impl GgufFile {
    /// Reads the header, metadata and tensor infos of `path`.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let file = BoundedFile::open(path)?;
        let f = File::open(path).with_context(|| format!("cannot read `{}`", path.display()))?;
        let mut h = Hdr {
            r: BufReader::new(f),
            pos: 0,
            len: file.len,
        };
        let magic = h.bytes(4, "magic")?;
        if magic != b"GGUF" {
            bail!("not a GGUF file (magic {magic:02x?})");
        }
        let version = h.u32("version")?;
        if !(2..=3).contains(&version) {
            bail!("GGUF version {version} is not supported (2 or 3 expected)");
        }
        let n_tensors = h.u64("tensor count")?;
        let n_kv = h.u64("metadata count")?;
        if n_tensors.saturating_mul(24) > file.len || n_kv.saturating_mul(12) > file.len {
            bail!("GGUF header claims {n_tensors} tensors and {n_kv} metadata entries, more than the {}-byte file can hold (corrupted?)", file.len);
        }
        let mut kv = BTreeMap::new();
        for i in 0..n_kv {
            let key = h.string(&format!("metadata key {i}"))?;
            let t = h.u32(&format!("type of `{key}`"))?;
            let v = h.value(t, &format!("value of `{key}`"), 0)?;
            kv.insert(key, v);
        }
        let alignment = match kv.get("general.alignment") {
            None => 32,
            Some(v) => match v.as_u64() {
                Some(a) if a > 0 && a.is_power_of_two() && a <= 1 << 20 => a,
                _ => bail!("GGUF general.alignment {v:?} is not a power of two"),
            },
        };
        let mut raw = Vec::new();
        for i in 0..n_tensors {
            let name = h.string(&format!("tensor {i} name"))?;
            let nd = h.u32(&format!("dimensions of `{name}`"))?;
            if nd > 4 {
                bail!("GGUF tensor `{name}` has {nd} dimensions (at most 4)");
            }
            let mut dims = Vec::new();
            for _ in 0..nd {
                dims.push(h.u64(&format!("dimensions of `{name}`"))?);
            }
            let ty = h.u32(&format!("type of `{name}`"))?;
            let off = h.u64(&format!("offset of `{name}`"))?;
            raw.push((name, dims, ty, off));
        }
        let data_start = h.pos.div_ceil(alignment) * alignment;
        let mut infos = BTreeMap::new();
        for (name, dims, ty, off) in raw {
            let start = data_start
                .checked_add(off)
                .with_context(|| format!("GGUF tensor `{name}`: offset overflows"))?;
            // Every tensor of a known float type must lie inside the file (a truncated file is
            // reported even when the projector's own bytes survived).
            let size = dtype_of(ty).size() as u64;
            if size > 0 {
                let end = dims
                    .iter()
                    .try_fold(size, |a, &d| a.checked_mul(d))
                    .and_then(|n| n.checked_add(start));
                if end.is_none_or(|e| e > file.len) {
                    bail!(
                        "GGUF tensor `{name}` ({} {:?} at byte {start}) runs past the end of the file ({} bytes; truncated or corrupted?)",
                        type_name(ty),
                        dims,
                        file.len
                    );
                }
            }
            infos.insert(name, Info { dims, ty, start });
        }
        Ok(Self {
            file,
            version,
            alignment,
            kv,
            infos,
            mapped: BTreeMap::new(),
        })
    }

    /// A string metadata value.
    pub fn str_kv(&self, key: &str) -> Option<&str> {
        match self.kv.get(key) {
            Some(KvValue::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// An integer metadata value.
    pub fn int_kv(&self, key: &str) -> Option<u64> {
        self.kv.get(key).and_then(KvValue::as_u64)
    }

    /// Every tensor name as stored.
    pub fn tensor_names(&self) -> Vec<String> {
        self.infos.keys().cloned().collect()
    }

    /// The projector type: `clip.projector_type` (or `clip.vision.projector_type`), else inferred
    /// from the tensor names; with where it came from.
    pub fn projector_type(&self) -> anyhow::Result<(String, &'static str)> {
        for key in ["clip.projector_type", "clip.vision.projector_type"] {
            if let Some(t) = self.str_kv(key) {
                return Ok((
                    t.to_string(),
                    if key.starts_with("clip.vision") {
                        "clip.vision.projector_type"
                    } else {
                        "clip.projector_type"
                    },
                ));
            }
        }
        if self.infos.keys().any(|k| k.starts_with("mm.model.peg.")) {
            return Ok(("ldpv2".into(), "tensor names (no clip.projector_type)"));
        }
        if self
            .infos
            .keys()
            .any(|k| k.starts_with("mm.model.mb_block."))
        {
            return Ok(("ldp".into(), "tensor names (no clip.projector_type)"));
        }
        bail!(
            "the GGUF file names no projector type (no clip.projector_type) and has no MobileVLM \
             projector tensors (`mm.model.*`); supported: {SUPPORTED}"
        )
    }

    /// Maps llama.cpp's names of the `ptype` projector to this crate's key names.
    fn map_names(&mut self, ptype: &str) {
        self.mapped.clear();
        for k in self.infos.keys() {
            if ptype == "mlp" {
                // llama.cpp writes `Sequential` index `N` of the projector as `mm.N.*`: the
                // checkpoint's own module path under `mm.`.
                if let Some(rest) = k.strip_prefix("mm.") {
                    if rest.starts_with(|c: char| c.is_ascii_digit()) {
                        self.mapped.insert(rest.to_string(), k.clone());
                    }
                }
                continue;
            }
            let Some(rest) = k.strip_prefix("mm.model.") else {
                continue;
            };
            let ours = match ptype {
                "ldp" => rest.to_string(),
                _ => {
                    if rest.starts_with("mlp.") || rest.starts_with("peg.") {
                        let head = &rest[..3];
                        format!("{head}.{rest}")
                    } else {
                        continue;
                    }
                }
            };
            self.mapped.insert(ours, k.clone());
        }
    }
}

impl TensorSource for GgufFile {
    fn names(&self) -> Vec<String> {
        self.mapped.keys().cloned().collect()
    }
    fn meta(&self, name: &str) -> Option<TensorMeta> {
        let i = self.infos.get(self.mapped.get(name)?)?;
        Some(TensorMeta {
            shape: i.dims.iter().rev().map(|&d| d as usize).collect(),
            dtype: dtype_of(i.ty),
        })
    }
    fn read_f32(&mut self, name: &str) -> anyhow::Result<Vec<f32>> {
        let g = self
            .mapped
            .get(name)
            .with_context(|| format!("no tensor `{name}`"))?
            .clone();
        let i = self.infos[&g].clone();
        let dt = dtype_of(i.ty);
        if dt.size() == 0 {
            bail!("GGUF tensor `{g}` has type {}", dt.name());
        }
        let n = i
            .dims
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .and_then(|n| n.checked_mul(dt.size() as u64))
            .with_context(|| format!("GGUF tensor `{g}`: size overflows"))?;
        let bytes = self
            .file
            .read_at(i.start, n, &format!("GGUF tensor `{g}`"))?;
        Ok(decode(&dt, &bytes))
    }
    fn stored_name(&self, name: &str) -> String {
        self.mapped
            .get(name)
            .cloned()
            .unwrap_or_else(|| name.to_string())
    }
    fn len(&self) -> usize {
        self.mapped.len()
    }
}

/// Imports the projector of an mmproj GGUF file; the architecture and grid come from the file.
pub fn import_gguf(path: &Path, arch: Option<Arch>, prefix: Option<&str>) -> anyhow::Result<Found> {
    let ctx = || format!("`{}`", path.display());
    let mut g = GgufFile::open(path).with_context(ctx)?;
    if let Some(p) = prefix {
        bail!("--prefix `{p}` does not apply to a GGUF file (its projector tensors are named `mm.*` by llama.cpp); drop --prefix");
    }
    let (ptype, from) = g.projector_type().with_context(ctx)?;
    let file_arch = match ptype.as_str() {
        "ldp" => Arch::MobileVlmV1,
        "ldpv2" => Arch::MobileVlmV2,
        "mlp" => Arch::Mlp2xGelu,
        other => bail!(
            "{}: projector type `{other}` (from {from}) is not supported; supported: {SUPPORTED}",
            ctx()
        ),
    };
    if let Some(a) = arch {
        if a != file_arch {
            bail!(
                "--arch {} but {} holds a `{ptype}` projector ({}); drop --arch or pass --arch {}",
                a.name(),
                ctx(),
                file_arch.name(),
                file_arch.name()
            );
        }
    }
    g.map_names(&ptype);
    let imported = import_source(&mut g, Some(file_arch), Some("")).with_context(|| {
        let map = if ptype == "ldp" {
            "`mm.model.X` is read as `X`"
        } else if ptype == "mlp" {
            "`mm.N.*` is read as `N.*`"
        } else {
            "`mm.model.mlp.N.*` is read as `mlp.mlp.N.*` and `mm.model.peg.0.*` as `peg.peg.0.*`"
        };
        format!("{} (projector type `{ptype}`: {map})", ctx())
    })?;
    let mut notes = vec![format!(
        "read {} (GGUF v{}, {} tensors, alignment {}): projector type `{ptype}` (from {from}) → {}, \
         {} projector tensors `mm.*`, stored {}",
        ctx(),
        g.version,
        g.infos.len(),
        g.alignment,
        file_arch.name(),
        g.mapped.len(),
        imported.source_dtypes.join("/")
    )];
    if let Some(w) = g.int_kv("clip.vision.embedding_length") {
        if w as usize != imported.c_in {
            bail!(
                "{}: clip.vision.embedding_length is {w} but the projector takes {} input channels (corrupted or mismatched file?)",
                ctx(),
                imported.c_in
            );
        }
    }
    let grid = match (
        g.int_kv("clip.vision.image_size"),
        g.int_kv("clip.vision.patch_size"),
    ) {
        (Some(img), Some(p)) => {
            if p == 0 || img % p != 0 || img / p == 0 || img / p > 4096 {
                bail!(
                    "{}: clip.vision.image_size {img} is not a multiple of clip.vision.patch_size {p}",
                    ctx()
                );
            }
            let h = (img / p) as usize;
            let from = format!("clip.vision.image_size {img} / clip.vision.patch_size {p}");
            notes.push(format!("token grid {h}x{h} from {from}"));
            Some(((h, h), from))
        }
        _ => None,
    };
    Ok(Found {
        imported,
        grid,
        grid_strict: true,
        notes,
    })
}
