//! Projector weights from the checkpoint files MobileVLM users have → f32 tensors in the blob's
//! spec order.
//!
//! [`import_path`] accepts a `.safetensors` file, a `torch.save` archive (`.bin`/`.pt`/`.pth`), a
//! sharded checkpoint's `*.index.json`, a llama.cpp mmproj `.gguf` file or a model directory; the
//! format is detected from the file's first bytes, not its name (see [`Format`]). Only the
//! projector's bytes are read from a large checkpoint: safetensors and `torch.save` files are
//! streamed (header, then the byte ranges of the projector's tensors), and of a sharded checkpoint
//! only the shards holding projector keys are opened.
//!
//! The projector may be a file of its own or part of a whole-model checkpoint: the tensors are
//! looked up under each of [`PREFIXES`] (or one given prefix) and unrelated tensors are ignored.
//! The architecture is detected from the key names. Shapes are normalised to the blob's layouts
//! (pointwise `[O][I]`, depthwise `[C][9]`) and cross-checked against the channel counts that the
//! first weight implies.
//!
//! * [`safetensors`]: streaming safetensors reader.
//! * [`zip`], [`pickle`]: the `torch.save` container and a restricted unpickler (no code runs).
//! * [`gguf`]: llama.cpp mmproj files (names and squeezed shapes mapped back).
//! * [`dir`]: model directories (`config.json`) and sharded checkpoints (`*.index.json`).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use ::safetensors::SafeTensors;
use anyhow::{bail, Context};
use ldp_core::blob::specs::{resolve, specs, Dim, TensorSpec};
use ldp_core::{Arch, DType};

pub mod dir;
pub mod gguf;
pub mod pickle;
pub mod safetensors;
pub mod zip;

/// Prefixes tried, in order, when none is given.
pub const PREFIXES: [&str; 3] = ["", "model.mm_projector.", "model.mm_projector.model."];

/// Every architecture, in detection order.
pub const ARCHS: [Arch; 4] = [
    Arch::Ldp,
    Arch::MobileVlmV1,
    Arch::MobileVlmV2,
    Arch::Mlp2xGelu,
];

/// Imported float weights of one projector.
#[derive(Debug, Clone)]
pub struct Imported {
    /// Detected (or forced) architecture.
    pub arch: Arch,
    /// The key prefix the projector was found under.
    pub prefix: String,
    /// Input channels (from the first weight).
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// SE squeeze width (MobileVLM V1), else 0.
    pub squeeze: usize,
    /// One f32 vector per entry of `specs(arch, DType::F32)`, in the blob layouts.
    pub tensors: Vec<Vec<f32>>,
    /// Storage types found in the file, e.g. `["BF16"]`.
    pub source_dtypes: Vec<String>,
    /// What was read, per tensor: the key in the file, its stored dtype and stored shape.
    pub stored: Vec<StoredTensor>,
}

/// One projector tensor as the file stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTensor {
    /// Key (or GGUF tensor name) in the file.
    pub key: String,
    /// Stored element type, e.g. `BF16`.
    pub dtype: String,
    /// Stored shape (PyTorch order; for GGUF, ggml's dimensions reversed).
    pub shape: Vec<usize>,
}

/// Float tensor list of an architecture.
pub fn float_specs(arch: Arch) -> &'static [TensorSpec] {
    specs(arch, DType::F32)
}

/// Reads a checkpoint (any [`Format`], or a model directory); see [`import_path`].
pub fn import_file(
    path: &Path,
    arch: Option<Arch>,
    prefix: Option<&str>,
) -> anyhow::Result<Imported> {
    Ok(import_path(path, arch, prefix)?.imported)
}

/// A checkpoint format, detected from the first bytes of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// safetensors: a little-endian u64 header length, then a JSON header.
    Safetensors,
    /// `torch.save` zip archive (`PK\x03\x04`).
    TorchZip,
    /// The pre-1.6 `torch.save` format (a bare pickle stream); not supported.
    TorchLegacy,
    /// llama.cpp GGUF (`GGUF`).
    Gguf,
    /// A JSON file: a sharded checkpoint's index.
    Json,
}

impl Format {
    /// A human name.
    pub fn name(self) -> &'static str {
        match self {
            Format::Safetensors => "safetensors",
            Format::TorchZip => "torch.save zip archive",
            Format::TorchLegacy => "legacy torch.save pickle",
            Format::Gguf => "GGUF",
            Format::Json => "JSON",
        }
    }
}

/// Detects the format of `path` from its first bytes.
pub fn detect_format(path: &Path) -> anyhow::Result<Format> {
    let mut f = File::open(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    let mut head = [0u8; 16];
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).with_context(|| format!("cannot read `{}`", path.display())),
        }
    }
    let head = &head[..n];
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return Ok(Format::TorchZip);
    }
    if head.starts_with(b"GGUF") {
        return Ok(Format::Gguf);
    }
    // safetensors: a plausible header length, then `{`. (The first 8 bytes of a JSON text read
    // as a little-endian u64 are far above the limit, so `{"abc": {` is not taken for one.)
    if head.len() >= 9 && head[8] == b'{' {
        let mut n = [0u8; 8];
        n.copy_from_slice(&head[..8]);
        if u64::from_le_bytes(n) <= safetensors::MAX_HEADER {
            return Ok(Format::Safetensors);
        }
    }
    if head.first() == Some(&0x80) && head.get(1).is_some_and(|&p| p <= 5) {
        return Ok(Format::TorchLegacy);
    }
    let first = head.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'{') {
        return Ok(Format::Json);
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let hint = match ext.as_str() {
        "safetensors" => {
            "; the name says safetensors but the header is not (truncated or corrupted file?)"
        }
        "bin" | "pt" | "pth" => {
            "; the name says torch.save but it is not a zip archive (truncated or corrupted file?)"
        }
        "gguf" => "; the name says GGUF but the magic is missing (truncated or corrupted file?)",
        _ => "",
    };
    bail!(
        "`{}`: unrecognised weights format (first bytes {:02x?}): expected safetensors, a torch.save \
         archive (.bin/.pt/.pth), a GGUF file, a *.index.json or a model directory{hint}",
        path.display(),
        &head[..head.len().min(8)]
    )
}

/// Everything [`import_path`] found.
#[derive(Debug, Clone)]
pub struct Found {
    /// The projector.
    pub imported: Imported,
    /// Input grid the file states (GGUF `clip.vision.image_size / patch_size`, or a model
    /// directory's vision tower name), with where it came from.
    pub grid: Option<((usize, usize), String)>,
    /// Whether [`Found::grid`] is a fact of the file (GGUF) that `--grid` must match, rather than
    /// a default `--grid` may override (a model directory's vision tower name).
    pub grid_strict: bool,
    /// What was found where, for the user (one line each).
    pub notes: Vec<String>,
}

impl Found {
    /// The notes plus a table of the stored tensors, ready to print.
    pub fn report(&self) -> String {
        let mut s = String::new();
        for n in &self.notes {
            s.push_str(n);
            s.push('\n');
        }
        let w = self
            .imported
            .stored
            .iter()
            .map(|t| t.key.len())
            .max()
            .unwrap_or(0);
        for t in &self.imported.stored {
            s.push_str(&format!(
                "  {:<w$}  {:<4}  {}\n",
                t.key,
                t.dtype,
                crate::npy::shape_str(&t.shape)
            ));
        }
        s
    }
}

/// Reads the projector from a file or model directory of any supported layout.
pub fn import_path(path: &Path, arch: Option<Arch>, prefix: Option<&str>) -> anyhow::Result<Found> {
    if path.is_dir() {
        return dir::import_dir(path, arch, prefix);
    }
    // A device, FIFO or socket could block on open or never end: only regular files are read.
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    if !meta.is_file() {
        bail!(
            "`{}` is not a regular file or a model directory (a device, FIFO or socket); \
             pass a checkpoint file or a directory",
            path.display()
        );
    }
    let format = detect_format(path)?;
    match format {
        Format::Json => dir::import_index(path, arch, prefix),
        Format::Gguf => gguf::import_gguf(path, arch, prefix),
        Format::TorchLegacy => bail!(
            "`{}` is a legacy (pre-1.6, non-zip) torch.save file, which is not supported; \
             re-save it with a current PyTorch (`torch.save(torch.load(f), f2)`) or as safetensors",
            path.display()
        ),
        Format::Safetensors | Format::TorchZip => {
            let mut src = open_tensor_file(path, format)?;
            let imported = import_source(src.as_mut(), arch, prefix)
                .with_context(|| format!("`{}`", path.display()))?;
            let notes = vec![format!(
                "read `{}` ({}, {} tensors): {} projector, {}, stored {}",
                path.display(),
                format.name(),
                src.len(),
                imported.arch.name(),
                prefix_str(&imported.prefix),
                imported.source_dtypes.join("/")
            )];
            Ok(Found {
                imported,
                grid: None,
                grid_strict: false,
                notes,
            })
        }
    }
}

/// Opens a safetensors or torch.save file as a tensor source (headers only).
pub(crate) fn open_tensor_file(
    path: &Path,
    format: Format,
) -> anyhow::Result<Box<dyn TensorSource>> {
    Ok(match format {
        Format::Safetensors => Box::new(
            safetensors::StFile::open(path).with_context(|| format!("`{}`", path.display()))?,
        ),
        Format::TorchZip => Box::new(
            pickle::TorchFile::open(path).with_context(|| format!("`{}`", path.display()))?,
        ),
        other => bail!(
            "`{}` is a {} file, expected safetensors or a torch.save archive",
            path.display(),
            other.name()
        ),
    })
}

/// Stored element types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredDtype {
    /// IEEE binary32.
    F32,
    /// IEEE binary16.
    F16,
    /// bfloat16.
    BF16,
    /// Anything else (named as the file names it); refused when a projector tensor has it.
    Other(String),
}

impl StoredDtype {
    /// Bytes per element (0 for [`StoredDtype::Other`]).
    pub fn size(&self) -> usize {
        match self {
            StoredDtype::F32 => 4,
            StoredDtype::F16 | StoredDtype::BF16 => 2,
            StoredDtype::Other(_) => 0,
        }
    }
    /// The name, e.g. `BF16`.
    pub fn name(&self) -> String {
        match self {
            StoredDtype::F32 => "F32".into(),
            StoredDtype::F16 => "F16".into(),
            StoredDtype::BF16 => "BF16".into(),
            StoredDtype::Other(s) => s.clone(),
        }
    }
}

/// Little-endian bytes → f32 (`bytes.len()` must be a multiple of the element size).
pub(crate) fn decode(dtype: &StoredDtype, bytes: &[u8]) -> Vec<f32> {
    match dtype {
        StoredDtype::F32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        StoredDtype::F16 => bytes
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        StoredDtype::BF16 => bytes
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        StoredDtype::Other(_) => Vec::new(),
    }
}

/// Shape and dtype of one tensor of a [`TensorSource`].
#[derive(Debug, Clone)]
pub struct TensorMeta {
    /// Shape (PyTorch order).
    pub shape: Vec<usize>,
    /// Stored element type.
    pub dtype: StoredDtype,
}

/// A set of named tensors whose data is read on demand.
pub trait TensorSource {
    /// Every tensor name, sorted.
    fn names(&self) -> Vec<String>;
    /// Shape and dtype of a tensor, if present.
    fn meta(&self, name: &str) -> Option<TensorMeta>;
    /// The tensor's values, row-major in its shape. Only called for F32/F16/BF16 tensors.
    fn read_f32(&mut self, name: &str) -> anyhow::Result<Vec<f32>>;
    /// The name as the file spells it, for messages (default: `name`).
    fn stored_name(&self, name: &str) -> String {
        name.to_string()
    }
    /// Number of tensors.
    fn len(&self) -> usize {
        self.names().len()
    }
    /// Whether there are no tensors.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A file opened for bounded, positioned reads.
#[derive(Debug)]
pub(crate) struct BoundedFile {
    file: File,
    /// File length in bytes.
    pub len: u64,
    /// For messages.
    pub path: PathBuf,
}

impl BoundedFile {
    pub(crate) fn open(path: &Path) -> anyhow::Result<Self> {
        let file = File::open(path).with_context(|| format!("cannot read `{}`", path.display()))?;
        let len = file
            .metadata()
            .with_context(|| format!("cannot read `{}`", path.display()))?
            .len();
        Ok(Self {
            file,
            len,
            path: path.to_path_buf(),
        })
    }

    /// Reads `len` bytes at `off`; fails (before allocating) if they are not all in the file.
    pub(crate) fn read_at(&mut self, off: u64, len: u64, what: &str) -> anyhow::Result<Vec<u8>> {
        let end = off.checked_add(len);
        match end {
            Some(e) if e <= self.len => {}
            _ => bail!(
                "{what}: bytes {off}..{} lie beyond the end of the file ({} bytes; truncated or corrupted file?)",
                off as u128 + len as u128,
                self.len
            ),
        }
        let n = usize::try_from(len).context("length does not fit in memory")?;
        let mut buf = vec![0u8; n];
        self.file
            .seek(SeekFrom::Start(off))
            .and_then(|_| self.file.read_exact(&mut buf))
            .with_context(|| format!("{what}: cannot read `{}`", self.path.display()))?;
        Ok(buf)
    }
}

/// In-memory safetensors as a [`TensorSource`] (for [`import_bytes`]).
struct StBytes<'a> {
    st: SafeTensors<'a>,
}

fn st_dtype(d: ::safetensors::Dtype) -> StoredDtype {
    match d {
        ::safetensors::Dtype::F32 => StoredDtype::F32,
        ::safetensors::Dtype::F16 => StoredDtype::F16,
        ::safetensors::Dtype::BF16 => StoredDtype::BF16,
        other => StoredDtype::Other(other.to_string()),
    }
}

impl TensorSource for StBytes<'_> {
    fn names(&self) -> Vec<String> {
        let mut n: Vec<String> = self.st.names().into_iter().map(String::from).collect();
        n.sort_unstable();
        n
    }
    fn meta(&self, name: &str) -> Option<TensorMeta> {
        let v = self.st.tensor(name).ok()?;
        Some(TensorMeta {
            shape: v.shape().to_vec(),
            dtype: st_dtype(v.dtype()),
        })
    }
    fn read_f32(&mut self, name: &str) -> anyhow::Result<Vec<f32>> {
        let v = self
            .st
            .tensor(name)
            .map_err(|e| anyhow::anyhow!("tensor `{name}`: {e}"))?;
        Ok(decode(&st_dtype(v.dtype()), v.data()))
    }
}

/// Imports the projector from safetensors bytes.
pub fn import_bytes(
    bytes: &[u8],
    arch: Option<Arch>,
    prefix: Option<&str>,
) -> anyhow::Result<Imported> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| anyhow::anyhow!("not a valid safetensors file: {e}"))?;
    import_source(&mut StBytes { st }, arch, prefix)
}

/// A few keys for an error message: the first `max`, then how many more.
fn key_list(keys: &[&str], max: usize) -> String {
    if keys.is_empty() {
        return "(none)".to_string();
    }
    let shown: Vec<String> = keys.iter().take(max).map(|k| format!("`{k}`")).collect();
    let mut s = shown.join(", ");
    if keys.len() > max {
        s.push_str(&format!(", … and {} more", keys.len() - max));
    }
    s
}

fn prefix_str(p: &str) -> String {
    if p.is_empty() {
        "no prefix".to_string()
    } else {
        format!("prefix `{p}`")
    }
}

/// How a spec entry's PyTorch shape looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `[C]`.
    Vector,
    /// Pointwise / linear, `[O, I, 1, 1]` or `[O, I]`.
    Matrix,
    /// Depthwise 3×3, `[C, 1, 3, 3]`, stored `[C][9]`.
    Depthwise,
}

fn kind_of(spec: &TensorSpec) -> Kind {
    match spec.dims {
        [_] => Kind::Vector,
        [_, Dim::Lit(9)] => Kind::Depthwise,
        _ => Kind::Matrix,
    }
}

/// The blob-layout dims of a PyTorch shape, or `None` if the shape does not fit the kind.
fn normalise(kind: Kind, shape: &[usize]) -> Option<Vec<usize>> {
    match (kind, shape) {
        (Kind::Vector, [c]) => Some(vec![*c]),
        (Kind::Matrix, [o, i]) | (Kind::Matrix, [o, i, 1, 1]) => Some(vec![*o, *i]),
        (Kind::Depthwise, [c, 1, 3, 3]) | (Kind::Depthwise, [c, 3, 3]) => Some(vec![*c, 9]),
        _ => None,
    }
}

/// The PyTorch shape we expect, for messages.
fn expected_pytorch(kind: Kind, dims: &[usize]) -> String {
    match (kind, dims) {
        (Kind::Depthwise, [c, _]) => format!("[{c}, 1, 3, 3]"),
        (Kind::Matrix, [o, i]) => format!("[{o}, {i}, 1, 1] or [{o}, {i}]"),
        _ => crate::npy::shape_str(dims),
    }
}

/// Finds the architecture and prefix the file's keys match.
fn detect(
    names: &[&str],
    arch: Option<Arch>,
    prefix: Option<&str>,
) -> anyhow::Result<(Arch, String)> {
    let has = |k: &str| names.binary_search(&k).is_ok();
    let prefixes: Vec<&str> = match prefix {
        Some(p) => vec![p],
        None => PREFIXES.to_vec(),
    };
    let scan = |archs: &[Arch]| -> Vec<(Arch, String, usize)> {
        let mut found = Vec::new();
        for &a in archs {
            for p in &prefixes {
                let n = float_specs(a)
                    .iter()
                    .filter(|s| has(&format!("{p}{s}")))
                    .count();
                if n > 0 {
                    found.push((a, p.to_string(), n));
                }
            }
        }
        found
    };
    let archs: Vec<Arch> = match arch {
        Some(a) => vec![a],
        None => ARCHS.to_vec(),
    };
    let found = scan(&archs);
    match found.as_slice() {
        [] => {
            let where_ = match prefix {
                Some(p) => prefix_str(p),
                None => {
                    "no prefix, `model.mm_projector.` or `model.mm_projector.model.`".to_string()
                }
            };
            let what = match arch {
                Some(a) => {
                    let other = scan(&ARCHS);
                    let hint = match other.first() {
                        Some((o, p, _)) => format!(
                            "; the file looks like `{}` ({}) — drop --arch or pass --arch {}",
                            o.name(),
                            prefix_str(p),
                            o.name()
                        ),
                        None => String::new(),
                    };
                    format!(
                        "no `{}` projector tensors (e.g. `{}`) with {where_}{hint}",
                        a.name(),
                        float_specs(a)[0]
                    )
                }
                None => format!(
                    "no projector tensors found: expected keys like `pointwise1.weight` (ldp), \
                     `mlp.1.weight` (mobilevlm-v1), `mlp.mlp.0.weight` (mobilevlm-v2) or \
                     `0.weight` (mlp2x-gelu) with {where_}"
                ),
            };
            bail!(
                "{what}; the file has {} tensors: {}; pass --prefix if the projector sits under another prefix",
                names.len(),
                key_list(names, 8)
            )
        }
        [(a, p, _)] => Ok((*a, p.clone())),
        many => {
            let mut archs_found: Vec<Arch> = many.iter().map(|c| c.0).collect();
            archs_found.dedup();
            let list: Vec<String> = many
                .iter()
                .map(|(a, p, n)| format!("`{}` ({}, {n} tensors)", a.name(), prefix_str(p)))
                .collect();
            if archs_found.len() > 1 {
                bail!(
                    "ambiguous architecture: the file has tensors of {}; pass --arch (and --prefix) to choose",
                    list.join(" and ")
                )
            } else {
                bail!(
                    "ambiguous prefix: the file has tensors of {}; pass --prefix to choose",
                    list.join(" and ")
                )
            }
        }
    }
}

/// Imports the projector from any [`TensorSource`]: detects the architecture and prefix, checks
/// every shape, then reads only the projector's tensors.
pub fn import_source(
    src: &mut dyn TensorSource,
    arch: Option<Arch>,
    prefix: Option<&str>,
) -> anyhow::Result<Imported> {
    let names_owned = src.names();
    let mut names: Vec<&str> = names_owned.iter().map(String::as_str).collect();
    names.sort_unstable();
    let (arch, prefix) = detect(&names, arch, prefix)?;
    let specs = float_specs(arch);

    // Fetch every tensor's metadata first, so that a missing key is reported before a shape problem.
    let mut metas = Vec::with_capacity(specs.len());
    for spec in specs {
        let key = format!("{prefix}{spec}");
        match src.meta(&key) {
            Some(m) => metas.push((key, m)),
            None => {
                let expected: Vec<String> = specs.iter().map(|s| format!("{prefix}{s}")).collect();
                let under: Vec<&str> = names
                    .iter()
                    .copied()
                    .filter(|k| k.starts_with(prefix.as_str()))
                    .collect();
                let present = under
                    .iter()
                    .filter(|k| expected.iter().any(|e| e == *k))
                    .count();
                // Keys the architecture does not use are the likely misnamed ones: show them first.
                let others: Vec<&str> = under
                    .iter()
                    .copied()
                    .filter(|k| !expected.iter().any(|e| e == k))
                    .collect();
                let (label, list) = if others.is_empty() {
                    ("keys found", under)
                } else {
                    ("unused keys found", others)
                };
                bail!(
                    "missing tensor `{key}` (architecture `{}`, {}; {present} of {} expected tensors present); \
                     {label}{}: {}; check the checkpoint's key names or pass --arch/--prefix",
                    arch.name(),
                    prefix_str(&prefix),
                    specs.len(),
                    if prefix.is_empty() { String::new() } else { format!(" under `{prefix}`") },
                    key_list(&list, 10)
                )
            }
        }
    }

    // Channel counts from the first weight ([c_out, c_in]), squeeze width from V1's first SE.
    let first = &metas[0];
    let dims0 = normalise(Kind::Matrix, &first.1.shape).with_context(|| {
        format!(
            "tensor `{}` has shape {}, expected a pointwise/linear weight [C_out, C_in, 1, 1] or [C_out, C_in]",
            src.stored_name(&first.0),
            crate::npy::shape_str(&first.1.shape)
        )
    })?;
    let (c_out, c_in) = (dims0[0], dims0[1]);
    if c_out == 0 || c_in == 0 {
        bail!(
            "tensor `{}` has a zero channel count",
            src.stored_name(&first.0)
        );
    }
    let mut squeeze = 0usize;
    let mut inferred = format!(
        "c_in={c_in}, c_out={c_out} from `{}`",
        src.stored_name(&first.0)
    );
    // The squeeze width: the rows of the first squeeze-excitation's `fc1.weight`.
    let se = ldp_core::graph::definition(arch).and_then(|g| {
        g.nodes
            .iter()
            .find(|n| matches!(n.op, ldp_core::graph::Op::SqueezeExcite { .. }))
    });
    if let Some(se) = se {
        let key = format!("{prefix}{}.fc1.weight", se.name);
        let (_, m) = metas
            .iter()
            .find(|(k, _)| *k == key)
            .context("internal: the tensor list has no squeeze-excitation weight")?;
        squeeze = match normalise(Kind::Matrix, &m.shape) {
            Some(d) if d[0] > 0 => d[0],
            _ => bail!(
                "tensor `{}` has shape {}, expected [S, {c_out}, 1, 1] (S = squeeze width)",
                src.stored_name(&key),
                crate::npy::shape_str(&m.shape)
            ),
        };
        inferred.push_str(&format!(
            ", squeeze={squeeze} from `{}`",
            src.stored_name(&key)
        ));
    }

    // Shapes and dtypes of everything before reading any data.
    for (spec, (key, m)) in specs.iter().zip(&metas) {
        let kind = kind_of(spec);
        let want: Vec<usize> = resolve(spec.dims, c_in as u32, c_out as u32, squeeze as u32)
            [..spec.dims.len()]
            .iter()
            .map(|&d| d as usize)
            .collect();
        match normalise(kind, &m.shape) {
            Some(d) if d == want => {}
            _ => bail!(
                "tensor `{}` has shape {}, expected {} ({inferred})",
                src.stored_name(key),
                crate::npy::shape_str(&m.shape),
                expected_pytorch(kind, &want)
            ),
        }
        if let StoredDtype::Other(other) = &m.dtype {
            bail!(
                "tensor `{}` has dtype {other}; only F32, F16 and BF16 are supported \
                 (save the checkpoint in one of them, e.g. `model.float()`)",
                src.stored_name(key)
            );
        }
    }

    let mut tensors = Vec::with_capacity(specs.len());
    let mut source_dtypes: Vec<String> = Vec::new();
    let mut stored = Vec::with_capacity(specs.len());
    for (key, m) in &metas {
        let shown = src.stored_name(key);
        let dt = m.dtype.name();
        if !source_dtypes.contains(&dt) {
            source_dtypes.push(dt.clone());
        }
        let n = m
            .shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .with_context(|| format!("tensor `{shown}`: element count overflows"))?;
        let data = src.read_f32(key)?;
        if data.len() != n {
            bail!(
                "tensor `{shown}` holds {} values but its shape needs {n} (corrupted file?)",
                data.len()
            );
        }
        if let Some((i, v)) = data.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            bail!(
                "tensor `{shown}` has a non-finite weight ({v}) at flat index {i}; fix the checkpoint \
                 (the projector must have finite weights)"
            );
        }
        stored.push(StoredTensor {
            key: shown,
            dtype: dt,
            shape: m.shape.clone(),
        });
        tensors.push(data);
    }
    Ok(Imported {
        arch,
        prefix,
        c_in,
        c_out,
        squeeze,
        tensors,
        source_dtypes,
        stored,
    })
}
