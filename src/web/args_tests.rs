//! Unit tests of `args.rs` (a file of their own: `args.rs` is long enough).

use super::*;
use crate::web::params::{
    BEFORE_DATE, BEFORE_INSTANT, DATE, END_DATE, END_TIME, FORMAT, INTERVAL, START_DATE,
    START_TIME, SYMBOL, count, indicators, last_days, last_minutes, limit,
};

static INTRADAY: &[Param] = &[
    SYMBOL,
    INTERVAL,
    limit(100, 2000),
    last_minutes(1440, None),
    DATE,
    START_TIME,
    END_TIME,
    START_DATE,
    END_DATE,
    BEFORE_INSTANT,
    FORMAT,
];
static REALTIME_ANALYTICS: &[Param] = &[
    SYMBOL,
    indicators(IndicatorSet::Tick, &["tick_rsi_14"]),
    last_minutes(180, Some(30)),
    DATE,
];
static DAILY: &[Param] = &[SYMBOL, START_DATE, END_DATE, last_days(2000), BEFORE_DATE];
static LAST: &[Param] = &[SYMBOL, count(10)];

fn p(declared: &'static [Param], q: &str) -> Result<Args, ApiError> {
    Args::parse(declared, [("symbol", "aapl")], q)
}

fn ok(q: &str) -> Args {
    p(INTRADAY, q).unwrap()
}

fn refused(declared: &'static [Param], q: &str) -> (u16, String) {
    use actix_web::ResponseError;
    let e = p(declared, q)
        .and_then(|a| {
            a.time_window(NOW)?;
            a.date_window(NaiveDate::default())?;
            Ok(a)
        })
        .expect_err(q);
    let name = match &e {
        ApiError::Validation(f) => f.name.clone(),
        other => other.to_string(),
    };
    (e.status_code().as_u16(), name)
}

const NOW: Timestamp = Timestamp::from_micros(1_709_910_000_000_000);

#[test]
fn a_date_covers_the_whole_new_york_day_inclusive() {
    let r = ok("date=2024-03-10").time_window(NOW).unwrap();
    assert_eq!(r.from.unwrap().to_rfc3339(), "2024-03-10T05:00:00Z");
    assert_eq!(
        r.to.unwrap().to_rfc3339(),
        "2024-03-11T03:59:59.999999Z",
        "23-hour DST day"
    );
}

#[test]
fn start_time_without_end_time_runs_to_the_end_of_the_day() {
    let r = ok("date=2024-01-02&start_time=10:30")
        .time_window(NOW)
        .unwrap();
    assert_eq!(r.from.unwrap().to_rfc3339(), "2024-01-02T15:30:00Z");
    assert_eq!(r.to.unwrap().to_rfc3339(), "2024-01-03T04:59:59.999999Z");
    let r = ok("date=2024-01-02&start_time=10:30&end_time=10:45")
        .time_window(NOW)
        .unwrap();
    assert_eq!(r.to.unwrap().to_rfc3339(), "2024-01-02T15:45:59.999999Z");
}

#[test]
fn date_ranges_include_both_ends() {
    let r = ok("start_date=2024-01-02&end_date=2024-01-03")
        .time_window(NOW)
        .unwrap();
    assert_eq!(r.from.unwrap().to_rfc3339(), "2024-01-02T05:00:00Z");
    assert_eq!(r.to.unwrap().to_rfc3339(), "2024-01-04T04:59:59.999999Z");
    let d = p(DAILY, "start_date=2024-01-02&end_date=2024-01-03")
        .unwrap()
        .date_window(NaiveDate::default())
        .unwrap();
    assert_eq!(
        (d.from.unwrap().to_string(), d.to.unwrap().to_string()),
        ("2024-01-02".into(), "2024-01-03".into())
    );
}

#[test]
fn before_selects_strictly_older_rows() {
    let r = ok("before=2024-03-08T15:00:00Z").time_window(NOW).unwrap();
    assert_eq!(
        (r.from, r.to.unwrap().to_rfc3339()),
        (None, "2024-03-08T14:59:59.999999Z".into())
    );
    let r = ok("before=2024-03-08T10:00:00%2B05:00")
        .time_window(NOW)
        .unwrap();
    assert_eq!(r.to.unwrap().to_rfc3339(), "2024-03-08T04:59:59.999999Z");
    // Finer than a microsecond: a row at 15:00:00.000000 is still strictly older.
    let r = ok("before=2024-03-08T15:00:00.0000001Z")
        .time_window(NOW)
        .unwrap();
    assert_eq!(r.to.unwrap().to_rfc3339(), "2024-03-08T15:00:00Z");
    let r = ok("before=2024-03-08T15:00:00.000001999Z")
        .time_window(NOW)
        .unwrap();
    assert_eq!(r.to.unwrap().to_rfc3339(), "2024-03-08T15:00:00.000001Z");
    let d = p(DAILY, "before=2024-03-08")
        .unwrap()
        .date_window(NaiveDate::default())
        .unwrap();
    assert_eq!(
        (d.from, d.to.unwrap().to_string()),
        (None, "2024-03-07".into())
    );
}

#[test]
fn a_default_lookback_applies_only_without_another_window() {
    let a = p(REALTIME_ANALYTICS, "").unwrap();
    let r = a.time_window(NOW).unwrap();
    assert_eq!(r.from, Some(NOW.add_micros(-30 * 60_000_000)));
    let r = p(REALTIME_ANALYTICS, "date=2024-03-08")
        .unwrap()
        .time_window(NOW)
        .unwrap();
    assert_eq!(r.from.unwrap().to_rfc3339(), "2024-03-08T05:00:00Z");
    let r = ok("").time_window(NOW).unwrap();
    assert_eq!(r, TimeRange::default(), "no default: everything");
}

#[test]
fn bad_values_name_their_parameter() {
    for (q, want) in [
        ("limit=0", (422, "limit")),
        ("limit=abc", (422, "limit")),
        ("limit=99999", (422, "limit")),
        ("date=2024-13-01", (422, "date")),
        ("date=2024-3-8", (422, "date")),
        ("date=24-03-08", (422, "date")),
        ("start_date=2024-03-8", (422, "start_date")),
        ("date=2024/03/08", (422, "date")),
        ("date=-5000-01-01", (422, "date")),
        ("date=+12345-01-01", (422, "date")),
        ("start_date=1799-12-31", (422, "start_date")),
        ("date=2024-01-01&start_time=25:00", (422, "start_time")),
        ("date=2024-03-10&start_time=02:30", (422, "start_time")),
        (
            "date=2024-01-02&start_time=22:00&end_time=21:00",
            (422, "end_time"),
        ),
        (
            "start_date=2024-01-05&end_date=2024-01-01",
            (422, "end_date"),
        ),
        ("format=xml", (422, "format")),
        ("before=yesterday", (422, "before")),
        ("before=-5000-01-01T00:00:00Z", (422, "before")),
        ("before=2024-03-08", (422, "before")),
    ] {
        let (status, name) = refused(INTRADAY, q);
        assert_eq!((status, name.as_str()), want, "{q}");
    }
    assert_eq!(refused(INTRADAY, "interval=1day").0, 400);
    assert_eq!(refused(INTRADAY, "interval=7m").0, 400);
    assert!(
        matches!(
            p(LAST, "").unwrap().int("limit"),
            Err(ApiError::Undeclared("limit"))
        ),
        "the route declares no limit: a defect of the table, not of the request"
    );
    assert!(matches!(
        Args::parse(LAST, [("symbol", "AAPL"), ("count", "0")], ""),
        Err(ApiError::Validation(f)) if f.name == "count" && f.location == "path"
    ));
    assert!(matches!(
        Args::parse(LAST, [("symbol", "A B")], ""),
        Err(ApiError::Validation(f)) if f.name == "symbol"
    ));
}

#[test]
fn unknown_repeated_and_conflicting_parameters_are_refused_by_name() {
    for (q, name) in [
        ("limitt=5", "limitt"),
        ("cachebuster=1", "cachebuster"),
        ("token=x", "token"),
        ("limit=1&limit=2", "limit"),
        ("limit=&limit=5", "limit"),
        ("limit=5&limit=", "limit"),
        ("interval=1m&interval=5m", "interval"),
        ("start_time=10:00", "start_time"),
        ("end_time=10:00", "end_time"),
        ("date=2024-03-08&last_minutes=5", "last_minutes"),
        ("last_minutes=5&date=2024-03-08", "date"),
        ("date=2024-03-08&start_date=2024-03-01", "start_date"),
        ("last_minutes=5&end_date=2024-03-01", "end_date"),
        (
            "before=2024-03-08T15:00:00Z&limit=5&date=2024-03-08",
            "date",
        ),
        (
            "start_date=2024-03-01&before=2024-03-08T15:00:00Z",
            "before",
        ),
    ] {
        assert_eq!(refused(INTRADAY, q), (422, name.to_owned()), "{q}");
    }
    assert_eq!(
        refused(DAILY, "last_days=5&before=2024-03-08"),
        (422, "before".into())
    );
}

#[test]
fn indicators_repeat_or_come_comma_separated_and_unknown_ones_get_the_reference_message() {
    let a = p(
        REALTIME_ANALYTICS,
        "indicators=tick_rsi_14,bb_position&indicators=price",
    )
    .unwrap();
    assert_eq!(
        a.indicators().unwrap(),
        ["tick_rsi_14", "bb_position", "price"]
    );
    assert_eq!(
        p(REALTIME_ANALYTICS, "").unwrap().indicators().unwrap(),
        ["tick_rsi_14"],
        "the route's default"
    );
    match p(REALTIME_ANALYTICS, "indicators=rsi_14") {
        Err(ApiError::BadRequest(m)) => {
            assert!(m.starts_with("Invalid real-time indicators: ['rsi_14']"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn spellings_of_one_request_share_a_cache_key() {
    let key = |q: &str| ok(q).cache_key("/r");
    assert_eq!(key("limit=05&interval=5min"), key("interval=5m&limit=5"));
    assert_eq!(key(""), "/r?symbol=AAPL");
    assert_ne!(
        key("end_time=10:05&date=2024-03-08"),
        key("end_time=10:05:00&date=2024-03-08")
    );
    assert_eq!(
        key("date="),
        key(""),
        "an empty value is the parameter left out"
    );
}

#[test]
fn intervals_parse_every_spelling_and_report_the_canonical_name() {
    for raw in ["1m", "1min", "1", "1MIN"] {
        assert_eq!(
            ok(&format!("interval={raw}")).interval().unwrap(),
            Some(Interval::M1)
        );
    }
    assert_eq!(
        ok("").interval().unwrap(),
        Some(Interval::M5),
        "the default"
    );
}
