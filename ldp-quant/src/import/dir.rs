//! Model directories and sharded checkpoints.
//!
//! A directory is read the way the official MobileVLM releases are laid out: `config.json`
//! (`mm_projector_type` `ldpnet` = MobileVLM V1, `ldpnetv2` = MobileVLM V2, `mm_hidden_size` =
//! the projector's input width, `hidden_size` = its output width, `mm_vision_tower` naming the
//! CLIP patch and image size) and the weights: a sharded checkpoint's index, or one weights file.
//! Of a sharded checkpoint only the shards that hold projector keys are opened.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{bail, Context};
use ldp_core::Arch;

use super::{
    detect_format, float_specs, import_source, open_tensor_file, prefix_str, Format, Found,
    TensorMeta, TensorSource, ARCHS, PREFIXES,
};

/// Weights files looked for in a model directory, in order.
pub const WEIGHT_FILES: [&str; 6] = [
    "model.safetensors.index.json",
    "model.safetensors",
    "pytorch_model.bin.index.json",
    "pytorch_model.bin",
    "mm_projector.bin",
    "mm_projector.safetensors",
];

/// Largest JSON file read (index or config).
const MAX_JSON: u64 = 64 << 20;

fn read_json(path: &Path) -> anyhow::Result<serde_json::Value> {
    let len = std::fs::metadata(path)
        .with_context(|| format!("cannot read `{}`", path.display()))?
        .len();
    if len > MAX_JSON {
        bail!(
            "`{}` is {len} bytes, too large for a JSON index or config",
            path.display()
        );
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read `{}`", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("`{}` is not valid JSON", path.display()))
}

/// Several shards as one source.
struct Shards {
    parts: Vec<Box<dyn TensorSource>>,
}

impl Shards {
    fn find(&self, name: &str) -> Option<usize> {
        self.parts.iter().position(|p| p.meta(name).is_some())
    }
}

impl TensorSource for Shards {
    fn names(&self) -> Vec<String> {
        let set: BTreeSet<String> = self.parts.iter().flat_map(|p| p.names()).collect();
        set.into_iter().collect()
    }
    fn meta(&self, name: &str) -> Option<TensorMeta> {
        self.parts.iter().find_map(|p| p.meta(name))
    }
    fn read_f32(&mut self, name: &str) -> anyhow::Result<Vec<f32>> {
        let i = self
            .find(name)
            .with_context(|| format!("no tensor `{name}`"))?;
        self.parts[i].read_f32(name)
    }
}

/// Imports from a sharded checkpoint's `*.index.json` (`weight_map`: key → shard file).
pub fn import_index(
    path: &Path,
    arch: Option<Arch>,
    prefix: Option<&str>,
) -> anyhow::Result<Found> {
    let ctx = || format!("`{}`", path.display());
    let json = read_json(path)?;
    let map = json
        .get("weight_map")
        .and_then(|m| m.as_object())
        .with_context(|| {
            format!(
                "{}: no `weight_map` object; not a sharded-checkpoint index",
                ctx()
            )
        })?;
    let all_files: BTreeSet<&str> = map.values().filter_map(|v| v.as_str()).collect();
    let archs: Vec<Arch> = arch.map(|a| vec![a]).unwrap_or_else(|| ARCHS.to_vec());
    let prefixes: Vec<&str> = prefix.map(|p| vec![p]).unwrap_or_else(|| PREFIXES.to_vec());
    let mut files: BTreeSet<String> = BTreeSet::new();
    let mut n_keys = 0usize;
    for a in &archs {
        for p in &prefixes {
            for s in float_specs(*a) {
                if let Some(f) = map.get(&format!("{p}{s}")) {
                    let f = f.as_str().with_context(|| {
                        format!("{}: weight_map value is not a file name", ctx())
                    })?;
                    files.insert(f.to_string());
                    n_keys += 1;
                }
            }
        }
    }
    if files.is_empty() {
        let keys: Vec<&str> = map.keys().map(String::as_str).collect();
        bail!(
            "{}: none of its {} keys is a projector key (expected e.g. `model.mm_projector.model.mlp.1.weight` \
             (mobilevlm-v1) or `model.mm_projector.mlp.mlp.0.weight` (mobilevlm-v2)); keys: {}; pass --prefix if \
             the projector sits under another prefix",
            ctx(),
            map.len(),
            super::key_list(&keys, 8)
        );
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let mut parts: Vec<Box<dyn TensorSource>> = Vec::new();
    let mut opened = Vec::new();
    for f in &files {
        if f.contains('/') || f.contains('\\') || f.contains("..") || f.is_empty() {
            bail!("{}: shard name `{f}` is not a plain file name", ctx());
        }
        let p = base.join(f);
        let fmt = detect_format(&p).with_context(|| format!("shard `{f}` named by {}", ctx()))?;
        if !matches!(fmt, Format::Safetensors | Format::TorchZip) {
            bail!("shard `{f}` named by {} is a {} file, expected safetensors or a torch.save archive", ctx(), fmt.name());
        }
        parts.push(open_tensor_file(&p, fmt)?);
        opened.push(format!("`{f}` ({})", fmt.name()));
    }
    let mut src = Shards { parts };
    let imported = import_source(&mut src, arch, prefix).with_context(ctx)?;
    let notes = vec![format!(
        "read index {} ({} keys in {} shards): {} projector keys in {} — opened {} of {} shards; {} projector, {}, stored {}",
        ctx(),
        map.len(),
        all_files.len(),
        n_keys,
        opened.join(", "),
        opened.len(),
        all_files.len(),
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

/// The token grid a CLIP tower name implies, e.g. `openai/clip-vit-large-patch14-336` → 24.
fn grid_from_tower(name: &str) -> Option<usize> {
    let i = name.find("patch")?;
    let rest = &name[i + 5..];
    let p_end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let patch: usize = rest[..p_end].parse().ok()?;
    let rest = rest[p_end..].strip_prefix('-')?;
    let s_end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let size: usize = rest[..s_end].parse().ok()?;
    (patch > 0 && size % patch == 0 && size / patch > 0).then_some(size / patch)
}

/// Imports from a model directory (see the module docs).
pub fn import_dir(path: &Path, arch: Option<Arch>, prefix: Option<&str>) -> anyhow::Result<Found> {
    let ctx = || format!("model directory `{}`", path.display());
    let cfg_path = path.join("config.json");
    let mut notes = Vec::new();
    let mut cfg_arch = None;
    let mut sizes = (None, None);
    let mut grid = None;
    if cfg_path.is_file() {
        let cfg = read_json(&cfg_path)?;
        let ptype = cfg.get("mm_projector_type").and_then(|v| v.as_str());
        cfg_arch = match ptype {
            Some("ldpnet") => Some(Arch::MobileVlmV1),
            Some("ldpnetv2") => Some(Arch::MobileVlmV2),
            Some("mlp2x_gelu") => Some(Arch::Mlp2xGelu),
            Some(t) => bail!(
                "{}: config.json mm_projector_type `{t}` is not supported; supported: `ldpnet` (MobileVLM V1), \
                 `ldpnetv2` (MobileVLM V2), `mlp2x_gelu` (LLaVA)",
                ctx()
            ),
            None => None,
        };
        if let (Some(a), Some(c)) = (arch, cfg_arch) {
            if a != c {
                bail!(
                    "--arch {} but {} says mm_projector_type `{}` ({}); drop --arch",
                    a.name(),
                    ctx(),
                    ptype.unwrap_or(""),
                    c.name()
                );
            }
        }
        let num = |k: &str| cfg.get(k).and_then(|v| v.as_u64()).map(|v| v as usize);
        sizes = (num("mm_hidden_size"), num("hidden_size"));
        let tower = cfg.get("mm_vision_tower").and_then(|v| v.as_str());
        if let Some(h) = tower.and_then(grid_from_tower) {
            grid = Some((
                (h, h),
                format!("config.json mm_vision_tower `{}`", tower.unwrap_or("")),
            ));
        }
        notes.push(format!(
            "model directory `{}`: config.json mm_projector_type {}{}, mm_hidden_size {}, hidden_size {}{}",
            path.display(),
            ptype.map(|p| format!("`{p}`")).unwrap_or_else(|| "(none)".into()),
            cfg_arch.map(|a| format!(" → {}", a.name())).unwrap_or_default(),
            sizes.0.map(|s| s.to_string()).unwrap_or_else(|| "(none)".into()),
            sizes.1.map(|s| s.to_string()).unwrap_or_else(|| "(none)".into()),
            grid.as_ref().map(|((h, w), _)| format!(", token grid {h}x{w} from mm_vision_tower")).unwrap_or_default(),
        ));
    } else {
        notes.push(format!(
            "model directory `{}`: no config.json",
            path.display()
        ));
    }
    let arch = arch.or(cfg_arch);
    let Some(wf) = WEIGHT_FILES
        .iter()
        .map(|f| path.join(f))
        .find(|p| p.is_file())
    else {
        bail!(
            "{}: no weights found (looked for {})",
            ctx(),
            WEIGHT_FILES.map(|f| format!("`{f}`")).join(", ")
        );
    };
    let found = match detect_format(&wf)? {
        Format::Json => import_index(&wf, arch, prefix)?,
        Format::Safetensors | Format::TorchZip => super::import_path(&wf, arch, prefix)?,
        other => bail!("`{}` is a {} file", wf.display(), other.name()),
    };
    let imp = &found.imported;
    if let Some(ci) = sizes.0 {
        if ci != imp.c_in {
            bail!(
                "{}: config.json mm_hidden_size is {ci} but the projector in `{}` takes {} input channels",
                ctx(),
                wf.display(),
                imp.c_in
            );
        }
    }
    if let Some(co) = sizes.1 {
        if co != imp.c_out {
            bail!(
                "{}: config.json hidden_size is {co} but the projector in `{}` has {} output channels",
                ctx(),
                wf.display(),
                imp.c_out
            );
        }
    }
    notes.extend(found.notes);
    Ok(Found {
        imported: found.imported,
        grid_strict: grid.is_none() && found.grid_strict,
        grid: grid.or(found.grid),
        notes,
    })
}
