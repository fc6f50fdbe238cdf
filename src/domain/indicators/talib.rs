//! Numeric conventions of TA-Lib C 0.8.x that several indicators share.

/// TA-Lib's `TA_IS_ZERO` tolerance: values within ±1e-14 count as zero in its divisions.
const TA_EPSILON: f64 = 1e-14;

/// TA-Lib's `TA_IS_ZERO(v)`.
#[inline]
pub(crate) fn is_zero(v: f64) -> bool {
    -TA_EPSILON < v && v < TA_EPSILON
}

/// TA-Lib's `TA_IS_ZERO_SCALED(v, scale)`: `|v| ≤ 1e-14 × scale`, the zero test STOCH and
/// WILLR apply to a high-low range (relative to the prices, so it works at any price level).
#[inline]
pub(crate) fn is_zero_scaled(v: f64, scale: f64) -> bool {
    v.abs() <= TA_EPSILON * scale
}

/// TA-Lib's `PER_TO_K(period)`: the EMA smoothing factor `2 / (period + 1)`.
#[inline]
pub(crate) fn ema_k(period: usize) -> f64 {
    2.0 / ((period + 1) as f64)
}

/// TA-Lib's true range of a bar given the previous close (a max: exact in any order).
#[inline]
pub(crate) fn true_range(high: f64, low: f64, prev_close: f64) -> f64 {
    (prev_close - low)
        .abs()
        .max((prev_close - high).abs().max(high - low))
}
