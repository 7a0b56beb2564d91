//! safetensors → f32 tensors in the blob's spec order.
//!
//! The projector may be a file of its own or part of a whole-model checkpoint: the tensors are
//! looked up under each of [`PREFIXES`] (or one given prefix) and unrelated tensors are ignored.
//! The architecture is detected from the key names. Shapes are normalised to the blob's layouts
//! (pointwise `[O][I]`, depthwise `[C][9]`) and cross-checked against the channel counts that the
//! first weight implies.

use std::path::Path;

use anyhow::{bail, Context};
use ldp_core::blob::specs::{resolve, specs, Dim, TensorSpec};
use ldp_core::{Arch, DType};
use safetensors::{Dtype, SafeTensors};

/// Prefixes tried, in order, when none is given.
pub const PREFIXES: [&str; 3] = ["", "model.mm_projector.", "model.mm_projector.model."];

/// Every architecture, in detection order.
pub const ARCHS: [Arch; 3] = [Arch::Ldp, Arch::MobileVlmV1, Arch::MobileVlmV2];

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
}

/// Float tensor list of an architecture.
pub fn float_specs(arch: Arch) -> &'static [TensorSpec] {
    specs(arch, DType::F32)
}

/// Reads a safetensors file.
pub fn import_file(
    path: &Path,
    arch: Option<Arch>,
    prefix: Option<&str>,
) -> anyhow::Result<Imported> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    import_bytes(&bytes, arch, prefix).with_context(|| format!("`{}`", path.display()))
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
        (Kind::Depthwise, [c, 1, 3, 3]) => Some(vec![*c, 9]),
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

fn to_f32(key: &str, view: &safetensors::tensor::TensorView<'_>) -> anyhow::Result<Vec<f32>> {
    let data = view.data();
    let n: usize = view.shape().iter().product();
    let out: Vec<f32> = match view.dtype() {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => data
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        other => bail!(
            "tensor `{key}` has dtype {other}; only F32, F16 and BF16 are supported \
             (save the checkpoint in one of them, e.g. `model.float()`)"
        ),
    };
    if out.len() != n {
        bail!(
            "tensor `{key}` holds {} values but its shape needs {n} (corrupted file?)",
            out.len()
        );
    }
    Ok(out)
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
                    .filter(|s| has(&format!("{p}{}", s.name)))
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
                        float_specs(a)[0].name
                    )
                }
                None => format!(
                    "no projector tensors found: expected keys like `pointwise1.weight` (ldp), \
                     `mlp.1.weight` (mobilevlm-v1) or `mlp.mlp.0.weight` (mobilevlm-v2) with {where_}"
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

/// Imports the projector from safetensors bytes.
pub fn import_bytes(
    bytes: &[u8],
    arch: Option<Arch>,
    prefix: Option<&str>,
) -> anyhow::Result<Imported> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| anyhow::anyhow!("not a valid safetensors file: {e}"))?;
    let mut names: Vec<&str> = st.names();
    names.sort_unstable();
    let (arch, prefix) = detect(&names, arch, prefix)?;
    let specs = float_specs(arch);

    // Fetch every tensor first, so that a missing key is reported before a shape problem.
    let mut views = Vec::with_capacity(specs.len());
    for spec in specs {
        let key = format!("{prefix}{}", spec.name);
        match st.tensor(&key) {
            Ok(v) => views.push((key, v)),
            Err(_) => {
                let expected: Vec<String> = specs
                    .iter()
                    .map(|s| format!("{prefix}{}", s.name))
                    .collect();
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
    let first = &views[0];
    let dims0 = normalise(Kind::Matrix, first.1.shape()).with_context(|| {
        format!(
            "tensor `{}` has shape {}, expected a pointwise/linear weight [C_out, C_in, 1, 1] or [C_out, C_in]",
            first.0,
            crate::npy::shape_str(first.1.shape())
        )
    })?;
    let (c_out, c_in) = (dims0[0], dims0[1]);
    if c_out == 0 || c_in == 0 {
        bail!("tensor `{}` has a zero channel count", first.0);
    }
    let mut squeeze = 0usize;
    let mut inferred = format!("c_in={c_in}, c_out={c_out} from `{}`", first.0);
    if arch == Arch::MobileVlmV1 {
        let key = format!("{prefix}mb_block.1.block.1.fc1.weight");
        let (_, v) = views
            .iter()
            .find(|(k, _)| *k == key)
            .context("internal: V1 spec list has no SE weight")?;
        squeeze = match normalise(Kind::Matrix, v.shape()) {
            Some(d) if d[0] > 0 => d[0],
            _ => bail!(
                "tensor `{key}` has shape {}, expected [S, {c_out}, 1, 1] (S = squeeze width)",
                crate::npy::shape_str(v.shape())
            ),
        };
        inferred.push_str(&format!(", squeeze={squeeze} from `{key}`"));
    }

    let mut tensors = Vec::with_capacity(specs.len());
    let mut source_dtypes: Vec<String> = Vec::new();
    for (spec, (key, view)) in specs.iter().zip(&views) {
        let kind = kind_of(spec);
        let want: Vec<usize> = resolve(spec.dims, c_in as u32, c_out as u32, squeeze as u32)
            [..spec.dims.len()]
            .iter()
            .map(|&d| d as usize)
            .collect();
        match normalise(kind, view.shape()) {
            Some(d) if d == want => {}
            _ => bail!(
                "tensor `{key}` has shape {}, expected {} ({inferred})",
                crate::npy::shape_str(view.shape()),
                expected_pytorch(kind, &want)
            ),
        }
        let dt = view.dtype().to_string();
        if !source_dtypes.contains(&dt) {
            source_dtypes.push(dt);
        }
        let data = to_f32(key, view)?;
        if let Some((i, v)) = data.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            bail!(
                "tensor `{key}` has a non-finite weight ({v}) at flat index {i}; fix the checkpoint \
                 (the projector must have finite weights)"
            );
        }
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
    })
}
