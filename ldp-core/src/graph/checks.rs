//! The `quant.meta` / `quant.scales` entry checks shared by the int8 ([`super::int8`]) and
//! 16-bit ([`super::a16`]) validators of graph blobs: each validator walks its nodes and says
//! which entry is what; the checks of one kind of entry are written once, here.

use core::ops::RangeInclusive;

use crate::blob::int8::conv_shifts;
use crate::blob::BlobError;

/// One blob's `quant.meta` and `quant.scales` (the same length, checked by the table).
pub(crate) struct MetaChecks<'a> {
    meta: &'a [i32],
    scales: &'a [f32],
}

impl<'a> MetaChecks<'a> {
    pub(crate) fn new(meta: &'a [i32], scales: &'a [f32]) -> Self {
        Self { meta, scales }
    }

    /// Entry `i` of `quant.meta`.
    pub(crate) fn at(&self, i: usize) -> Result<i32, BlobError> {
        self.meta
            .get(i)
            .copied()
            .ok_or(BlobError::BadTable("quant.meta too short"))
    }

    /// Whether scale `i` is finite and non-negative.
    pub(crate) fn scale_ok(&self, i: usize) -> bool {
        self.scales
            .get(i)
            .is_some_and(|s| s.is_finite() && *s >= 0.0)
    }

    /// An activation's zero point `i` in `range` (else `what`), with a finite non-negative scale.
    pub(crate) fn zero(
        &self,
        i: usize,
        range: RangeInclusive<i32>,
        what: &'static str,
    ) -> Result<(), BlobError> {
        if !range.contains(&self.at(i)?) {
            return Err(BlobError::BadTable(what));
        }
        if !self.scale_ok(i) {
            return Err(BlobError::BadTable(
                "an activation scale is not finite and non-negative",
            ));
        }
        Ok(())
    }

    /// A requantization shift in `1..=62`.
    pub(crate) fn shift(&self, i: usize) -> Result<(), BlobError> {
        if !(1..=62).contains(&self.at(i)?) {
            return Err(BlobError::BadTable(
                "a requantization shift is outside 1..=62",
            ));
        }
        Ok(())
    }

    /// A multiplier or epsilon, non-negative.
    pub(crate) fn nonneg(&self, i: usize) -> Result<(), BlobError> {
        if self.at(i)? < 0 {
            return Err(BlobError::BadTable("a multiplier or epsilon is negative"));
        }
        Ok(())
    }

    /// A conv's shift word: 16 bits, a shift in `1..=62` and a bias shift up to `max_bias`
    /// (else `what`).
    pub(crate) fn conv_word(
        &self,
        i: usize,
        max_bias: u32,
        what: &'static str,
    ) -> Result<(), BlobError> {
        let word = self.at(i)?;
        let (shift, bias_shift) = conv_shifts(word);
        if !(0..1 << 16).contains(&word) || !(1..=62).contains(&shift) {
            return Err(BlobError::BadTable(
                "a conv's requantization shift is outside 1..=62",
            ));
        }
        if bias_shift > max_bias {
            return Err(BlobError::BadTable(what));
        }
        Ok(())
    }

    /// An ADD's four entries from `i`: two multipliers, a shift, then the output's zero point
    /// (checked by `zero`, which differs between the int8 and 16-bit forms).
    pub(crate) fn add(
        &self,
        i: usize,
        zero: impl Fn(usize) -> Result<(), BlobError>,
    ) -> Result<(), BlobError> {
        self.nonneg(i)?;
        self.nonneg(i + 1)?;
        self.shift(i + 2)?;
        zero(i + 3)
    }
}
