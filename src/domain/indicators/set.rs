//! `BarIndicators`: every published bar indicator of one (symbol, interval), updated together.

use crate::domain::bar::{Bar, Ohlcv};
use crate::domain::calendar::TradingCalendar;
use crate::domain::indicators::average::{ExponentialMovingAverage, SimpleMovingAverage};
use crate::domain::indicators::indicator::Indicator;
use crate::domain::indicators::momentum::{
    AverageDirectionalIndex, Momentum, MovingAverageConvergenceDivergence, RateOfChange,
    RelativeStrengthIndex, Stochastic, WilliamsR,
};
use crate::domain::indicators::values::NamedValues;
use crate::domain::indicators::volatility::{
    AverageTrueRange, BollingerBands, HistoricalVolatility, KeltnerChannel,
};
use crate::domain::indicators::volume::{OnBalanceVolume, SessionVwap};
use crate::domain::interval::Interval;
use crate::domain::time::Timestamp;

/// Number of published bar indicators.
pub const BAR_INDICATOR_COUNT: usize = 28;

/// Published names, in output order: the reference's 25 (momentum set, then volatility set),
/// then `adx_14`, `obv`, `vwap`.
pub const BAR_INDICATOR_NAMES: [&str; BAR_INDICATOR_COUNT] = [
    "sma_20",
    "sma_50",
    "sma_200",
    "ema_12",
    "ema_26",
    "rsi_14",
    "macd",
    "macd_signal",
    "macd_hist",
    "stoch_k",
    "stoch_d",
    "roc_10",
    "momentum_10",
    "willr_14",
    "bb_upper",
    "bb_middle",
    "bb_lower",
    "bb_bandwidth",
    "bb_percent_b",
    "atr_14",
    "atr_percent_14",
    "stddev_20",
    "keltner_upper",
    "keltner_lower",
    "hist_vol_20",
    "adx_14",
    "obv",
    "vwap",
];

/// The bar indicator values after one bar; `None` exactly where TA-Lib gives NaN.
pub type IndicatorValues = NamedValues<BAR_INDICATOR_COUNT>;

/// All published indicators for one (symbol, interval), each incremental (O(1) per bar;
/// the standard deviations rescan their 20 values).
///
/// Warm-up state is this struct: rebuild it after a restart by replaying the last 200-odd
/// bars (sma_200 needs 200; the EMA-based values converge to ~1e-9 after a few hundred).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct BarIndicators {
    calendar: TradingCalendar,
    sma_20: SimpleMovingAverage,
    sma_50: SimpleMovingAverage,
    sma_200: SimpleMovingAverage,
    ema_12: ExponentialMovingAverage,
    ema_26: ExponentialMovingAverage,
    rsi_14: RelativeStrengthIndex,
    macd: MovingAverageConvergenceDivergence,
    stoch: Stochastic,
    roc_10: RateOfChange,
    momentum_10: Momentum,
    willr_14: WilliamsR,
    bb: BollingerBands,
    atr_14: AverageTrueRange,
    keltner: KeltnerChannel,
    hist_vol_20: HistoricalVolatility,
    adx_14: AverageDirectionalIndex,
    obv: OnBalanceVolume,
    vwap: SessionVwap,
    /// Local day of the calendar holding the last bar, and its UTC span, for session VWAP.
    day: Option<(i32, Timestamp, Timestamp)>,
    bars: u64,
    /// Last outputs: recomputed by the next update, so not part of a checkpoint.
    #[serde(skip, default = "BarIndicators::no_values")]
    values: IndicatorValues,
}

impl BarIndicators {
    /// Indicators for bars of `interval`; `calendar` sets VWAP sessions and annualisation.
    pub fn new(interval: Interval, calendar: TradingCalendar) -> Self {
        Self {
            calendar,
            sma_20: SimpleMovingAverage::new(20),
            sma_50: SimpleMovingAverage::new(50),
            sma_200: SimpleMovingAverage::new(200),
            ema_12: ExponentialMovingAverage::new(12),
            ema_26: ExponentialMovingAverage::new(26),
            rsi_14: RelativeStrengthIndex::new(14),
            macd: MovingAverageConvergenceDivergence::new(12, 26, 9),
            stoch: Stochastic::new(14, 3, 3),
            roc_10: RateOfChange::new(10),
            momentum_10: Momentum::new(10),
            willr_14: WilliamsR::new(14),
            bb: BollingerBands::new(20, 2.0),
            atr_14: AverageTrueRange::new(14),
            keltner: KeltnerChannel::new(20, 14, 2.0),
            hist_vol_20: HistoricalVolatility::new(20, calendar.periods_per_year(interval)),
            adx_14: AverageDirectionalIndex::new(14),
            obv: OnBalanceVolume::new(),
            vwap: SessionVwap::new(),
            day: None,
            bars: 0,
            values: IndicatorValues::empty(&BAR_INDICATOR_NAMES),
        }
    }

    fn no_values() -> IndicatorValues {
        IndicatorValues::empty(&BAR_INDICATOR_NAMES)
    }

    /// Bars fed so far.
    pub fn bars_seen(&self) -> u64 {
        self.bars
    }

    /// The values after the last bar.
    pub fn values(&self) -> &IndicatorValues {
        &self.values
    }

    /// Feeds a closed bar built from trades (its exact VWAP feeds the session VWAP).
    pub fn update_bar(&mut self, bar: &Bar) -> &IndicatorValues {
        self.update(bar.start, &bar.ohlcv(), bar.vwap())
    }

    /// Feeds one bar starting at `start`; `bar_vwap` is the bar's own VWAP when known.
    pub fn update(
        &mut self,
        start: Timestamp,
        bar: &Ohlcv,
        bar_vwap: Option<f64>,
    ) -> &IndicatorValues {
        self.bars += 1;
        self.sma_20.update(bar);
        self.sma_50.update(bar);
        self.sma_200.update(bar);
        self.ema_12.update(bar);
        self.ema_26.update(bar);
        self.rsi_14.update(bar);
        self.macd.update(bar);
        self.stoch.update(bar);
        self.roc_10.update(bar);
        self.momentum_10.update(bar);
        self.willr_14.update(bar);
        self.bb.update(bar);
        self.atr_14.update(bar);
        self.keltner.update(bar);
        self.hist_vol_20.update(bar);
        self.adx_14.update(bar);
        self.obv.update(bar);
        let day = self.session_day(start);
        self.vwap.update(
            day,
            bar_vwap.unwrap_or_else(|| bar.typical_price()),
            bar.volume,
        );

        let macd = self.macd.value();
        let stoch = self.stoch.value();
        let bb = self.bb.value();
        let atr = self.atr_14.value();
        let keltner = self.keltner.value();
        self.values.set_all([
            self.sma_20.value(),
            self.sma_50.value(),
            self.sma_200.value(),
            self.ema_12.value(),
            self.ema_26.value(),
            self.rsi_14.value(),
            macd.map(|m| m.macd),
            macd.map(|m| m.signal),
            macd.map(|m| m.hist),
            stoch.map(|s| s.k),
            stoch.map(|s| s.d),
            self.roc_10.value(),
            self.momentum_10.value(),
            self.willr_14.value(),
            bb.map(|b| b.upper),
            bb.map(|b| b.middle),
            bb.map(|b| b.lower),
            bb.map(|b| b.bandwidth),
            bb.map(|b| b.percent_b),
            atr,
            atr.map(|a| a / bar.close * 100.0),
            bb.map(|b| b.std_dev),
            keltner.map(|k| k.0),
            keltner.map(|k| k.1),
            self.hist_vol_20.value(),
            self.adx_14.value(),
            self.obv.value(),
            self.vwap.value(),
        ]);
        &self.values
    }

    /// The calendar's local day containing `start`, cached while bars stay in one day.
    #[inline]
    fn session_day(&mut self, start: Timestamp) -> i32 {
        match self.day {
            Some((day, from, to)) if from <= start && start < to => day,
            _ => {
                let span = self.calendar.local_day(start);
                self.day = Some(span);
                span.0
            }
        }
    }
}
