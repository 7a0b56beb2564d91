//! The perf firmware's streaming check: every embedded model is also run by row streaming
//! (`ldp_core::stream`, whole-width rows) and compared with the same expected output as the
//! whole-tensor run — bit for bit for int8 (the host's int8 output), within the model's bound for
//! f32/f16. One `STREAM board=… arch=… dtype=… ok=… stream_bytes=…` line per model; blobs that
//! streaming does not run yet (16-bit activations, or an `ldp`/V1 16-bit input) are reported as
//! skipped. Graph blobs with a 16-bit input stream 16-bit rows (`stream::forward_x16`).

use defmt::{error, println, warn};
use ldp_core::stream::{
    self, InputQuantizer, InputQuantizer16, RowSink, RowSource, SliceSink, SliceSource,
};
use ldp_core::{DType, Error, Model};

use crate::check;
use crate::models::{self, MODELS};

/// The blob's input quantization of a row: [`InputQuantizer`] (int8 input) or
/// [`InputQuantizer16`] (16-bit input).
trait RowQuant<T> {
    fn quantize_row(&self, x: &[f32], out: &mut [T]) -> Result<(), Error>;
}

impl RowQuant<i8> for InputQuantizer<'_> {
    fn quantize_row(&self, x: &[f32], out: &mut [i8]) -> Result<(), Error> {
        self.quantize(x, out)
    }
}

impl RowQuant<i16> for InputQuantizer16 {
    fn quantize_row(&self, x: &[f32], out: &mut [i16]) -> Result<(), Error> {
        self.quantize(x, out)
    }
}

/// f32 input rows quantized on the fly as the blob expects.
struct QuantSource<'a, Q> {
    x: &'a [f32],
    w: usize,
    c: usize,
    q: Q,
}

impl<T, Q: RowQuant<T>> RowSource<T> for QuantSource<'_, Q> {
    fn read(&mut self, row: usize, col: usize, out: &mut [T]) -> Result<(), Error> {
        let start = row
            .checked_mul(self.w)
            .and_then(|v| v.checked_add(col))
            .and_then(|v| v.checked_mul(self.c))
            .ok_or(Error::InvalidConfig("stream check: row out of range"))?;
        let x = start
            .checked_add(out.len())
            .and_then(|end| self.x.get(start..end))
            .ok_or(Error::InvalidConfig("stream check: read past the input"))?;
        self.q.quantize_row(x, out)
    }
}

/// int8 output rows dequantized into an f32 buffer.
struct DequantSink<'a, 'm> {
    m: &'a Model<'m>,
    y: &'a mut [f32],
    w: usize,
    c: usize,
}

impl RowSink<i8> for DequantSink<'_, '_> {
    fn write(&mut self, row: usize, col: usize, data: &[i8]) -> Result<(), Error> {
        let start = row
            .checked_mul(self.w)
            .and_then(|v| v.checked_add(col))
            .and_then(|v| v.checked_mul(self.c))
            .ok_or(Error::InvalidConfig("stream check: row out of range"))?;
        let y = start
            .checked_add(data.len())
            .and_then(|end| self.y.get_mut(start..end))
            .ok_or(Error::InvalidConfig("stream check: write past the output"))?;
        ldp_core::quant::dequantize_output(self.m, data, y)
    }
}

/// Streams every embedded model; returns `(checked, failed)`.
pub fn run(arena: &mut [u8], output: &mut [f32]) -> (usize, usize) {
    let (mut checked, mut failed) = (0usize, 0usize);
    for e in MODELS.iter() {
        let Ok(m) = Model::parse(e.blob) else {
            error!(
                "STREAM {=str}/{=str}: the blob does not parse",
                e.arch, e.dtype
            );
            failed += 1;
            continue;
        };
        let cfg = m.config();
        let x16 = ldp_core::quant::is_x16(&m);
        let need = if x16 {
            stream::scratch_bytes_x16(&cfg, stream::FULL_WIDTH)
        } else {
            stream::scratch_bytes(&cfg, m.dtype(), stream::FULL_WIDTH)
        };
        if ldp_core::quant::a16::is_a16(&m) || (x16 && need == 0) {
            warn!(
                "STREAM board={=str} arch={=str} dtype={=str} skipped (16-bit activations or an ldp/V1 16-bit input: whole tensor only)",
                models::BOARD, e.arch, e.dtype
            );
            continue;
        }
        if need > arena.len() || e.expected.len() > output.len() {
            warn!(
                "STREAM board={=str} arch={=str} dtype={=str} skipped (needs {=usize} bytes of scratch)",
                models::BOARD, e.arch, e.dtype, need
            );
            continue;
        }
        let (c_in, c_out) = cfg.channels();
        let (wi, wo) = (cfg.input_grid().1, cfg.output_grid().1);
        let out = &mut output[..e.expected.len()];
        out.fill(f32::NAN);
        let scratch = &mut arena[..need];
        let r = match m.dtype() {
            DType::Int8 if x16 => InputQuantizer16::new(&m).and_then(|q| {
                let mut src = QuantSource {
                    x: e.input,
                    w: wi,
                    c: c_in,
                    q,
                };
                let mut sink = DequantSink {
                    m: &m,
                    y: out,
                    w: wo,
                    c: c_out,
                };
                stream::forward_x16(&m, stream::FULL_WIDTH, &mut src, &mut sink, scratch)
            }),
            DType::Int8 => InputQuantizer::new(&m).and_then(|q| {
                let mut src = QuantSource {
                    x: e.input,
                    w: wi,
                    c: c_in,
                    q,
                };
                let mut sink = DequantSink {
                    m: &m,
                    y: out,
                    w: wo,
                    c: c_out,
                };
                stream::forward_i8(&m, stream::FULL_WIDTH, &mut src, &mut sink, scratch)
            }),
            DType::F32 | DType::F16 => {
                let mut src = SliceSource::new(e.input, wi, c_in);
                let mut sink = SliceSink::new(out, wo, c_out);
                stream::forward_float(&m, stream::FULL_WIDTH, &mut src, &mut sink, scratch)
            }
        };
        let v = check::compare(&output[..e.expected.len()], e.expected, e.tolerance);
        let ok = r.is_ok() && v.pass;
        if let Err(err) = r {
            error!("STREAM {=str}/{=str}: {}", e.arch, e.dtype, err);
        }
        println!(
            "STREAM board={=str} arch={=str} dtype={=str} ok={=bool} rel_l2={=f64} mismatches={=usize} stream_bytes={=usize} whole_tensor_bytes={=usize}",
            models::BOARD,
            e.arch,
            e.dtype,
            ok,
            v.rel_l2,
            v.mismatches,
            need,
            e.scratch_bytes
        );
        checked += 1;
        failed += usize::from(!ok);
    }
    (checked, failed)
}
