//! Exact content-size moments.
//!
//! Mean and standard deviation are derived from exact integer power sums (count, Σx, Σx²), never
//! from partial means: integer sums are associative, so a merged partial holds the same sums
//! whatever the split and order, and the final `f64` values are bit-identical to one pass.
//! Σx² needs more than 128 bits (n · x² reaches 2^190 for 63-bit sizes), hence [`U256`].

/// Unsigned 256-bit integer, just the operations the variance formula needs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct U256 {
    pub hi: u128,
    pub lo: u128,
}

impl U256 {
    pub const ZERO: U256 = U256 { hi: 0, lo: 0 };

    pub fn from_u128(v: u128) -> U256 {
        U256 { hi: 0, lo: v }
    }

    /// Full 128 × 128 → 256-bit product.
    pub fn mul_u128(a: u128, b: u128) -> U256 {
        const M: u128 = u64::MAX as u128;
        let (a1, a0) = (a >> 64, a & M);
        let (b1, b0) = (b >> 64, b & M);
        let p00 = a0 * b0;
        let p01 = a0 * b1;
        let p10 = a1 * b0;
        let p11 = a1 * b1;
        // Middle column: three terms below 2^64 each, so the sum fits in u128.
        let mid = (p00 >> 64) + (p01 & M) + (p10 & M);
        let lo = (p00 & M) | (mid << 64);
        let hi = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
        U256 { hi, lo }
    }

    /// Wrapping addition; callers stay far below 2^256 (see the module docs).
    #[inline]
    pub fn wrapping_add(self, o: U256) -> U256 {
        let (lo, carry) = self.lo.overflowing_add(o.lo);
        let hi = self.hi.wrapping_add(o.hi).wrapping_add(u128::from(carry));
        U256 { hi, lo }
    }

    #[inline]
    pub fn add_u128(&mut self, v: u128) {
        *self = self.wrapping_add(U256::from_u128(v));
    }

    /// `self - o`, or `None` when `o > self`.
    pub fn checked_sub(self, o: U256) -> Option<U256> {
        if o > self {
            return None;
        }
        let (lo, borrow) = self.lo.overflowing_sub(o.lo);
        Some(U256 {
            hi: self.hi - o.hi - u128::from(borrow),
            lo,
        })
    }

    /// Wrapping multiplication by a 64-bit factor.
    pub fn wrapping_mul_u64(self, n: u64) -> U256 {
        let low = U256::mul_u128(self.lo, u128::from(n));
        U256 {
            hi: low.hi.wrapping_add(self.hi.wrapping_mul(u128::from(n))),
            lo: low.lo,
        }
    }

    /// Nearest `f64`: the top 128 bits plus a sticky bit for the rest, so the single rounding
    /// done by `u128 as f64` is the correct one.
    pub fn to_f64(self) -> f64 {
        if self.hi == 0 {
            return self.lo as f64;
        }
        let shift = 128 - self.hi.leading_zeros();
        let top = if shift == 128 {
            self.hi
        } else {
            (self.hi << (128 - shift)) | (self.lo >> shift)
        };
        let dropped = if shift == 128 {
            self.lo
        } else {
            self.lo & ((1u128 << shift) - 1)
        };
        let top = top | u128::from(dropped != 0);
        // Multiplying by an exact power of two cannot round again.
        top as f64 * f64::from_bits(u64::from(1023 + shift) << 52)
    }
}

/// Power sums of the *known* content sizes. Missing sizes are counted elsewhere (the null count),
/// so whether a missing size means 0 is decided when the table is built, not when observing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SizeStats {
    pub count: u64,
    pub sum: u128,
    pub sum_sq: U256,
    /// Meaningful only when `count > 0`.
    pub min: u64,
    pub max: u64,
}

/// The `content_stats` row. `None` where Spark would give null.
///
/// Semantics (the original pipeline's, with `missing_size_as_zero`, the default): every record
/// contributes a size, a missing (`-`) size counting as 0; so `count` is the number of records,
/// `min` is 0 as soon as one size is missing, and `mean`/`std` include those zeros. With the flag
/// off, missing sizes are left out (Spark's plain `count`/`avg` over a nullable column).
///
/// `mean = Σx / n` and `std = sqrt((n·Σx² − (Σx)²) / (n·(n − 1)))` (sample standard deviation,
/// null for n < 2). Both are computed once, from exact integers, at the end: the subtraction is
/// exact, so a huge mean with a small spread loses nothing, and the result depends only on the
/// multiset of sizes, never on how partials were split or merged.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ContentStats {
    pub count: u64,
    pub min: Option<u64>,
    pub max: Option<u64>,
    pub mean: Option<f64>,
    /// Sample standard deviation (divisor n − 1), `None` when `count < 2`.
    pub std: Option<f64>,
}

impl SizeStats {
    #[inline]
    pub fn observe(&mut self, size: u64) {
        if self.count == 0 {
            self.min = size;
            self.max = size;
        } else {
            self.min = self.min.min(size);
            self.max = self.max.max(size);
        }
        self.count += 1;
        let s = u128::from(size);
        self.sum += s;
        // A u64 squared always fits in u128.
        self.sum_sq.add_u128(s * s);
    }

    pub fn merge(&mut self, o: &SizeStats) {
        if o.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = *o;
            return;
        }
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        // Saturating like every count of a merge (see `Partial::merge`).
        self.count = self.count.saturating_add(o.count);
        self.sum = self.sum.saturating_add(o.sum);
        self.sum_sq = self.sum_sq.wrapping_add(o.sum_sq);
    }

    /// Moments over the known sizes plus `zeros` extra sizes of 0 (the missing sizes, when the
    /// configuration counts them as 0). Zeros add to n but not to Σx or Σx².
    pub fn content_stats(&self, zeros: u64) -> ContentStats {
        let n = self.count.saturating_add(zeros);
        if n == 0 {
            return ContentStats {
                count: 0,
                min: None,
                max: None,
                mean: None,
                std: None,
            };
        }
        let (min, max) = match (self.count, zeros) {
            (0, _) => (0, 0),
            (_, 0) => (self.min, self.max),
            _ => (0, self.max),
        };
        let mean = self.sum as f64 / n as f64;
        let std = (n >= 2).then(|| {
            // var = (n·Σx² − (Σx)²) / (n·(n − 1)), numerator exact, so no cancellation.
            let num = self
                .sum_sq
                .wrapping_mul_u64(n)
                .checked_sub(U256::mul_u128(self.sum, self.sum))
                .unwrap_or(U256::ZERO); // Cauchy–Schwarz makes it ≥ 0; zero is the safe floor.
            let den = U256::mul_u128(u128::from(n), u128::from(n - 1));
            (num.to_f64() / den.to_f64()).sqrt()
        });
        ContentStats {
            count: n,
            min: Some(min),
            max: Some(max),
            mean: Some(mean),
            std,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mul_matches_u128_when_small_and_known_large_product() {
        assert_eq!(U256::mul_u128(3, 5), U256::from_u128(15));
        let m = U256::mul_u128(u128::MAX, u128::MAX);
        // (2^128 − 1)^2 = 2^256 − 2^129 + 1
        assert_eq!(m.lo, 1);
        assert_eq!(m.hi, u128::MAX - 1);
        let p = U256::mul_u128(1 << 100, 1 << 100);
        assert_eq!(p, U256 { hi: 1 << 72, lo: 0 });
    }

    #[test]
    fn to_f64_rounds_like_exact_value() {
        assert_eq!(U256 { hi: 1, lo: 0 }.to_f64(), 2f64.powi(128));
        assert_eq!(U256 { hi: 0, lo: 12345 }.to_f64(), 12345.0);
        // 2^200 + 1 rounds to 2^200.
        let v = U256 { hi: 1 << 72, lo: 1 };
        assert_eq!(v.to_f64(), 2f64.powi(200));
        assert_eq!(
            U256 {
                hi: u128::MAX,
                lo: u128::MAX
            }
            .to_f64(),
            2f64.powi(256)
        );
    }

    #[test]
    fn sub_and_mul_small() {
        let a = U256 { hi: 1, lo: 0 };
        assert_eq!(
            a.checked_sub(U256::from_u128(1)),
            Some(U256::from_u128(u128::MAX))
        );
        assert_eq!(U256::from_u128(1).checked_sub(a), None);
        assert_eq!(
            U256::from_u128(u128::MAX).wrapping_mul_u64(2),
            U256 {
                hi: 1,
                lo: u128::MAX - 1
            }
        );
    }
}
