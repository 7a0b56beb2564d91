//! Reading int8 layer parameters from a blob, exactly as the whole-tensor int8 graph
//! (`crate::quant::graph`) reads them.

use crate::blob::Model;
use crate::error::Error;
use crate::quant::kernels::{AddQ, ConvQ};

pub(crate) struct P<'m, 'a> {
    pub m: &'m Model<'a>,
    pub meta: &'a [i32],
}

pub(crate) fn idx(m: &Model<'_>, prefix: &str, suffix: &str) -> Result<usize, Error> {
    m.find(prefix, suffix).ok_or(Error::Unsupported(
        "int8 blob lacks a tensor this build needs",
    ))
}

impl<'m, 'a> P<'m, 'a> {
    pub fn new(m: &'m Model<'a>) -> Result<Self, Error> {
        let meta = m.i32s(idx(m, "quant.meta", "")?)?;
        Ok(P { m, meta })
    }
    pub fn z(&self, i: usize) -> i32 {
        self.meta.get(i).copied().unwrap_or(0)
    }
    pub fn conv(
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
    /// A conv whose weight tensor is at index `w` ([`crate::quant::conv_q`]).
    pub fn conv_at(
        &self,
        w: usize,
        shift: usize,
        in_zero: i32,
        out_zero: i32,
        lut: Option<&'a [i8]>,
    ) -> Result<ConvQ<'a>, Error> {
        crate::quant::conv_q(self.m, w, self.z(shift), in_zero, out_zero, lut)
    }
    pub fn add(&self, za: i32, zb: i32, ma: usize, mb: usize, shift: usize, zo: usize) -> AddQ {
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
