//! Streaming (band-by-band) execution: the output is computed row by row from an input that is
//! pulled row by row, so no full intermediate map is ever held.
//!
//! Whole-tensor execution ([`crate::Model::forward`], [`crate::quant::forward_i8`]) keeps the
//! input, the output and two or three full intermediate maps: for the seed's `LDP(128, 128)` on
//! a 64×64 grid that is over 1.5 MiB in int8. The streaming executor keeps only:
//!
//! * **ring buffers of rows** — three rows in front of every 3×3 depthwise conv, two rows of the
//!   input (or of `a`) for the bilinear skip, two rows of the downsampled skip; LayerNorm is per
//!   pixel and needs no extra rows;
//! * **pixel chunks** of [`CHUNK`] pixels between the pointwise layers (`b`, `f`, `y` of `ldp`);
//! * for `ldp`, **column strips**: the output is computed in vertical strips of at most `strip`
//!   output columns, each with the halo columns its two depthwise convs need (2 extra columns
//!   of `a`/`x` and 1 of `c` on each inner side). The halo columns are recomputed by both
//!   neighbouring strips: [`ldp_macs`] counts the cost.
//!
//! The input comes from a [`RowSource`] (a camera/DMA ring, flash, a generator) one row segment
//! at a time; final output segments go to a [`RowSink`] as soon as they are ready. Scratch is
//! one byte arena whose size [`scratch_bytes`] is a `const fn` of the configuration, so firmware
//! can declare it as a `static`.
//!
//! **Exactness.** The arithmetic is the whole-tensor kernels' own, applied to row slices:
//! pointwise convs, LayerNorm and activations call the very same kernels on chunks of pixels;
//! the depthwise convs, the bilinear skip and the pooling use row-range variants
//! ([`kernels`]) that accumulate in the same order. So int8 streaming output is bit-identical to
//! [`crate::quant::forward_i8`], and float output to [`crate::Model::forward`] (the tests in
//! `host-tests/tests/stream.rs` check both, and the row kernels against the whole-tensor ones).
//!
//! **Architectures.**
//! * `ldp`: rows and column strips, by the graph row executor (`graph::rows`: stages, rings and
//!   strips derived from the node list; [`ldp_scratch_bytes`]).
//! * `mobilevlm-v2`: rows (full width), by the same graph row executor: the MLP runs on pixel
//!   chunks read straight from the source, the adaptive pool accumulates each chunk into its
//!   open bins (no rows of the MLP are kept), the PEG conv keeps three pooled rows
//!   ([`v2_scratch_bytes`]).
//! * `mobilevlm-v1`: rows (full width), by the same graph row executor. Its squeeze-excitations
//!   need the mean of whole maps, so it runs in three passes over the input: pass 1 sums block
//!   1's SE input, pass 2 recomputes block 1 with its gate and sums block 2's SE input, pass 3
//!   recomputes everything and emits the output. RAM stays at a few rows
//!   ([`v1_scratch_bytes`]); the cost is recomputation (about 3× the MLP's MACs, see
//!   [`v1_macs`]).
//!
//! Order of emission: for `ldp`, strip by strip, and inside a strip row by row, left to right;
//! for V1/V2 row by row. [`RowCrc`] turns any such order into the CRC-32 of the row-major output.

pub mod kernels;

use crate::arch::ldp::LdpConfig;
use crate::arch::mobilevlm_v1::V1Config;
use crate::arch::mobilevlm_v2::V2Config;
use crate::blob::{DType, Model, ModelConfig};
use crate::error::Error;

/// Pixels per chunk between pointwise layers (the chunks of `b`, `f` and `y`).
pub const CHUNK: usize = 2;

/// Whole-width strips: pass as `strip` to compute every output row in one piece.
pub const FULL_WIDTH: usize = usize::MAX;

/// Where the input comes from: any row segment, on demand.
///
/// With column strips (`ldp`) every input row is requested once per strip, for the strip's
/// columns plus its halo; with a single strip ([`FULL_WIDTH`]) each row exactly once, in order
/// (what a camera or DMA ring can serve). MobileVLM V1 reads the whole input three times.
pub trait RowSource<T> {
    /// Writes input row `row`, columns `col..col + out.len() / c_in`, channels-last, into `out`.
    fn read(&mut self, row: usize, col: usize, out: &mut [T]) -> Result<(), Error>;
}

/// Where the output goes: final output segments, as soon as they are computed.
pub trait RowSink<T> {
    /// Receives output row `row`, columns `col..col + data.len() / c_out`, channels-last.
    fn write(&mut self, row: usize, col: usize, data: &[T]) -> Result<(), Error>;
}

/// A [`RowSource`] over a channels-last input held in memory (flash, or a test vector).
#[derive(Debug, Clone, Copy)]
pub struct SliceSource<'a, T> {
    data: &'a [T],
    w: usize,
    c: usize,
}

impl<'a, T> SliceSource<'a, T> {
    /// A source over `data`, `[rows][w][c]`.
    pub fn new(data: &'a [T], w: usize, c: usize) -> Self {
        SliceSource { data, w, c }
    }
}

impl<T: Copy> RowSource<T> for SliceSource<'_, T> {
    fn read(&mut self, row: usize, col: usize, out: &mut [T]) -> Result<(), Error> {
        let start = row
            .checked_mul(self.w)
            .and_then(|v| v.checked_add(col))
            .and_then(|v| v.checked_mul(self.c));
        let src = start
            .and_then(|s| Some(s..s.checked_add(out.len())?))
            .and_then(|r| self.data.get(r))
            .ok_or(Error::InvalidConfig("SliceSource: read past the input"))?;
        out.copy_from_slice(src);
        Ok(())
    }
}

/// A [`RowSink`] that assembles the output in memory (`[rows][w][c]`).
#[derive(Debug)]
pub struct SliceSink<'a, T> {
    data: &'a mut [T],
    w: usize,
    c: usize,
}

impl<'a, T> SliceSink<'a, T> {
    /// A sink writing into `data`, `[rows][w][c]`.
    pub fn new(data: &'a mut [T], w: usize, c: usize) -> Self {
        SliceSink { data, w, c }
    }
}

impl<T: Copy> RowSink<T> for SliceSink<'_, T> {
    fn write(&mut self, row: usize, col: usize, data: &[T]) -> Result<(), Error> {
        let start = row
            .checked_mul(self.w)
            .and_then(|v| v.checked_add(col))
            .and_then(|v| v.checked_mul(self.c));
        let dst = start
            .and_then(|s| Some(s..s.checked_add(data.len())?))
            .and_then(|r| self.data.get_mut(r))
            .ok_or(Error::InvalidConfig("SliceSink: write past the output"))?;
        dst.copy_from_slice(data);
        Ok(())
    }
}

/// A deterministic int8 input generator (a [`RowSource`] for tests and benchmarks without an
/// input in memory): value `(row, col, ch)` is a hash of its channels-last index and the seed,
/// folded to a triangular distribution on `-127..=127`. Random access, so column strips may
/// re-read halo columns; firmware and host produce the same input from the same seed.
#[derive(Debug, Clone, Copy)]
pub struct SyntheticSource {
    seed: u32,
    w: usize,
    c: usize,
}

impl SyntheticSource {
    /// A generator for rows of `w` pixels of `c` channels.
    pub const fn new(seed: u32, w: usize, c: usize) -> Self {
        SyntheticSource { seed, w, c }
    }
    /// The value at `(row, col, ch)`.
    #[inline]
    pub fn value(&self, row: usize, col: usize, ch: usize) -> i8 {
        Self::at(self.seed, ((row * self.w + col) * self.c + ch) as u32)
    }
    #[inline(always)]
    fn at(seed: u32, idx: u32) -> i8 {
        // lowbias32 (Chris Wellons' integer hash) of the index mixed with the seed.
        let mut x = idx.wrapping_mul(0x9E37_79B1) ^ seed;
        x ^= x >> 16;
        x = x.wrapping_mul(0x7FEB_352D);
        x ^= x >> 15;
        x = x.wrapping_mul(0x846C_A68B);
        x ^= x >> 16;
        (((x & 0xFF) as i32 + ((x >> 8) & 0xFF) as i32 - 255) / 2) as i8
    }
}

impl RowSource<i8> for SyntheticSource {
    fn read(&mut self, row: usize, col: usize, out: &mut [i8]) -> Result<(), Error> {
        let start = ((row * self.w + col) * self.c) as u32;
        for (k, o) in out.iter_mut().enumerate() {
            *o = Self::at(self.seed, start.wrapping_add(k as u32));
        }
        Ok(())
    }
}

const fn crc_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static CRC_TABLE: [u32; 256] = crc_table();

/// Continues a CRC-32 (IEEE, as zlib's `crc32`) over `data`: start with `0`.
pub fn crc32_update(crc: u32, data: &[u8]) -> u32 {
    let mut c = !crc;
    for &b in data {
        c = CRC_TABLE[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

/// `a·b mod P(x)` in the reflected CRC-32 representation (zlib's `multmodp`; bit 31 is `x^0`).
fn crc_mult(a: u32, mut b: u32) -> u32 {
    let mut m = 1u32 << 31;
    let mut p = 0u32;
    while m != 0 {
        if a & m != 0 {
            p ^= b;
        }
        m >>= 1;
        b = if b & 1 != 0 {
            (b >> 1) ^ 0xEDB8_8320
        } else {
            b >> 1
        };
    }
    p
}

/// CRC-32 of `A‖B` from `crc(A)`, `crc(B)` and `len(B)` (zlib's `crc32_combine`).
pub fn crc32_combine(crc_a: u32, crc_b: u32, len_b: usize) -> u32 {
    // x^(8·len_b) mod P, by squaring: p holds x^(2^k) as k runs over the bits of 8·len_b.
    let mut xp = 1u32 << 31; // x^0
    let mut p = 1u32 << 30; // x^1
    let mut n = (len_b as u64) << 3;
    while n != 0 {
        if n & 1 != 0 {
            xp = crc_mult(p, xp);
        }
        p = crc_mult(p, p);
        n >>= 1;
    }
    crc_mult(xp, crc_a) ^ crc_b
}

/// A [`RowSink`] for int8 output that computes the CRC-32 of the output **in row-major order**
/// whatever the order of emission (column strips send each row in pieces, left to right), using
/// one running CRC per output row and [`crc32_combine`] at the end. The caller provides the
/// per-row state (`rows` entries of `u32`, e.g. a `static`).
#[derive(Debug)]
pub struct RowCrc<'a> {
    state: &'a mut [u32],
    row_bytes: usize,
    written: usize,
}

impl<'a> RowCrc<'a> {
    /// A checksum sink for an output of `state.len()` rows of `row_bytes` bytes.
    pub fn new(state: &'a mut [u32], row_bytes: usize) -> Self {
        state.iter_mut().for_each(|s| *s = 0);
        RowCrc {
            state,
            row_bytes,
            written: 0,
        }
    }
    /// Bytes received so far.
    pub fn written(&self) -> usize {
        self.written
    }
    /// The CRC-32 of the whole output, row-major (equal to `crc32(output)` of a whole-tensor run).
    pub fn finish(&self) -> u32 {
        self.state
            .iter()
            .fold(0u32, |acc, &r| crc32_combine(acc, r, self.row_bytes))
    }
}

impl RowSink<i8> for RowCrc<'_> {
    fn write(&mut self, row: usize, _col: usize, data: &[i8]) -> Result<(), Error> {
        let s = self
            .state
            .get_mut(row)
            .ok_or(Error::InvalidConfig("RowCrc: row out of range"))?;
        *s = crc32_update(*s, bytemuck::cast_slice(data));
        self.written += data.len();
        Ok(())
    }
}

/// Bytes per element of the three kinds of streamed data for a blob dtype:
/// `(input, activation, output)`.
pub const fn elem_sizes(dtype: DType) -> (usize, usize, usize) {
    match dtype {
        DType::Int8 => (1, 1, 1),
        DType::F32 => (4, 4, 4),
        DType::F16 => (4, 2, 4),
    }
}

pub(crate) const fn r16(n: usize) -> usize {
    n.div_ceil(16) * 16
}

/// Number of column strips of at most `strip` output columns over `w2` output columns
/// (`0` for `strip == 0`, which is invalid).
pub const fn strip_count(w2: usize, strip: usize) -> usize {
    if strip == 0 {
        0
    } else if strip >= w2 {
        1
    } else {
        w2.div_ceil(strip)
    }
}

/// Output columns `[ox0, ox1)` of strip `k` of `n` (balanced widths).
pub const fn strip_bounds(w2: usize, n: usize, k: usize) -> (usize, usize) {
    (k * w2 / n, (k + 1) * w2 / n)
}

/// Scratch bytes of streaming `ldp` with strips of at most `strip` output columns, for element
/// sizes `(input, activation, output)` ([`elem_sizes`]).
///
/// ```
/// use ldp_core::arch::ldp::LdpConfig;
/// use ldp_core::stream::ldp_scratch_bytes;
/// const CFG: LdpConfig = LdpConfig { c_in: 128, c_out: 128, h: 64, w: 64 };
/// const ARENA: usize = ldp_scratch_bytes(&CFG, 16, (1, 1, 1));
/// static mut SCRATCH: [u8; ARENA] = [0; ARENA];
/// assert!(ARENA < 40 * 1024);
/// ```
pub const fn ldp_scratch_bytes(
    cfg: &LdpConfig,
    strip: usize,
    sizes: (usize, usize, usize),
) -> usize {
    use crate::graph::plan::Scheme;
    let scheme = if sizes.1 == 1 {
        Scheme::Int8
    } else {
        Scheme::Float
    };
    match crate::graph::rows::layout(crate::graph::ldp::NODES, cfg.dims(), strip, scheme) {
        Ok(l) => crate::graph::rows::scratch_bytes(&l, cfg.dims(), sizes),
        Err(_) => 0,
    }
}

/// Multiply-accumulates of streaming `ldp` with strips of at most `strip` output columns:
/// [`LdpConfig::macs`] plus the halo columns that neighbouring strips both compute (PW1 on the
/// `a` halo, DW1 and PW2 on the `c` halo).
pub const fn ldp_macs(cfg: &LdpConfig, strip: usize) -> usize {
    use crate::graph::plan::Scheme;
    match crate::graph::rows::layout(crate::graph::ldp::NODES, cfg.dims(), strip, Scheme::Int8) {
        Ok(l) => l.macs,
        Err(_) => 0,
    }
}

/// Scratch bytes of streaming MobileVLM V2 for element sizes `(input, activation, output)`.
pub const fn v2_scratch_bytes(cfg: &V2Config, sizes: (usize, usize, usize)) -> usize {
    use crate::graph::plan::Scheme;
    let scheme = if sizes.1 == 1 {
        Scheme::Int8
    } else {
        Scheme::Float
    };
    let nodes = crate::graph::mobilevlm_v2::nodes_for(cfg.tokens_in());
    match crate::graph::rows::layout(nodes, cfg.dims(), FULL_WIDTH, scheme) {
        Ok(l) => crate::graph::rows::scratch_bytes(&l, cfg.dims(), sizes),
        Err(_) => 0,
    }
}

/// Scratch bytes of streaming MobileVLM V1 (three passes: one per squeeze-excitation, then the
/// output) for element sizes `(input, activation, output)`: its graph's row layout.
pub const fn v1_scratch_bytes(cfg: &V1Config, sizes: (usize, usize, usize)) -> usize {
    use crate::graph::plan::Scheme;
    let scheme = if sizes.1 == 1 {
        Scheme::Int8
    } else {
        Scheme::Float
    };
    match crate::graph::rows::layout(
        crate::graph::mobilevlm_v1::NODES,
        cfg.dims(),
        FULL_WIDTH,
        scheme,
    ) {
        Ok(l) => crate::graph::rows::scratch_bytes(&l, cfg.dims(), sizes),
        Err(_) => 0,
    }
}

/// Multiply-accumulates of streaming MobileVLM V1: pass 1 runs the MLP and block 1 up to its
/// squeeze-excitation, pass 2 block 1 and block 2 up to its squeeze-excitation, pass 3
/// everything (the row layout's count).
pub const fn v1_macs(cfg: &V1Config) -> usize {
    use crate::graph::plan::Scheme;
    match crate::graph::rows::layout(
        crate::graph::mobilevlm_v1::NODES,
        cfg.dims(),
        FULL_WIDTH,
        Scheme::Int8,
    ) {
        Ok(l) => l.macs,
        Err(_) => 0,
    }
}

/// Scratch bytes of streaming execution of a model with blob dtype `dtype`, with column strips
/// of at most `strip` output columns (used by `ldp` only; [`FULL_WIDTH`] for whole rows).
/// `0` when `strip` is 0.
pub const fn scratch_bytes(cfg: &ModelConfig, dtype: DType, strip: usize) -> usize {
    let sizes = elem_sizes(dtype);
    match cfg {
        ModelConfig::Ldp(c) => {
            if strip == 0 {
                0
            } else {
                ldp_scratch_bytes(c, strip, sizes)
            }
        }
        ModelConfig::MobileVlmV1(c) => v1_scratch_bytes(c, sizes),
        ModelConfig::MobileVlmV2(c) => v2_scratch_bytes(c, sizes),
        ModelConfig::Graph(c) => c.stream_scratch_bytes(strip, sizes),
    }
}

/// Scratch bytes of [`forward_x16`] (an int8 blob with a 16-bit input): as
/// [`scratch_bytes`]`(cfg, Int8, strip)` with a 16-bit input row. `0` for architectures that do
/// not stream a 16-bit input yet (`ldp`, MobileVLM V1; V2 has no 16-bit-input form).
pub const fn scratch_bytes_x16(cfg: &ModelConfig, strip: usize) -> usize {
    match cfg {
        ModelConfig::Graph(c) if strip > 0 => c.stream_scratch_bytes(strip, (2, 1, 1)),
        _ => 0,
    }
}

/// Multiply-accumulates of streaming execution (with recomputation) of `cfg`.
pub const fn macs(cfg: &ModelConfig, strip: usize) -> usize {
    match cfg {
        ModelConfig::Ldp(c) => ldp_macs(c, strip),
        ModelConfig::MobileVlmV1(c) => v1_macs(c),
        ModelConfig::MobileVlmV2(c) => c.macs(),
        ModelConfig::Graph(c) => c.macs(),
    }
}

/// Bytes of RAM of whole-tensor execution with int8 (`dtype == Int8`: int8 input, output and
/// [`crate::quant::scratch_bytes_i8`]) or float (f32 input and output plus the float scratch)
/// boundaries — what [`scratch_bytes`] is to be compared with.
pub const fn whole_tensor_bytes(cfg: &ModelConfig, dtype: DType) -> usize {
    match dtype {
        DType::Int8 => {
            crate::quant::scratch_bytes_i8(cfg) + r16(cfg.input_len()) + r16(cfg.output_len())
        }
        DType::F32 => 4 * (cfg.float_scratch_len() + cfg.input_len() + cfg.output_len()),
        DType::F16 => 2 * cfg.float_scratch_len() + 4 * (cfg.input_len() + cfg.output_len()),
    }
}

/// Carves typed, 16-byte aligned regions off a byte arena.
pub(crate) struct Carver<'a> {
    rest: &'a mut [u8],
}

impl<'a> Carver<'a> {
    pub(crate) fn new(scratch: &'a mut [u8]) -> Self {
        Carver { rest: scratch }
    }
    /// `n` elements of `T`, taking `r16(n · size_of::<T>())` bytes.
    pub(crate) fn take<T: bytemuck::Pod>(&mut self, n: usize) -> Result<&'a mut [T], Error> {
        let bytes = n * core::mem::size_of::<T>();
        let len = r16(bytes);
        let rest = core::mem::take(&mut self.rest);
        if rest.len() < len {
            return Err(Error::ScratchTooSmall {
                need: len,
                have: rest.len(),
            });
        }
        let (head, tail) = rest.split_at_mut(len);
        self.rest = tail;
        bytemuck::try_cast_slice_mut(&mut head[..bytes]).map_err(|_| Error::Misaligned {
            what: "stream scratch",
        })
    }
}

pub(crate) fn check_scratch(scratch: &[u8], need: usize) -> Result<(), Error> {
    if (scratch.as_ptr() as usize) % 16 != 0 {
        return Err(Error::Misaligned {
            what: "stream scratch (align it to 16 bytes)",
        });
    }
    if scratch.len() < need {
        return Err(Error::ScratchTooSmall {
            need,
            have: scratch.len(),
        });
    }
    Ok(())
}

/// Why an `ldp`/V1 blob with a 16-bit input does not stream.
const NO_X16_STREAM: &str =
    "streaming does not run ldp/V1 blobs with a 16-bit input yet: use Model::forward (whole tensor)";

/// Streams an int8 blob: int8 input rows (quantized with the blob's `input.scale`/`input.zero`,
/// see [`InputQuantizer`]) to int8 output rows, bit-identical to [`crate::quant::forward_i8`].
/// `strip` bounds the output columns per strip (`ldp` only). `scratch` needs
/// [`scratch_bytes`]`(config, Int8, strip)` bytes, 16-byte aligned.
pub fn forward_i8<S: RowSource<i8>, K: RowSink<i8>>(
    m: &Model<'_>,
    strip: usize,
    src: &mut S,
    sink: &mut K,
    scratch: &mut [u8],
) -> Result<(), Error> {
    if m.dtype() != DType::Int8 {
        return Err(Error::Unsupported("forward_i8 needs an int8 blob"));
    }
    if crate::quant::a16::is_a16(m) {
        return Err(Error::Unsupported(
            "streaming does not run 16-bit-activation blobs yet: use Model::forward (whole tensor)",
        ));
    }
    if crate::quant::is_x16(m) {
        return Err(Error::Unsupported(match m.config() {
            ModelConfig::Graph(_) => {
                "this int8 blob has a 16-bit input: stream it with stream::forward_x16"
            }
            _ => NO_X16_STREAM,
        }));
    }
    match m.config() {
        ModelConfig::Ldp(c) => {
            let nodes = crate::graph::ldp::NODES;
            let ops = crate::graph::rows::I8Ops::new(m, nodes, c.dims())?;
            crate::graph::rows::run(nodes, c.dims(), strip, &ops, src, sink, scratch)
        }
        ModelConfig::MobileVlmV1(c) => {
            let nodes = crate::graph::mobilevlm_v1::NODES;
            let ops = crate::graph::rows::I8Ops::new(m, nodes, c.dims())?;
            crate::graph::rows::run(nodes, c.dims(), FULL_WIDTH, &ops, src, sink, scratch)
        }
        ModelConfig::MobileVlmV2(c) => {
            let nodes = crate::graph::mobilevlm_v2::nodes_for(c.tokens_in());
            let ops = crate::graph::rows::I8Ops::new(m, nodes, c.dims())?;
            crate::graph::rows::run(nodes, c.dims(), FULL_WIDTH, &ops, src, sink, scratch)
        }
        ModelConfig::Graph(c) => {
            c.validate()?;
            let ops = crate::graph::rows::I8Ops::new(m, c.nodes(), c.dims())?;
            crate::graph::rows::run(c.nodes(), c.dims(), strip, &ops, src, sink, scratch)
        }
    }
}

/// Streams an int8 blob with a 16-bit input ([`crate::quant::is_x16`]; `ldp-quant` writes one
/// for `mlp2x-gelu` by default): 16-bit input rows (quantized as [`InputQuantizer16`] does) to
/// int8 output rows, bit-identical to [`crate::quant::forward_x16`]. Graph architectures only
/// so far; `ldp` and V1 blobs with a 16-bit input return [`Error::Unsupported`]. `scratch`
/// needs [`scratch_bytes_x16`]`(config, strip)` bytes, 16-byte aligned.
pub fn forward_x16<S: RowSource<i16>, K: RowSink<i8>>(
    m: &Model<'_>,
    strip: usize,
    src: &mut S,
    sink: &mut K,
    scratch: &mut [u8],
) -> Result<(), Error> {
    if m.dtype() != DType::Int8 || !crate::quant::is_x16(m) {
        return Err(Error::Unsupported(
            "forward_x16 needs an int8 blob with a 16-bit input; use forward_i8 or forward_float",
        ));
    }
    match m.config() {
        ModelConfig::Graph(c) if strip > 0 => {
            c.validate()?;
            let ops = crate::graph::rows::I8Ops::<i16>::new(m, c.nodes(), c.dims())?;
            crate::graph::rows::run(c.nodes(), c.dims(), strip, &ops, src, sink, scratch)
        }
        ModelConfig::Graph(_) => Err(Error::InvalidConfig("strip must be at least 1")),
        _ => Err(Error::Unsupported(NO_X16_STREAM)),
    }
}

/// Quantizes f32 input row segments to the 16-bit input of an int8 blob with
/// [`crate::blob::specs::FLAG_INPUT16`] (the same rounding and saturation as
/// [`crate::quant::quantize_input16`]), for wrapping an f32 source.
#[derive(Debug, Clone, Copy)]
pub struct InputQuantizer16 {
    scale: f32,
    limit: i32,
}

impl InputQuantizer16 {
    /// The input quantization of an int8 blob with a 16-bit input.
    pub fn new(m: &Model<'_>) -> Result<Self, Error> {
        let (scale, limit) = crate::quant::graph::input16_params(m)?;
        Ok(InputQuantizer16 { scale, limit })
    }
    /// Quantizes `x` into `q` (the same length).
    pub fn quantize(&self, x: &[f32], q: &mut [i16]) -> Result<(), Error> {
        crate::quant::a16::quantize16(x, self.scale, self.limit, q)
    }
}

/// Streams an f32 or f16 blob: f32 input rows to f32 output rows, bit-identical to
/// [`crate::Model::forward`]. `scratch` needs [`scratch_bytes`]`(config, dtype, strip)` bytes.
pub fn forward_float<S: RowSource<f32>, K: RowSink<f32>>(
    m: &Model<'_>,
    strip: usize,
    src: &mut S,
    sink: &mut K,
    scratch: &mut [u8],
) -> Result<(), Error> {
    use half::f16;
    let graph = match m.config() {
        ModelConfig::Ldp(c) => Some((crate::graph::ldp::NODES, c.dims(), strip)),
        ModelConfig::MobileVlmV2(c) => Some((
            crate::graph::mobilevlm_v2::nodes_for(c.tokens_in()),
            c.dims(),
            FULL_WIDTH,
        )),
        ModelConfig::MobileVlmV1(c) => {
            Some((crate::graph::mobilevlm_v1::NODES, c.dims(), FULL_WIDTH))
        }
        ModelConfig::Graph(c) => {
            c.validate()?;
            Some((c.nodes(), c.dims(), strip))
        }
    };
    if let Some((nodes, d, strip)) = graph {
        use crate::graph::rows::run_float;
        return match m.dtype() {
            DType::F32 => run_float::<f32, f32, _, _>(m, nodes, d, strip, src, sink, scratch),
            DType::F16 => run_float::<f16, f16, _, _>(m, nodes, d, strip, src, sink, scratch),
            DType::Int8 => Err(Error::Unsupported(
                "forward_float needs an f32 or f16 blob; use forward_i8",
            )),
        };
    }
    Err(Error::Unsupported(
        "internal: every architecture streams above",
    ))
}

/// Quantizes f32 input row segments as an int8 blob expects (the same rounding as
/// [`crate::quant::quantize_input`]), for wrapping an f32 source.
#[derive(Debug, Clone, Copy)]
pub struct InputQuantizer<'a> {
    scale: &'a [f32],
    zero: &'a [i8],
    c_in: usize,
}

impl<'a> InputQuantizer<'a> {
    /// The input quantization of an int8 blob.
    pub fn new(m: &Model<'a>) -> Result<Self, Error> {
        let missing = Error::Unsupported("int8 blob lacks its input quantization");
        let scale = m.f32s(m.find("input.scale", "").ok_or(missing)?)?;
        let zero = m.i8s(m.find("input.zero", "").ok_or(missing)?)?;
        let (c_in, _) = m.config().channels();
        if scale.is_empty() || zero.len() != scale.len() {
            return Err(Error::Unsupported(
                "int8 blob has malformed input quantization",
            ));
        }
        Ok(InputQuantizer { scale, zero, c_in })
    }
    /// Quantizes whole pixels: `x` and `q` hold the same number of `c_in`-channel pixels.
    pub fn quantize(&self, x: &[f32], q: &mut [i8]) -> Result<(), Error> {
        crate::error::check_len("quantized row", q, x.len())?;
        if x.len() % self.c_in != 0 {
            return Err(Error::InvalidConfig("input row is not whole pixels"));
        }
        let per_ch = self.scale.len() == self.c_in && self.c_in > 1;
        for (i, (v, o)) in x.iter().zip(q.iter_mut()).enumerate() {
            let ch = if per_ch { i % self.c_in } else { 0 };
            let r = libm::roundf(*v / self.scale[ch]);
            *o = crate::quant::fixed::sat_i8((r as i32).saturating_add(self.zero[ch] as i32));
        }
        Ok(())
    }
}
