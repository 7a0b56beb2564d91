//! `torch.save` archives without Python, and without running anything.
//!
//! A `torch.save` file (PyTorch ≥ 1.6) is a zip archive holding `<root>/data.pkl`, a pickle of the
//! saved object, and one entry `<root>/data/<key>` per storage. [`TorchFile`] reads the zip's
//! central directory ([`super::zip`]), then interprets `data.pkl` with a *restricted* unpickler:
//!
//! * only the opcodes a state dict needs are known (protocols 2-5: `PROTO`, `FRAME`, `MARK`,
//!   strings, ints, tuples, lists, dicts, `BINPUT`/`BINGET`/`MEMOIZE`, `GLOBAL`/`STACK_GLOBAL`,
//!   `BINPERSID`, `REDUCE`, `BUILD` on a dict, `SETITEM(S)`, `APPEND(S)`, `NONE`, bools, `STOP`);
//!   any other opcode (`INST`, `OBJ`, `NEWOBJ`, `EXT*`, …) is refused;
//! * `GLOBAL` resolves only to a fixed list of names — `collections.OrderedDict`,
//!   `torch._utils._rebuild_tensor_v2` / `_rebuild_tensor` / `_rebuild_parameter` /
//!   `_rebuild_parameter_with_state` and the typed storage classes (`torch.FloatStorage`,
//!   `torch.HalfStorage`, `torch.BFloat16Storage`, …). Any other global (`posix.system`,
//!   `builtins.eval`, …) stops the load with an error naming it;
//! * `REDUCE` "calls" only those rebuild functions and `OrderedDict`, and a call only builds a
//!   value in this module: a tensor reference (storage key, offset, shape, strides) or a dict.
//!
//! Nothing from the file is ever executed. The storages are then read lazily: only the byte
//! range a requested tensor covers (offset and strides honoured), never the whole archive.
//! Values are reference-counted, so memo references cannot blow up memory.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::rc::Rc;

use anyhow::{bail, Context};

use super::zip::{EntryRange, ZipIndex};
use super::{decode, BoundedFile, StoredDtype, TensorMeta, TensorSource};

/// Largest `data.pkl` accepted (a 7B checkpoint shard's is well under 1 MB).
const MAX_PICKLE: u64 = 64 << 20;
/// Most opcodes interpreted (a state dict takes about 30 per tensor): bounds the memory a
/// hostile pickle can make the stack, memo and dicts hold.
const MAX_OPS: usize = 1 << 23;
/// Deepest nesting of dicts flattened into dotted keys.
const MAX_DEPTH: usize = 8;

/// A storage as the pickle references it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageRef {
    /// Key: the storage's entry is `<root>/data/<key>`.
    pub key: String,
    /// Element type (from the storage class).
    pub dtype: StoredDtype,
    /// Element size in bytes.
    pub elem: u64,
    /// Number of elements the pickle says the storage holds.
    pub numel: u64,
}

/// A tensor as `_rebuild_tensor_v2` describes it: a view into a storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorRef {
    /// The storage.
    pub storage: Rc<StorageRef>,
    /// Offset into the storage, in elements.
    pub offset: u64,
    /// Shape.
    pub shape: Vec<usize>,
    /// Strides, in elements.
    pub stride: Vec<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Global {
    OrderedDict,
    RebuildTensorV2,
    RebuildTensor,
    RebuildParameter,
    RebuildParameterWithState,
    Storage(&'static str, &'static str, u64),
}

#[derive(Debug, Clone)]
enum Value {
    None,
    Bool,
    Int(i64),
    Float,
    Str(Rc<str>),
    Tuple(Rc<Vec<Value>>),
    List(Rc<Vec<Value>>),
    Dict(Rc<Vec<(Value, Value)>>),
    Global(Global),
    Storage(Rc<StorageRef>),
    Tensor(Rc<TensorRef>),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool => "bool",
            Value::Int(_) => "int",
            Value::Float => "float",
            Value::Str(_) => "str",
            Value::Tuple(_) => "tuple",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
            Value::Global(_) => "global",
            Value::Storage(_) => "storage",
            Value::Tensor(_) => "tensor",
        }
    }
}

const STORAGES: [(&str, &str, u64); 10] = [
    ("FloatStorage", "F32", 4),
    ("HalfStorage", "F16", 2),
    ("BFloat16Storage", "BF16", 2),
    ("DoubleStorage", "F64", 8),
    ("LongStorage", "I64", 8),
    ("IntStorage", "I32", 4),
    ("ShortStorage", "I16", 2),
    ("CharStorage", "I8", 1),
    ("ByteStorage", "U8", 1),
    ("BoolStorage", "BOOL", 1),
];

fn lookup_global(module: &str, name: &str) -> anyhow::Result<Global> {
    Ok(match (module, name) {
        ("collections", "OrderedDict") => Global::OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2") => Global::RebuildTensorV2,
        ("torch._utils", "_rebuild_tensor") => Global::RebuildTensor,
        ("torch._utils", "_rebuild_parameter") => Global::RebuildParameter,
        ("torch._utils", "_rebuild_parameter_with_state") => Global::RebuildParameterWithState,
        ("torch", n) => match STORAGES.iter().find(|s| s.0 == n) {
            Some(&(s, d, e)) => Global::Storage(s, d, e),
            None => refuse_global(module, name)?,
        },
        _ => refuse_global(module, name)?,
    })
}

fn refuse_global(module: &str, name: &str) -> anyhow::Result<Global> {
    bail!(
        "refusing pickle global `{module}.{name}`: a checkpoint may only reference tensor-rebuild \
         functions (torch._utils._rebuild_tensor_v2, _rebuild_parameter), storage types \
         (torch.FloatStorage, HalfStorage, BFloat16Storage, …) and collections.OrderedDict; \
         nothing was executed (this file may be malicious — do not load it with torch.load)"
    )
}

fn global_name(g: Global) -> String {
    match g {
        Global::OrderedDict => "collections.OrderedDict".into(),
        Global::RebuildTensorV2 => "torch._utils._rebuild_tensor_v2".into(),
        Global::RebuildTensor => "torch._utils._rebuild_tensor".into(),
        Global::RebuildParameter => "torch._utils._rebuild_parameter".into(),
        Global::RebuildParameterWithState => "torch._utils._rebuild_parameter_with_state".into(),
        Global::Storage(s, _, _) => format!("torch.{s}"),
    }
}

fn opcode_name(op: u8) -> &'static str {
    match op {
        b'i' => "INST",
        b'o' => "OBJ",
        0x81 => "NEWOBJ",
        0x92 => "NEWOBJ_EX",
        0x82..=0x84 => "EXT",
        b'P' => "PERSID",
        b'I' => "INT",
        b'L' => "LONG",
        b'S' => "STRING",
        b'V' => "UNICODE",
        b'F' => "FLOAT",
        b'g' => "GET",
        b'p' => "PUT",
        0x8b => "LONG4",
        0x8f => "EMPTY_SET",
        0x90 => "ADDITEMS",
        0x91 => "FROZENSET",
        0x96..=0x98 => "BYTEARRAY8/NEXT_BUFFER/READONLY_BUFFER",
        b'B' | b'C' | 0x8e => "BINBYTES",
        _ => "unknown",
    }
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> anyhow::Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        match end {
            Some(e) => {
                let s = &self.data[self.pos..e];
                self.pos = e;
                Ok(s)
            }
            None => bail!(
                "pickle truncated: needs {n} bytes at byte {} of {} (corrupted data.pkl?)",
                self.pos,
                self.data.len()
            ),
        }
    }
    fn u8(&mut self) -> anyhow::Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> anyhow::Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> anyhow::Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> anyhow::Result<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn line(&mut self) -> anyhow::Result<&'a str> {
        let rest = &self.data[self.pos..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .context("pickle GLOBAL without a newline (corrupted data.pkl?)")?;
        let s = std::str::from_utf8(&rest[..n]).context("pickle GLOBAL name is not UTF-8")?;
        self.pos += n + 1;
        Ok(s)
    }
    fn string(&mut self, n: u64) -> anyhow::Result<Value> {
        let n = usize::try_from(n).context("pickle string length overflows")?;
        let b = self.take(n)?;
        let s =
            std::str::from_utf8(b).context("pickle string is not UTF-8 (corrupted data.pkl?)")?;
        Ok(Value::Str(Rc::from(s)))
    }
}

fn as_usize(v: &Value, what: &str) -> anyhow::Result<u64> {
    match v {
        Value::Int(i) if *i >= 0 => Ok(*i as u64),
        other => bail!("{what}: expected a non-negative int, got {}", other.kind()),
    }
}

fn int_tuple(v: &Value, what: &str) -> anyhow::Result<Vec<u64>> {
    match v {
        Value::Tuple(t) | Value::List(t) => t.iter().map(|x| as_usize(x, what)).collect(),
        other => bail!("{what}: expected a tuple of ints, got {}", other.kind()),
    }
}

fn call(g: Global, args: &Value) -> anyhow::Result<Value> {
    let args: &[Value] = match args {
        Value::Tuple(t) => t,
        other => bail!(
            "REDUCE of `{}` with {} arguments instead of a tuple",
            global_name(g),
            other.kind()
        ),
    };
    match g {
        Global::OrderedDict => match args {
            [] => Ok(Value::Dict(Rc::new(Vec::new()))),
            [Value::List(items)] | [Value::Tuple(items)] => {
                let mut d = Vec::with_capacity(items.len());
                for it in items.iter() {
                    match it {
                        Value::Tuple(kv) if kv.len() == 2 => d.push((kv[0].clone(), kv[1].clone())),
                        _ => bail!("OrderedDict item is not a (key, value) pair"),
                    }
                }
                Ok(Value::Dict(Rc::new(d)))
            }
            _ => bail!("OrderedDict called with unexpected arguments"),
        },
        Global::RebuildTensorV2 | Global::RebuildTensor => {
            if args.len() < 4 {
                bail!("{} with {} arguments (expected at least 4)", global_name(g), args.len());
            }
            let storage = match &args[0] {
                Value::Storage(s) => s.clone(),
                other => bail!("{}: first argument is a {}, not a storage", global_name(g), other.kind()),
            };
            let offset = as_usize(&args[1], "tensor storage offset")?;
            let shape = int_tuple(&args[2], "tensor shape")?;
            let stride = int_tuple(&args[3], "tensor stride")?;
            if shape.len() != stride.len() {
                bail!(
                    "tensor has {} dimensions but {} strides",
                    shape.len(),
                    stride.len()
                );
            }
            let shape = shape
                .into_iter()
                .map(|d| usize::try_from(d).context("tensor dimension overflows"))
                .collect::<anyhow::Result<Vec<_>>>()?;
            Ok(Value::Tensor(Rc::new(TensorRef {
                storage,
                offset,
                shape,
                stride,
            })))
        }
        Global::RebuildParameter | Global::RebuildParameterWithState => match args.first() {
            Some(t @ Value::Tensor(_)) => Ok(t.clone()),
            _ => bail!("{}: first argument is not a tensor", global_name(g)),
        },
        Global::Storage(..) => bail!(
            "refusing REDUCE of `{}`: storage types may only appear in persistent ids; nothing was executed",
            global_name(g)
        ),
    }
}

fn persistent_load(pid: &Value) -> anyhow::Result<Value> {
    let t = match pid {
        Value::Tuple(t) => t,
        other => bail!("persistent id is a {}, expected a tuple", other.kind()),
    };
    match &t[..] {
        [Value::Str(tag), Value::Global(Global::Storage(_, dtype, elem)), Value::Str(key), Value::Str(_location), numel]
            if &**tag == "storage" =>
        {
            let numel = as_usize(numel, "storage size")?;
            let dtype = match *dtype {
                "F32" => StoredDtype::F32,
                "F16" => StoredDtype::F16,
                "BF16" => StoredDtype::BF16,
                d => StoredDtype::Other(d.to_string()),
            };
            Ok(Value::Storage(Rc::new(StorageRef {
                key: key.to_string(),
                dtype,
                elem: *elem,
                numel,
            })))
        }
        _ => bail!(
            "unsupported persistent id (expected ('storage', <storage type>, key, location, size))"
        ),
    }
}

fn pop(stack: &mut Vec<Value>, pos: usize) -> anyhow::Result<Value> {
    stack
        .pop()
        .with_context(|| format!("pickle stack underflow at byte {pos} (corrupted data.pkl?)"))
}

fn pop_mark(
    stack: &mut Vec<Value>,
    marks: &mut Vec<usize>,
    pos: usize,
) -> anyhow::Result<Vec<Value>> {
    let m = marks
        .pop()
        .with_context(|| format!("pickle MARK missing at byte {pos} (corrupted data.pkl?)"))?;
    if m > stack.len() {
        bail!("pickle MARK beyond the stack at byte {pos} (corrupted data.pkl?)");
    }
    Ok(stack.split_off(m))
}

fn top(stack: &mut [Value], pos: usize) -> anyhow::Result<&mut Value> {
    stack
        .last_mut()
        .with_context(|| format!("pickle stack empty at byte {pos} (corrupted data.pkl?)"))
}

fn dict_insert(target: &mut Value, items: Vec<Value>, pos: usize) -> anyhow::Result<()> {
    if items.len() % 2 != 0 {
        bail!("SETITEMS with an odd number of items at byte {pos}");
    }
    match target {
        Value::Dict(d) => {
            let d = Rc::make_mut(d);
            let mut it = items.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                d.push((k, v));
            }
            Ok(())
        }
        other => bail!("SETITEM(S) on a {} at byte {pos}", other.kind()),
    }
}

fn unpickle(data: &[u8]) -> anyhow::Result<Value> {
    let mut r = Reader { data, pos: 0 };
    let mut stack: Vec<Value> = Vec::new();
    let mut marks: Vec<usize> = Vec::new();
    let mut memo: HashMap<u32, Value> = HashMap::new();
    let mut ops = 0usize;
    loop {
        let at = r.pos;
        ops += 1;
        if ops > MAX_OPS {
            bail!("pickle has more than {MAX_OPS} operations; not a checkpoint this tool reads");
        }
        let op = match data.get(r.pos) {
            Some(&b) => b,
            None => bail!("pickle ends without STOP at byte {at} (truncated data.pkl?)"),
        };
        r.pos += 1;
        match op {
            0x80 => {
                let p = r.u8()?;
                if p > 5 {
                    bail!("pickle protocol {p} is not supported");
                }
            }
            0x95 => {
                r.u64()?;
            }
            b'}' => stack.push(Value::Dict(Rc::new(Vec::new()))),
            b']' => stack.push(Value::List(Rc::new(Vec::new()))),
            b')' => stack.push(Value::Tuple(Rc::new(Vec::new()))),
            b'(' => marks.push(stack.len()),
            b'X' => {
                let n = r.u32()? as u64;
                stack.push(r.string(n)?)
            }
            0x8c => {
                let n = r.u8()? as u64;
                stack.push(r.string(n)?)
            }
            0x8d => {
                let n = r.u64()?;
                stack.push(r.string(n)?)
            }
            b'U' => {
                let n = r.u8()? as u64;
                stack.push(r.string(n)?)
            }
            b'T' => {
                let n = r.u32()? as u64;
                stack.push(r.string(n)?)
            }
            b'q' | b'r' | 0x94 => {
                let idx = match op {
                    b'q' => r.u8()? as u32,
                    b'r' => r.u32()?,
                    _ => u32::try_from(memo.len()).context("memo too large")?,
                };
                let v = top(&mut stack, at)?.clone();
                memo.insert(idx, v);
            }
            b'h' | b'j' => {
                let idx = if op == b'h' { r.u8()? as u32 } else { r.u32()? };
                let v = memo
                    .get(&idx)
                    .with_context(|| format!("pickle memo {idx} undefined at byte {at} (corrupted data.pkl?)"))?
                    .clone();
                stack.push(v);
            }
            b'c' => {
                let module = r.line()?;
                let name = r.line()?;
                stack.push(Value::Global(lookup_global(module, name)?));
            }
            0x93 => {
                let name = pop(&mut stack, at)?;
                let module = pop(&mut stack, at)?;
                match (&module, &name) {
                    (Value::Str(m), Value::Str(n)) => {
                        stack.push(Value::Global(lookup_global(m, n)?))
                    }
                    _ => bail!("STACK_GLOBAL on non-strings at byte {at}"),
                }
            }
            b'K' => stack.push(Value::Int(r.u8()? as i64)),
            b'M' => stack.push(Value::Int(r.u16()? as i64)),
            b'J' => stack.push(Value::Int(r.u32()? as i32 as i64)),
            0x8a => {
                let n = r.u8()? as usize;
                if n > 8 {
                    bail!("pickle LONG1 of {n} bytes is too large at byte {at}");
                }
                let b = r.take(n)?;
                let mut v: i64 = 0;
                for (i, &x) in b.iter().enumerate() {
                    v |= (x as i64) << (8 * i);
                }
                if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                    v -= 1i64 << (8 * n);
                }
                stack.push(Value::Int(v));
            }
            b'G' => {
                r.take(8)?;
                stack.push(Value::Float);
            }
            b't' => {
                let items = pop_mark(&mut stack, &mut marks, at)?;
                stack.push(Value::Tuple(Rc::new(items)));
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                if stack.len() < n {
                    bail!("pickle stack underflow at byte {at} (corrupted data.pkl?)");
                }
                let items = stack.split_off(stack.len() - n);
                stack.push(Value::Tuple(Rc::new(items)));
            }
            b'l' => {
                let items = pop_mark(&mut stack, &mut marks, at)?;
                stack.push(Value::List(Rc::new(items)));
            }
            b'd' => {
                let items = pop_mark(&mut stack, &mut marks, at)?;
                let mut d = Value::Dict(Rc::new(Vec::new()));
                dict_insert(&mut d, items, at)?;
                stack.push(d);
            }
            b'Q' => {
                let pid = pop(&mut stack, at)?;
                stack.push(persistent_load(&pid)?);
            }
            b'R' => {
                let args = pop(&mut stack, at)?;
                let f = pop(&mut stack, at)?;
                match f {
                    Value::Global(g) => stack.push(call(g, &args)?),
                    other => bail!(
                        "refusing REDUCE of a {} at byte {at}: only whitelisted globals may be called",
                        other.kind()
                    ),
                }
            }
            b'b' => {
                let _state = pop(&mut stack, at)?;
                match top(&mut stack, at)? {
                    // OrderedDict attributes (a state dict's `_metadata`): not needed.
                    Value::Dict(_) => {}
                    other => bail!("refusing BUILD on a {} at byte {at}", other.kind()),
                }
            }
            b's' => {
                let v = pop(&mut stack, at)?;
                let k = pop(&mut stack, at)?;
                dict_insert(top(&mut stack, at)?, vec![k, v], at)?;
            }
            b'u' => {
                let items = pop_mark(&mut stack, &mut marks, at)?;
                dict_insert(top(&mut stack, at)?, items, at)?;
            }
            b'a' | b'e' => {
                let items = if op == b'a' {
                    vec![pop(&mut stack, at)?]
                } else {
                    pop_mark(&mut stack, &mut marks, at)?
                };
                match top(&mut stack, at)? {
                    Value::List(l) => Rc::make_mut(l).extend(items),
                    other => bail!("APPEND(S) on a {} at byte {at}", other.kind()),
                }
            }
            b'N' => stack.push(Value::None),
            0x88 | 0x89 => stack.push(Value::Bool),
            b'0' => {
                pop(&mut stack, at)?;
            }
            b'1' => {
                pop_mark(&mut stack, &mut marks, at)?;
            }
            b'2' => {
                let v = top(&mut stack, at)?.clone();
                stack.push(v);
            }
            b'.' => return pop(&mut stack, at),
            other => bail!(
                "refusing pickle opcode {} (0x{other:02x}) at byte {at}: not needed for a checkpoint \
                 and not allowed; nothing was executed",
                opcode_name(other)
            ),
        }
    }
}

fn flatten(
    v: &Value,
    prefix: &str,
    depth: usize,
    out: &mut BTreeMap<String, TensorRef>,
) -> anyhow::Result<()> {
    if let Value::Dict(d) = v {
        if depth > MAX_DEPTH {
            return Ok(());
        }
        for (k, v) in d.iter() {
            let key = match k {
                Value::Str(s) => format!("{prefix}{s}"),
                Value::Int(i) => format!("{prefix}{i}"),
                _ => continue,
            };
            match v {
                Value::Tensor(t) => {
                    out.insert(key, (**t).clone());
                }
                Value::Dict(_) => flatten(v, &format!("{key}."), depth + 1, out)?,
                _ => {}
            }
        }
    }
    Ok(())
}

/// Interprets a `data.pkl` with the restricted unpickler and returns its tensors by key (nested
/// dicts, e.g. `{"state_dict": {...}}`, flattened with `.`).
pub fn tensor_table(pkl: &[u8]) -> anyhow::Result<BTreeMap<String, TensorRef>> {
    let v = unpickle(pkl)?;
    let mut out = BTreeMap::new();
    match &v {
        Value::Dict(_) => flatten(&v, "", 0, &mut out)?,
        other => bail!("the checkpoint holds a {}, not a state dict", other.kind()),
    }
    Ok(out)
}

/// An open `torch.save` archive.
#[derive(Debug)]
pub struct TorchFile {
    file: BoundedFile,
    zip: ZipIndex,
    root: String,
    tensors: BTreeMap<String, TensorRef>,
}

impl TorchFile {
    /// Opens `path`: reads the zip directory and `data.pkl`, not the storages.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let mut file = BoundedFile::open(path)?;
        let zip = ZipIndex::read(&mut file)?;
        let pkls: Vec<&String> = zip
            .entries
            .keys()
            .filter(|k| k.ends_with("/data.pkl") && k.matches('/').count() == 1)
            .collect();
        let pkl_name = match pkls.as_slice() {
            [one] => (*one).clone(),
            [] => bail!(
                "zip archive without a `<root>/data.pkl` entry: not a torch.save checkpoint ({} entries)",
                zip.entries.len()
            ),
            _ => bail!("zip archive with several data.pkl entries: not a torch.save checkpoint"),
        };
        let root = pkl_name.trim_end_matches("data.pkl").to_string();
        let e = zip.entries[&pkl_name];
        if e.len > MAX_PICKLE {
            bail!(
                "`{pkl_name}` is {} bytes, larger than the {} accepted",
                e.len,
                MAX_PICKLE
            );
        }
        let pkl = file.read_at(e.start, e.len, &pkl_name)?;
        let crc = ldp_core::blob::crc::crc32(&pkl);
        if crc != e.crc {
            bail!(
                "`{pkl_name}`: CRC mismatch (stored {:08x}, computed {crc:08x}); the archive is corrupted",
                e.crc
            );
        }
        if let Some(bo) = zip.entries.get(&format!("{root}byteorder")).copied() {
            let b = file.read_at(bo.start, bo.len.min(16), "byteorder")?;
            if b != b"little" {
                bail!(
                    "the checkpoint was saved on a big-endian machine (byteorder `{}`); not supported",
                    String::from_utf8_lossy(&b)
                );
            }
        }
        let tensors = tensor_table(&pkl).with_context(|| format!("`{pkl_name}`"))?;
        Ok(Self {
            file,
            zip,
            root,
            tensors,
        })
    }

    /// The archive's root directory name (e.g. `archive/`).
    pub fn root(&self) -> &str {
        &self.root
    }

    fn storage_entry(&self, name: &str, s: &StorageRef) -> anyhow::Result<EntryRange> {
        let ename = format!("{}data/{}", self.root, s.key);
        let e = *self.zip.entries.get(&ename).with_context(|| {
            format!("tensor `{name}`: storage entry `{ename}` is missing from the archive")
        })?;
        let need = s.numel.checked_mul(s.elem);
        if need.is_none_or(|n| n > e.len) {
            bail!(
                "tensor `{name}`: storage `{ename}` holds {} bytes but the pickle says {} elements of {} bytes (corrupted archive?)",
                e.len,
                s.numel,
                s.elem
            );
        }
        Ok(e)
    }
}

impl TensorSource for TorchFile {
    fn names(&self) -> Vec<String> {
        self.tensors.keys().cloned().collect()
    }
    fn meta(&self, name: &str) -> Option<TensorMeta> {
        self.tensors.get(name).map(|t| TensorMeta {
            shape: t.shape.clone(),
            dtype: t.storage.dtype.clone(),
        })
    }
    fn read_f32(&mut self, name: &str) -> anyhow::Result<Vec<f32>> {
        let t = self
            .tensors
            .get(name)
            .with_context(|| format!("no tensor `{name}`"))?
            .clone();
        let s = &t.storage;
        if s.dtype.size() == 0 {
            bail!("tensor `{name}` has dtype {}", s.dtype.name());
        }
        let e = self.storage_entry(name, s)?;
        let n = t
            .shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .with_context(|| format!("tensor `{name}`: element count overflows"))?;
        if n == 0 {
            return Ok(Vec::new());
        }
        // Last element the view touches.
        let mut last = t.offset;
        for (&d, &st) in t.shape.iter().zip(&t.stride) {
            last = (d as u64 - 1)
                .checked_mul(st)
                .and_then(|x| x.checked_add(last))
                .with_context(|| format!("tensor `{name}`: strides overflow"))?;
        }
        if last >= s.numel {
            bail!(
                "tensor `{name}`: offset {} and strides {:?} reach element {last} of a {}-element storage (corrupted archive?)",
                t.offset,
                t.stride,
                s.numel
            );
        }
        let start = e.start + t.offset * s.elem;
        let len = (last - t.offset + 1) * s.elem;
        let bytes = self.file.read_at(start, len, &format!("tensor `{name}`"))?;
        let raw = decode(&s.dtype, &bytes);
        // Row-major strides: the view is the range as it is.
        let mut contiguous = true;
        let mut expect = 1u64;
        for (&d, &st) in t.shape.iter().zip(&t.stride).rev() {
            if d != 1 && st != expect {
                contiguous = false;
            }
            expect = expect.saturating_mul(d as u64);
        }
        if contiguous && raw.len() == n {
            return Ok(raw);
        }
        let mut out = Vec::with_capacity(n);
        let mut idx = vec![0usize; t.shape.len()];
        for _ in 0..n {
            let rel: u64 = idx
                .iter()
                .zip(&t.stride)
                .map(|(&i, &st)| i as u64 * st)
                .sum();
            out.push(raw[rel as usize]);
            for k in (0..idx.len()).rev() {
                idx[k] += 1;
                if idx[k] < t.shape[k] {
                    break;
                }
                idx[k] = 0;
            }
        }
        Ok(out)
    }
    fn len(&self) -> usize {
        self.tensors.len()
    }
}
