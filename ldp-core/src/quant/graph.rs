//! The int8 graphs of the three architectures: the same steps as [`crate::arch`], on int8
//! maps, with every parameter read from the blob by name.

use super::kernels::{
    add_inplace, depthwise_rows_i16, layer_norm_i16, pointwise, pointwise_layer_norm, se_tmp_len,
    squeeze_excite, AddQ, ConvQ, NormQ, SeQ,
};
use crate::blob::int8::v1_meta as V1;
use crate::blob::specs::FLAG_INPUT16;
use crate::blob::{Model, ModelConfig};
use crate::error::Error;
use crate::graph::plan::Scheme;
use crate::kernels::depthwise::DwShape;

/// Called after each int8 layer with the name of its output activation (the names of
/// `ldp-quant`'s f32 reference graph: `a`, `b`, … for `ldp`; `h1`, `z`, `b1.d`, … for V1; `h1`,
/// `m`, `pooled`, `d`, `y` for V2 — `h1`, `pooled`, `m`, … when the pool runs first, see
/// [`crate::arch::mobilevlm_v2::V2Config::pool_first`]), the int8 data, its zero point and scale;
/// `None` in normal runs.
/// The 16-bit conv outputs that feed a LayerNorm (`q`, `g` of `ldp`; `b1.d`, `b2.d` of V1) are
/// reported with empty data (their zero point and scale are those of the 16-bit intermediate).
/// V1's `b1.d`/`b2.d` are reported after their LayerNorm, which runs row by row with the conv.
pub type Trace<'t> = Option<&'t mut dyn FnMut(&'static str, &[i8], i32, f32)>;

const fn r16(n: usize) -> usize {
    n.div_ceil(16) * 16
}

/// Bytes of scratch the int8-in/int8-out forward pass needs.
///
/// `ldp`: the length of its graph's int8 memory plan ([`crate::graph::plan`]).
/// V1: three maps, the SE's `i32`s and one row of 16-bit pointwise output per block.
pub const fn scratch_bytes_i8(cfg: &ModelConfig) -> usize {
    match cfg {
        ModelConfig::Ldp(c) => {
            match crate::graph::plan::plan(crate::graph::ldp::NODES, c.dims(), Scheme::Int8) {
                Ok(p) => p.len,
                Err(_) => 0,
            }
        }
        ModelConfig::MobileVlmV1(c) => {
            3 * r16(c.tokens_in() * c.c_out)
                + 4 * se_tmp_len(c.c_out, c.squeeze)
                + 16
                + r16(2 * c.h * c.c_out)
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
    pub(crate) fn lut(&self, name: &str) -> Result<&'a [i8], Error> {
        self.m.i8s(idx(self.m, name, "")?)
    }
    pub(crate) fn conv(
        &self,
        prefix: &str,
        shift: usize,
        in_zero: i32,
        out_zero: i32,
        lut: Option<&'a [i8]>,
    ) -> Result<ConvQ<'a>, Error> {
        self.conv_at(
            idx(self.m, prefix, ".weight")?,
            shift,
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
        f(name, data, z, s);
    }
}

fn split(buf: &mut [u8], n: usize) -> (&mut [i8], &mut [u8]) {
    let (a, b) = buf.split_at_mut(r16(n));
    (&mut bytemuck::cast_slice_mut::<u8, i8>(a)[..n], b)
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
    mut t: Trace<'_>,
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
    let p = Params::new(m)?;
    match cfg {
        ModelConfig::Graph(c) => crate::graph::int8::forward(m, &c, x, y, scratch, t)?,
        ModelConfig::Ldp(c) => crate::graph::int8::forward_nodes(
            m,
            crate::graph::ldp::NODES,
            c.dims(),
            x,
            y,
            scratch,
            t,
        )?,
        ModelConfig::MobileVlmV1(c) => {
            let (co, n, s) = (c.c_out, c.tokens_in(), c.squeeze);
            let (a, rest) = split(scratch, n * co);
            let (b, rest) = split(rest, n * co);
            let (cb, rest) = split(rest, n * co);
            let (mid, rest) = split16(rest, c.h * co)?;
            let off = rest.as_ptr().align_offset(4);
            let tmp: &mut [i32] = rest
                .get_mut(off..off + 4 * se_tmp_len(co, s))
                .and_then(|t| bytemuck::try_cast_slice_mut(t).ok())
                .ok_or(Error::Misaligned { what: "scratch" })?;
            let gelu = p.lut("gelu.lut")?;
            x.pointwise(
                c.c_in,
                &p.conv("mlp.1", V1::FC1_SHIFT, 0, p.z(V1::Z_H1P), Some(gelu))?,
                co,
                a,
            )?;
            trace(&mut t, "h1", a, p.z(V1::Z_H1), p.s(V1::Z_H1));
            pointwise(
                a,
                co,
                &p.conv("mlp.3", V1::FC2_SHIFT, 0, p.z(V1::Z_Z), None)?,
                co,
                b,
            )?;
            trace(&mut t, "z", b, p.z(V1::Z_Z), p.s(V1::Z_Z));
            // Block 1: stride 1, residual. The model output `y` is not written before block 2:
            // when it holds more 16-bit values than `mid` (one grid row), it is the block's
            // 16-bit buffer, so that the projection runs on several rows per kernel call
            // (same results; each call reads all the weights once).
            let yl = y.len() & !1;
            let mid1: &mut [i16] = match bytemuck::try_cast_slice_mut::<i8, i16>(&mut y[..yl]) {
                Ok(m) if m.len() > mid.len() => m,
                _ => &mut *mid,
            };
            v1_block(
                &p,
                0,
                "mb_block.1",
                DwShape {
                    h: c.h,
                    w: c.h,
                    c: co,
                    stride: 1,
                },
                s,
                b,
                p.z(V1::Z_Z),
                a,
                cb,
                tmp,
                mid1,
                &mut t,
            )?;
            add_inplace(
                b,
                cb,
                &p.add(
                    p.z(V1::Z_Z),
                    p.z(V1::BLOCK0 + V1::Z_U),
                    V1::ADD_MA,
                    V1::ADD_MB,
                    V1::ADD_SHIFT,
                    V1::Z_Z2,
                ),
            )?;
            trace(&mut t, "z2", b, p.z(V1::Z_Z2), p.s(V1::Z_Z2));
            // Block 2: stride 2, straight into the output. `cb` is free now (block 1's output
            // was added into `b`): when it is large enough for the 16-bit projection output of
            // all the block's pixels, it replaces the one-row `mid`, so that the pointwise
            // kernel runs once instead of once per grid row (same results; the kernels pack
            // their weights per call, which costs more than the arithmetic of one row).
            let n2 = c.tokens_out();
            let mid = match cb
                .get_mut(..2 * n2 * co)
                .and_then(|m| bytemuck::try_cast_slice_mut::<i8, i16>(m).ok())
            {
                Some(m) if m.len() > mid.len() => m,
                _ => mid,
            };
            v1_block(
                &p,
                1,
                "mb_block.2",
                DwShape {
                    h: c.h,
                    w: c.h,
                    c: co,
                    stride: 2,
                },
                s,
                b,
                p.z(V1::Z_Z2),
                &mut a[..n2 * co],
                y,
                tmp,
                mid,
                &mut t,
            )?;
        }
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

/// One MobileVLM V1 inverted-residual block: `out = LN(PW(SE(HS(LN(DW(z))))))`, using `d` as
/// the intermediate map.
#[allow(clippy::too_many_arguments)]
fn v1_block(
    p: &Params<'_, '_>,
    b: usize,
    prefix: &'static str,
    shape: DwShape,
    s: usize,
    z: &[i8],
    z_zero: i32,
    d: &mut [i8],
    out: &mut [i8],
    tmp: &mut [i32],
    mid: &mut [i16],
    t: &mut Trace<'_>,
) -> Result<(), Error> {
    let base = V1::BLOCK0 + b * V1::BLOCK_LEN;
    let m = |o: usize| base + o;
    let co = shape.c;
    let pfx = |suffix: &'static str| -> Result<usize, Error> { idx(p.m, prefix, suffix) };
    let dw = p.conv_at(
        pfx(".block.0.0.weight")?,
        m(V1::DW_SHIFT),
        z_zero,
        p.z(m(V1::Z_D)),
        None,
    )?;
    let hs = p.m.i8s(pfx(".hswish.lut")?)?;
    let nq = NormQ {
        gamma: p.m.i16s(pfx(".block.0.1.gamma")?)?,
        beta: p.m.i16s(pfx(".block.0.1.beta")?)?,
        shift: p.z(m(V1::LN1_SHIFT)),
        eps_q8: p.z(m(V1::LN1_EPS)),
        out_zero: p.z(m(V1::Z_N)),
        lut: Some(hs),
    };
    // The depthwise conv's 16-bit output goes straight into LayerNorm (+ Hardswish table), a
    // row at a time.
    let wo = shape.wo();
    let have = 2 * mid.len();
    let row = mid.get_mut(..wo * co).ok_or(Error::ScratchTooSmall {
        need: 2 * wo * co,
        have,
    })?;
    for oy in 0..shape.ho() {
        depthwise_rows_i16(shape, z, &dw, oy, oy + 1, row)?;
        layer_norm_i16(row, co, &nq, &mut d[oy * wo * co..(oy + 1) * wo * co])?;
    }
    trace(
        t,
        if b == 0 { "b1.d" } else { "b2.d" },
        &[],
        p.z(m(V1::Z_D)),
        p.s(m(V1::Z_D)),
    );
    trace(
        t,
        if b == 0 { "b1.hs" } else { "b2.hs" },
        d,
        p.z(m(V1::Z_HS)),
        p.s(m(V1::Z_HS)),
    );
    let se = SeQ {
        in_zero: p.z(m(V1::Z_HS)),
        fc1: p.conv_at(
            pfx(".block.1.fc1.weight")?,
            m(V1::SE_FC1_SHIFT),
            0,
            p.z(m(V1::Z_SH)),
            None,
        )?,
        fc2: p.conv_at(
            pfx(".block.1.fc2.weight")?,
            m(V1::SE_FC2_SHIFT),
            0,
            p.z(m(V1::Z_SG)),
            None,
        )?,
        gate: p.m.u8s(pfx(".block.1.gate.lut")?)?,
        mult: p.z(m(V1::SE_MULT)),
        shift: p.z(m(V1::SE_SHIFT)),
        out_zero: p.z(m(V1::Z_SE)),
    };
    squeeze_excite(d, co, s, &se, tmp)?;
    trace(
        t,
        if b == 0 { "b1.se" } else { "b2.se" },
        d,
        p.z(m(V1::Z_SE)),
        p.s(m(V1::Z_SE)),
    );
    let nq2 = NormQ {
        gamma: p.m.i16s(pfx(".block.2.1.gamma")?)?,
        beta: p.m.i16s(pfx(".block.2.1.beta")?)?,
        shift: p.z(m(V1::LN2_SHIFT)),
        eps_q8: p.z(m(V1::LN2_EPS)),
        out_zero: p.z(m(V1::Z_U)),
        lut: None,
    };
    // The projection's 16-bit output goes straight into LayerNorm, as many pixels at a time
    // as `mid` holds (one grid row, or more when the caller has more room).
    pointwise_layer_norm(
        d,
        co,
        &p.conv_at(
            pfx(".block.2.0.weight")?,
            m(V1::PW_SHIFT),
            0,
            p.z(m(V1::Z_PW)),
            None,
        )?,
        co,
        &nq2,
        mid,
        out,
    )?;
    trace(
        t,
        if b == 0 { "b1.u" } else { "b2.u" },
        out,
        p.z(m(V1::Z_U)),
        p.s(m(V1::Z_U)),
    );
    Ok(())
}

impl<'a> Params<'_, 'a> {
    /// A conv whose weight tensor is at index `w` ([`super::conv_q`]).
    fn conv_at(
        &self,
        w: usize,
        shift: usize,
        in_zero: i32,
        out_zero: i32,
        lut: Option<&'a [i8]>,
    ) -> Result<ConvQ<'a>, Error> {
        super::conv_q(self.m, w, self.z(shift), in_zero, out_zero, lut)
    }
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
/// layout): each value quantized where it lies (its channel is `i / (h·w)`), then the int8
/// result transposed to channels-last through `tmp` (`input_len` bytes). The same bits as
/// transposing the f32 input and calling [`quantize_input`]: quantization is elementwise.
pub(crate) fn quantize_input_nchw(
    m: &Model<'_>,
    x: &[f32],
    xq: &mut [i8],
    tmp: &mut [i8],
) -> Result<(), Error> {
    let ModelConfig::Ldp(c) = m.config() else {
        return Err(Error::Unsupported(
            "a channels-first input exists for ldp only (the MobileVLM and graph inputs are tokens)",
        ));
    };
    let (scale, zero) = int8_input_params(m)?;
    let n = m.config().input_len();
    crate::error::check_len("input", x, n)?;
    crate::error::check_len("quantized input", xq, n)?;
    crate::error::check_len("quantize scratch", tmp, n)?;
    let hw = c.h * c.w;
    if hw == 0 {
        return Err(Error::InvalidConfig("ldp: empty input grid"));
    }
    if scale.len() == c.c_in && c.c_in > 1 {
        for (ch, (xc, tc)) in x.chunks_exact(hw).zip(tmp.chunks_exact_mut(hw)).enumerate() {
            let (s, z) = (&scale[ch..ch + 1], &zero[ch..ch + 1]);
            super::kernels::quantize(xc, 1, s, z, tc)?;
        }
    } else {
        super::kernels::quantize(x, 1, &scale[..1], &zero[..1], tmp)?;
    }
    crate::tensor::nchw_to_nhwc(tmp, xq, c.c_in, c.h, c.w)
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
        ModelConfig::MobileVlmV1(_) => V1::BLOCK0 + V1::BLOCK_LEN + V1::Z_U,
        ModelConfig::MobileVlmV2(_) => {
            crate::graph::meta::output(crate::graph::mobilevlm_v2::NODES)
        }
        ModelConfig::Graph(c) => crate::graph::int8::output_meta(&c),
    };
    let (z, s) = (p.z(zi), p.s(zi));
    super::kernels::dequantize(yq, z, s, y)
}
