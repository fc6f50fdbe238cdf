//! Numeric conventions of TA-Lib C 0.8.x that several indicators share.

/// TA-Lib's `TA_IS_ZERO` tolerance: values within ±1e-14 count as zero in its divisions.
const TA_EPSILON: f64 = 1e-14;

/// TA-Lib's `TA_IS_ZERO(v)`.
#[inline]
pub(crate) fn is_zero(v: f64) -> bool {
    -TA_EPSILON < v && v < TA_EPSILON
}

/// TA-Lib's `PER_TO_K(period)`: the EMA smoothing factor `2 / (period + 1)`.
#[inline]
pub(crate) fn ema_k(period: usize) -> f64 {
    2.0 / ((period + 1) as f64)
}

/// TA-Lib's true range of a bar given the previous close.
#[inline]
pub(crate) fn true_range(high: f64, low: f64, prev_close: f64) -> f64 {
    let mut greatest = high - low;
    let up = (prev_close - high).abs();
    if up > greatest {
        greatest = up;
    }
    let down = (prev_close - low).abs();
    if down > greatest {
        greatest = down;
    }
    greatest
}
