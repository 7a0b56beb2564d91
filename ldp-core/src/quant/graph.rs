//! The int8 graphs of the three architectures: the same steps as [`crate::arch`], on int8
//! maps, with every parameter read from the blob by name.

use super::kernels::{pointwise, AddQ, ConvQ, NormQ};
use crate::blob::specs::FLAG_INPUT16;
use crate::blob::{Model, ModelConfig};
use crate::error::Error;
use crate::graph::plan::Scheme;

/// Called after each int8 layer with the name of its output activation (the names of
/// `ldp-quant`'s f32 reference graph: `a`, `b`, … for `ldp`; `h1`, `z`, `b1.d`, … for V1; `h1`,
/// `m`, `pooled`, `d`, `y` for V2 — `h1`, `pooled`, `m`, … when the pool runs first, see
/// [`crate::arch::mobilevlm_v2::V2Config::pool_first`]), the int8 data, its zero point and scale;
/// `None` in normal runs.
/// The 16-bit conv outputs that feed a LayerNorm (`q`, `g` of `ldp`; `b1.d`, `b2.d` of V1) are
/// reported with empty int8 data (their zero point and scale are those of the 16-bit
/// intermediate). V1's `b1.d`/`b2.d` are reported after their LayerNorm, which runs row by row
/// with the conv. Blobs with 16-bit activations ([`crate::quant::a16`]) report every node's
/// `i16` values ([`Traced::I16`], zero point 0).
pub type Trace<'t> = Option<&'t mut dyn FnMut(&'static str, Traced<'_>, f32)>;

/// The quantized values a traced forward pass shows its observer ([`Trace`]); the scale comes
/// beside them.
#[derive(Debug, Clone, Copy)]
pub enum Traced<'a> {
    /// An int8 activation and its zero point (empty for a 16-bit intermediate of an int8 blob).
    I8 {
        /// The values.
        data: &'a [i8],
        /// Their zero point.
        zero: i32,
    },
    /// A 16-bit activation (zero point 0).
    I16(&'a [i16]),
}

impl Traced<'_> {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            Traced::I8 { data, .. } => data.len(),
            Traced::I16(d) => d.len(),
        }
    }

    /// `true` when there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Value `i` in real units, `(q − zero)·scale` (0 past the end).
    pub fn real(&self, i: usize, scale: f32) -> f64 {
        let q = match self {
            Traced::I8 { data, zero } => data.get(i).map_or(0, |&v| v as i32 - zero),
            Traced::I16(d) => d.get(i).map_or(0, |&v| v as i32),
        };
        q as f64 * scale as f64
    }
}

const fn r16(n: usize) -> usize {
    n.div_ceil(16) * 16
}

/// Bytes of scratch the int8-in/int8-out forward pass needs.
///
/// `ldp`: the length of its graph's int8 memory plan ([`crate::graph::plan`]).
/// `ldp`, MobileVLM V1 and V2: the length of their graph's int8 memory plan.
pub const fn scratch_bytes_i8(cfg: &ModelConfig) -> usize {
    match cfg {
        ModelConfig::Ldp(c) => {
            match crate::graph::plan::plan(crate::graph::ldp::NODES, c.dims(), Scheme::Int8) {
                Ok(p) => p.len,
                Err(_) => 0,
            }
        }
        ModelConfig::MobileVlmV1(c) => {
            match crate::graph::plan::plan(
                crate::graph::mobilevlm_v1::NODES,
                c.dims(),
                Scheme::Int8,
            ) {
                Ok(p) => p.len,
                Err(_) => 0,
            }
        }
        ModelConfig::MobileVlmV2(c) => {
            let nodes = crate::graph::mobilevlm_v2::nodes_for(c.tokens_in());
            match crate::graph::plan::plan(nodes, c.dims(), Scheme::Int8) {
                Ok(p) => p.len,
                Err(_) => 0,
            }
        }
        ModelConfig::Graph(c) => c.scratch_bytes_i8(),
    }
}

/// Bytes of scratch the f32-boundary forward pass needs (int8 scratch + quantized input and output).
pub const fn scratch_bytes(cfg: &ModelConfig) -> usize {
    scratch_bytes_i8(cfg) + input_bytes(cfg, false) + r16(cfg.output_len())
}

/// [`scratch_bytes`] for a blob with a 16-bit input ([`FLAG_INPUT16`]): the input takes two
/// bytes per value.
pub const fn scratch_bytes_x16(cfg: &ModelConfig) -> usize {
    scratch_bytes_i8(cfg) + input_bytes(cfg, true) + r16(cfg.output_len())
}

/// Scratch bytes of the quantized model input (16-byte multiple): one byte per value, two with
/// a 16-bit input.
pub(crate) const fn input_bytes(cfg: &ModelConfig, x16: bool) -> usize {
    r16(if x16 { 2 } else { 1 } * cfg.input_len())
}

pub(crate) struct Params<'m, 'a> {
    pub m: &'m Model<'a>,
    pub meta: &'a [i32],
    pub scales: &'a [f32],
}

impl<'m, 'a> Params<'m, 'a> {
    pub fn new(m: &'m Model<'a>) -> Result<Self, Error> {
        let meta = m.i32s(idx(m, "quant.meta", "")?)?;
        let scales = m.f32s(idx(m, "quant.scales", "")?)?;
        Ok(Params { m, meta, scales })
    }
    pub(crate) fn z(&self, i: usize) -> i32 {
        self.meta.get(i).copied().unwrap_or(0)
    }
    pub(crate) fn s(&self, i: usize) -> f32 {
        self.scales.get(i).copied().unwrap_or(0.0)
    }
    pub(crate) fn lut_at(&self, name: &str, suffix: &str) -> Result<&'a [i8], Error> {
        self.m.i8s(idx(self.m, name, suffix)?)
    }
    pub(crate) fn conv(
        &self,
        prefix: &str,
        shift: usize,
        in_zero: i32,
        out_zero: i32,
        lut: Option<&'a [i8]>,
    ) -> Result<ConvQ<'a>, Error> {
        super::conv_q(
            self.m,
            idx(self.m, prefix, ".weight")?,
            self.z(shift),
            in_zero,
            out_zero,
            lut,
        )
    }
    pub(crate) fn norm(
        &self,
        prefix: &str,
        shift: usize,
        eps: usize,
        out_zero: i32,
        lut: Option<&'a [i8]>,
    ) -> Result<NormQ<'a>, Error> {
        Ok(NormQ {
            gamma: self.m.i16s(idx(self.m, prefix, ".gamma")?)?,
            beta: self.m.i16s(idx(self.m, prefix, ".beta")?)?,
            shift: self.z(shift),
            eps_q8: self.z(eps),
            out_zero,
            lut,
        })
    }
    pub(crate) fn add(
        &self,
        za: i32,
        zb: i32,
        ma: usize,
        mb: usize,
        shift: usize,
        zo: usize,
    ) -> AddQ {
        AddQ {
            a_zero: za,
            a_mult: self.z(ma),
            b_zero: zb,
            b_mult: self.z(mb),
            shift: self.z(shift),
            out_zero: self.z(zo),
        }
    }
}

/// The int8-boundary entry points refuse a blob with 16-bit activations or a 16-bit input.
fn int8_activations(m: &Model<'_>) -> Result<(), Error> {
    if super::a16::is_a16(m) {
        return Err(Error::Unsupported(
            "this int8 blob has 16-bit activations (quant::a16): use Model::forward or quant::a16::forward_i16",
        ));
    }
    if is_x16(m) {
        return Err(Error::Unsupported(
            "this int8 blob has a 16-bit input: use Model::forward or quant::forward_x16",
        ));
    }
    Ok(())
}

pub(crate) fn idx(m: &Model<'_>, prefix: &str, suffix: &str) -> Result<usize, Error> {
    m.find(prefix, suffix).ok_or(Error::Unsupported(
        "int8 blob lacks a tensor this build needs",
    ))
}

pub(crate) fn trace(t: &mut Trace<'_>, name: &'static str, data: &[i8], z: i32, s: f32) {
    if let Some(f) = t.as_mut() {
        f(name, Traced::I8 { data, zero: z }, s);
    }
}

/// [`trace`] of a 16-bit activation.
pub(crate) fn trace16(t: &mut Trace<'_>, name: &'static str, data: &[i16], s: f32) {
    if let Some(f) = t.as_mut() {
        f(name, Traced::I16(data), s);
    }
}

/// `n` `i16`s at the start of `buf` (which must be 2-byte aligned), and the bytes after them.
pub(crate) fn split16(buf: &mut [u8], n: usize) -> Result<(&mut [i16], &mut [u8]), Error> {
    let have = buf.len();
    if have < r16(2 * n) {
        return Err(Error::ScratchTooSmall {
            need: r16(2 * n),
            have,
        });
    }
    let (a, b) = buf.split_at_mut(r16(2 * n));
    let a = bytemuck::try_cast_slice_mut::<u8, i16>(&mut a[..2 * n])
        .map_err(|_| Error::Misaligned { what: "scratch" })?;
    Ok((a, b))
}

/// The int8 forward pass: quantized input `x` (`[pixels][c_in]`) to quantized output `y`.
pub(crate) fn forward_i8(
    m: &Model<'_>,
    x: &[i8],
    y: &mut [i8],
    scratch: &mut [u8],
    t: Trace<'_>,
) -> Result<(), Error> {
    int8_activations(m)?;
    forward_q(m, QInput::I8(x), y, scratch, t)
}

/// The integer forward pass of a blob with a 16-bit input ([`FLAG_INPUT16`]): `x` quantized by
/// [`quantize_input16`], the rest as [`forward_i8`].
pub(crate) fn forward_x16(
    m: &Model<'_>,
    x: &[i16],
    y: &mut [i8],
    scratch: &mut [u8],
    t: Trace<'_>,
) -> Result<(), Error> {
    if !is_x16(m) {
        return Err(Error::Unsupported(
            "this int8 blob has an int8 input: use quant::forward_i8",
        ));
    }
    forward_q(m, QInput::I16(x), y, scratch, t)
}

/// The model input of the integer forward pass: int8, or 16-bit for a blob with
/// [`FLAG_INPUT16`] (only the first pointwise conv, and the `ldp` skip when it resizes the
/// input, read it).
#[derive(Clone, Copy)]
pub(crate) enum QInput<'x> {
    I8(&'x [i8]),
    I16(&'x [i16]),
}

impl QInput<'_> {
    /// The first pointwise conv (int8 output, optional table).
    pub(crate) fn pointwise(
        &self,
        c_in: usize,
        q: &super::kernels::ConvQ<'_>,
        c_out: usize,
        y: &mut [i8],
    ) -> Result<(), Error> {
        match self {
            QInput::I8(x) => pointwise(x, c_in, q, c_out, y),
            QInput::I16(x) => super::a16::pointwise_in16(x, c_in, q, c_out, y),
        }
    }
}

/// Whether an int8 blob has a 16-bit input ([`FLAG_INPUT16`]).
pub(crate) fn is_x16(m: &Model<'_>) -> bool {
    m.header().flags & FLAG_INPUT16 != 0
}

fn forward_q(
    m: &Model<'_>,
    x: QInput<'_>,
    y: &mut [i8],
    scratch: &mut [u8],
    t: Trace<'_>,
) -> Result<(), Error> {
    let cfg = m.config();
    match x {
        QInput::I8(x) => crate::error::check_len("int8 input", x, cfg.input_len())?,
        QInput::I16(x) => crate::error::check_len("16-bit input", x, cfg.input_len())?,
    }
    crate::error::check_len("int8 output", y, cfg.output_len())?;
    let need = scratch_bytes_i8(&cfg);
    if scratch.len() < need {
        return Err(Error::ScratchTooSmall {
            need,
            have: scratch.len(),
        });
    }
    match cfg {
        ModelConfig::Graph(c) => {
            c.validate()?;
            crate::graph::int8::forward_nodes(m, c.nodes(), c.dims(), x, y, scratch, t)?
        }
        ModelConfig::Ldp(c) => crate::graph::int8::forward_nodes(
            m,
            crate::graph::ldp::NODES,
            c.dims(),
            x,
            y,
            scratch,
            t,
        )?,
        ModelConfig::MobileVlmV1(c) => crate::graph::int8::forward_nodes(
            m,
            crate::graph::mobilevlm_v1::NODES,
            c.dims(),
            x,
            y,
            scratch,
            t,
        )?,
        ModelConfig::MobileVlmV2(c) => {
            if let QInput::I16(_) = x {
                return Err(Error::Unsupported(
                    "a 16-bit input exists for ldp and mobilevlm-v1 only",
                ));
            }
            let nodes = crate::graph::mobilevlm_v2::nodes_for(c.tokens_in());
            crate::graph::int8::forward_nodes(m, nodes, c.dims(), x, y, scratch, t)?
        }
    }
    Ok(())
}

/// `(input.scale, input.zero)` of an int8 blob with int8 activations and an int8 input: one
/// entry each (per tensor) or `c_in` (per channel).
fn int8_input_params<'a>(m: &Model<'a>) -> Result<(&'a [f32], &'a [i8]), Error> {
    int8_activations(m)?;
    let scale = m.f32s(idx(m, "input.scale", "")?)?;
    let zero = m.i8s(idx(m, "input.zero", "")?)?;
    if scale.is_empty() || zero.len() != scale.len() {
        return Err(Error::Unsupported(
            "int8 blob has malformed input quantization",
        ));
    }
    Ok((scale, zero))
}

/// Quantizes a channels-last f32 input with the model's input parameters.
pub(crate) fn quantize_input(m: &Model<'_>, x: &[f32], xq: &mut [i8]) -> Result<(), Error> {
    let (scale, zero) = int8_input_params(m)?;
    let (c_in, _) = m.config().channels();
    crate::error::check_len("input", x, m.config().input_len())?;
    crate::error::check_len("quantized input", xq, x.len())?;
    super::kernels::quantize(x, c_in, scale, zero, xq)
}

/// [`quantize_input`] of an `ldp` input given channels-first (`[c_in][h][w]`, PyTorch's
/// layout) into channels-last `xq` (`kernels::quantize::int8::quantize_nchw`; `tmp`,
/// `input_len` bytes, is its portable path's staging buffer). The same bits as transposing
/// the f32 input and calling [`quantize_input`]: quantization is elementwise. Non-finite
/// values are refused (`Error::NonFiniteInput`, index in `x`'s channels-first order).
pub(crate) fn quantize_input_nchw(
    m: &Model<'_>,
    x: &[f32],
    xq: &mut [i8],
    tmp: &mut [i8],
) -> Result<(), Error> {
    let (c_in, hw, scale, zero) = nchw_input_params(m)?;
    crate::kernels::quantize::int8::quantize_nchw(x, c_in, hw, scale, zero, xq, tmp)
}

/// `(c_in, h·w, scale, zero)` of an `ldp` int8 input.
type NchwInput<'a> = (usize, usize, &'a [f32], &'a [i8]);

/// An `ldp` int8 input's channels, `h·w` and quantization (per channel when the blob has one
/// scale per input channel, else per tensor: `int8_input_params` gives scale and zero of the
/// same non-zero length).
fn nchw_input_params<'a>(m: &Model<'a>) -> Result<NchwInput<'a>, Error> {
    let ModelConfig::Ldp(c) = m.config() else {
        return Err(Error::Unsupported(
            "a channels-first input exists for ldp only (the MobileVLM and graph inputs are tokens)",
        ));
    };
    let (scale, zero) = int8_input_params(m)?;
    let hw =
        c.h.checked_mul(c.w)
            .ok_or(Error::InvalidConfig("ldp: input grid overflows"))?;
    let k = if scale.len() == c.c_in { c.c_in } else { 1 };
    Ok((c.c_in, hw, &scale[..k], &zero[..k]))
}

/// [`quantize_input_nchw`] of the input channels `ch0..ch0 + x.len() / (h·w)` only
/// (`kernels::quantize::int8::quantize_nchw_part`), into their places in the whole `xq`.
pub(crate) fn quantize_input_nchw_part(
    m: &Model<'_>,
    x: &[f32],
    ch0: usize,
    xq: &mut [i8],
) -> Result<(), Error> {
    let (c_in, hw, scale, zero) = nchw_input_params(m)?;
    crate::kernels::quantize::int8::quantize_nchw_part(x, c_in, hw, ch0, scale, zero, xq)
}

/// [`dequantize_output`] of an `ldp` output written channels-first (`[c_out][h2][w2]`): the
/// int8 output transposed through `tmp` (`output_len` bytes), then dequantized (per tensor,
/// so the same bits as dequantizing first).
pub(crate) fn dequantize_output_nchw(
    m: &Model<'_>,
    yq: &[i8],
    y: &mut [f32],
    tmp: &mut [i8],
) -> Result<(), Error> {
    let ModelConfig::Ldp(c) = m.config() else {
        return Err(Error::Unsupported(
            "a channels-first output exists for ldp only (the MobileVLM and graph outputs are tokens)",
        ));
    };
    let n = m.config().output_len();
    crate::error::check_len("quantized output", yq, n)?;
    crate::error::check_len("output", y, n)?;
    crate::error::check_len("dequantize scratch", tmp, n)?;
    crate::tensor::nhwc_to_nchw(yq, tmp, c.c_out, c.h2(), c.w2())?;
    dequantize_output(m, tmp, y)
}

/// Quantizes a channels-last f32 input to the 16-bit input of a [`FLAG_INPUT16`] blob:
/// `sat(round(x / scale), input16_limit(c_in))`, zero point 0.
pub(crate) fn quantize_input16(m: &Model<'_>, x: &[f32], xq: &mut [i16]) -> Result<(), Error> {
    let (s, limit) = input16_params(m)?;
    crate::error::check_len("input", x, m.config().input_len())?;
    super::a16::quantize16(x, s, limit, xq)
}

/// `(input.scale, input.limit)` of an int8 blob with a 16-bit input.
pub(crate) fn input16_params(m: &Model<'_>) -> Result<(f32, i32), Error> {
    if !is_x16(m) {
        return Err(Error::Unsupported(
            "this int8 blob has an int8 input: use quant::quantize_input",
        ));
    }
    let scale = m.f32s(idx(m, "input.scale", "")?)?;
    let &[s] = scale else {
        return Err(Error::Unsupported(
            "int8 blob has malformed input quantization",
        ));
    };
    let limit = match m.i32s(idx(m, "input.limit", "")?)? {
        &[q] => q,
        _ => {
            return Err(Error::Unsupported(
                "int8 blob has malformed input quantization",
            ))
        }
    };
    Ok((s, limit))
}

/// The saturation of a 16-bit model input with `c_in` channels: the largest `Q ≤ 32767` with
/// `c_in · 127 · Q ≤ 2^30`, so that the first conv's `i32` accumulator cannot overflow (biases
/// stay within `±2^29`, bias shift at most 14).
pub const fn input16_limit(c_in: usize) -> i32 {
    let k = if c_in == 0 { 1 } else { c_in as i64 };
    let q = super::a16::PRODUCT_BUDGET / (127 * k);
    if q > super::a16::MAX16 as i64 {
        super::a16::MAX16
    } else if q < 1 {
        1
    } else {
        q as i32
    }
}

/// Dequantizes the int8 output: `(q − z)·s`.
pub(crate) fn dequantize_output(m: &Model<'_>, yq: &[i8], y: &mut [f32]) -> Result<(), Error> {
    if super::a16::is_a16(m) {
        return Err(Error::Unsupported(
            "this int8 blob has 16-bit activations (quant::a16): use quant::a16::dequantize_output16",
        ));
    }
    let p = Params::new(m)?;
    let zi = match m.config() {
        ModelConfig::Ldp(_) => crate::graph::meta::output(crate::graph::ldp::NODES),
        ModelConfig::MobileVlmV1(_) => {
            crate::graph::meta::output(crate::graph::mobilevlm_v1::NODES)
        }
        ModelConfig::MobileVlmV2(_) => {
            crate::graph::meta::output(crate::graph::mobilevlm_v2::NODES)
        }
        ModelConfig::Graph(c) => crate::graph::meta::output(c.nodes()),
    };
    let (z, s) = (p.z(zi), p.s(zi));
    super::kernels::dequantize(yq, z, s, y)
}
