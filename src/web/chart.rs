//! `/chart`: the live candlestick page (candles, volume, indicator overlays and panes, legend,
//! trade tape) and its files, compiled into the binary like the API docs so that the page
//! works with no internet access. The page itself talks only to this instance's REST routes
//! and WebSockets; `assets/chart/README.md` says where each file comes from.

use crate::domain::{Interval, Symbol};
use crate::web::errors::ApiError;
use crate::web::params::{Kind, Location, Param};
use crate::web::routes::{Call, Reply};
use actix_web::HttpResponse;
use actix_web::http::header;
use futures_util::future::LocalBoxFuture;

const CHART_HTML: &str = include_str!("../../assets/chart/chart.html");
const CHART_JS: &[u8] = include_bytes!("../../assets/chart/chart.js");
const BARS_JS: &[u8] = include_bytes!("../../assets/chart/bars.js");
const VIEW_JS: &[u8] = include_bytes!("../../assets/chart/view.js");
const CHART_CSS: &[u8] = include_bytes!("../../assets/chart/chart.css");
/// TradingView Lightweight Charts 5.x, vendored unmodified (Apache-2.0).
const LIGHTWEIGHT_CHARTS_JS: &[u8] =
    include_bytes!("../../assets/chart/lightweight-charts.standalone.production.js");

/// The page's policy: its own origin only (WebSockets included), no inline script or style.
/// The page carries the same policy in a `<meta>` (a unit test keeps the two equal), so that
/// a copy of the page saved to disk keeps it too.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'";

/// The query parameters the page reads.
const PAGE_PARAMETERS: [&str; 3] = ["symbol", "interval", "token"];

/// The page's parameters as the route table declares them: refused when unknown or repeated
/// before [`page`] checks their values (and redirects other spellings).
pub const PAGE_PARAMS: [Param; 3] = [
    Param {
        name: "symbol",
        location: Location::Query,
        kind: Kind::Symbol,
        description: "The symbol shown first (other spellings redirect to the upper-case one)",
    },
    Param {
        name: "interval",
        location: Location::Query,
        kind: Kind::Text,
        description: "The interval shown first: 1m 5m 15m 30m 1h 4h 1d (other spellings redirect)",
    },
    Param {
        name: "token",
        location: Location::Query,
        kind: Kind::Text,
        description: "The API token for the page's own requests; the page removes it from the address bar",
    },
];

/// The `{file}` of `/chart/assets/{file}`.
pub const ASSET: Param = Param {
    name: "file",
    location: Location::Path,
    kind: Kind::Asset {
        files: &ASSET_FILES,
    },
    description: "A file of the chart page",
};

/// The names of [`ASSETS`].
const ASSET_FILES: [&str; ASSETS.len()] = {
    let mut names = [""; ASSETS.len()];
    let mut i = 0;
    while i < ASSETS.len() {
        names[i] = ASSETS[i].0;
        i += 1;
    }
    names
};

/// The files under `/chart/assets/`: name, body, content type (RFC 9239's for scripts),
/// browser cache lifetime.
const ASSETS: [(&str, &[u8], &str, &str); 5] = [
    (
        "chart.js",
        CHART_JS,
        "text/javascript; charset=utf-8",
        "no-cache",
    ),
    (
        "bars.js",
        BARS_JS,
        "text/javascript; charset=utf-8",
        "no-cache",
    ),
    (
        "view.js",
        VIEW_JS,
        "text/javascript; charset=utf-8",
        "no-cache",
    ),
    (
        "chart.css",
        CHART_CSS,
        "text/css; charset=utf-8",
        "no-cache",
    ),
    (
        "lightweight-charts.standalone.production.js",
        LIGHTWEIGHT_CHARTS_JS,
        "text/javascript; charset=utf-8",
        // A vendored release changes only with the binary; a day bounds a stale copy.
        "public, max-age=86400",
    ),
];

/// What `/chart` was asked for, validated.
#[derive(Debug, PartialEq, Eq)]
struct PageQuery {
    symbol: Option<Symbol>,
    interval: Option<Interval>,
    token: Option<String>,
    /// Whether the symbol and interval were written as the page writes them (`AAPL`, `1m`).
    canonical: bool,
}

impl PageQuery {
    /// Parses and checks the query string.
    ///
    /// # Errors
    /// A 422 naming the parameter that is unknown, repeated or invalid; a 400 for a query
    /// string that is not `application/x-www-form-urlencoded`.
    fn parse(raw: &str) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw)
            .map_err(|e| ApiError::BadRequest(format!("malformed query string: {e}")))?;
        for (i, (name, value)) in pairs.iter().enumerate() {
            if !PAGE_PARAMETERS.contains(&name.as_str()) {
                return Err(ApiError::query(
                    name,
                    "extra_forbidden",
                    format!(
                        "Unknown parameter; /chart takes {}",
                        PAGE_PARAMETERS.join(", ")
                    ),
                    value,
                ));
            }
            if pairs[..i].iter().any(|(earlier, _)| earlier == name) {
                return Err(ApiError::query(
                    name,
                    "repeated",
                    "Parameter given more than once",
                    value,
                ));
            }
        }
        let value = |name: &str| {
            pairs
                .iter()
                .find(|(k, v)| k == name && !v.is_empty())
                .map(|(_, v)| v.as_str())
        };
        let symbol = value("symbol")
            .map(|raw| {
                Symbol::parse(raw)
                    .map(|s| (s, raw == s.as_str()))
                    .map_err(|e| ApiError::query("symbol", "symbol", e.to_string(), raw))
            })
            .transpose()?;
        let interval = value("interval")
            .map(|raw| {
                raw.parse::<Interval>()
                    .map(|i| (i, raw == i.as_str()))
                    .map_err(|_| {
                        ApiError::query(
                            "interval",
                            "enum",
                            "Input should be one of 1m, 5m, 15m, 30m, 1h, 4h, 1d",
                            raw,
                        )
                    })
            })
            .transpose()?;
        Ok(Self {
            canonical: symbol.is_none_or(|(_, c)| c) && interval.is_none_or(|(_, c)| c),
            symbol: symbol.map(|(s, _)| s),
            interval: interval.map(|(i, _)| i),
            token: value("token").map(str::to_owned),
        })
    }

    /// The same page with the symbol and interval spelt as the page spells them.
    fn canonical_location(&self) -> String {
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        if let Some(symbol) = &self.symbol {
            pairs.push(("symbol", symbol.as_str()));
        }
        if let Some(interval) = self.interval {
            pairs.push(("interval", interval.as_str()));
        }
        if let Some(token) = &self.token {
            pairs.push(("token", token));
        }
        // unwrap: a list of string pairs always encodes.
        let query = serde_urlencoded::to_string(&pairs).unwrap();
        if query.is_empty() {
            "/chart".to_owned()
        } else {
            format!("/chart?{query}")
        }
    }
}

/// `GET /chart?symbol=AAPL&interval=1m`: the page; other spellings (`aapl`, `1min`) are
/// redirected to these, which the page's pickers use.
pub fn page(call: Call) -> LocalBoxFuture<'static, Reply> {
    Box::pin(async move { page_for(call.req.query_string()) })
}

fn page_for(query_string: &str) -> Reply {
    let query = PageQuery::parse(query_string)?;
    if !query.canonical {
        return Ok(HttpResponse::PermanentRedirect()
            .insert_header((header::LOCATION, query.canonical_location()))
            .insert_header((header::REFERRER_POLICY, "no-referrer"))
            .finish());
    }
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        // The address may carry `?token=` until the page's script removes it.
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(CHART_HTML))
}

/// `GET /chart/assets/{file}`: the page's script and style and the charting library.
pub fn asset(call: Call) -> LocalBoxFuture<'static, Reply> {
    Box::pin(async move {
        let file = call.args.text("file").unwrap_or_default();
        match ASSETS.iter().find(|(name, ..)| *name == file) {
            Some((_, body, kind, cache)) => Ok(HttpResponse::Ok()
                .content_type(*kind)
                .insert_header((header::CACHE_CONTROL, *cache))
                .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                .body(*body)),
            None => Err(ApiError::NotFound("no such asset".into())),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(err: ApiError) -> (String, &'static str) {
        match err {
            ApiError::Validation(f) => (f.name, f.kind),
            other => panic!("expected a 422, got {other:?}"),
        }
    }

    #[test]
    fn no_parameters_is_the_default_page() {
        let q = PageQuery::parse("").unwrap();
        assert_eq!((q.symbol, q.interval, q.canonical), (None, None, true));
        assert_eq!(q.canonical_location(), "/chart");
    }

    #[test]
    fn canonical_spellings_are_served_and_others_redirected_to_them() {
        let q = PageQuery::parse("symbol=AAPL&interval=1m").unwrap();
        assert!(q.canonical);
        let q = PageQuery::parse("symbol=aapl&interval=1min&token=s%26cret").unwrap();
        assert!(!q.canonical);
        assert_eq!(
            q.canonical_location(),
            "/chart?symbol=AAPL&interval=1m&token=s%26cret"
        );
        let q = PageQuery::parse("interval=1day").unwrap();
        assert_eq!(q.canonical_location(), "/chart?interval=1d");
    }

    #[test]
    fn an_empty_value_counts_as_absent() {
        let q = PageQuery::parse("symbol=&interval=").unwrap();
        assert_eq!((q.symbol, q.interval, q.canonical), (None, None, true));
    }

    #[test]
    fn bad_unknown_and_repeated_parameters_are_422s_naming_them() {
        assert_eq!(
            field(PageQuery::parse("interval=7m").unwrap_err()),
            ("interval".into(), "enum")
        );
        assert_eq!(
            field(PageQuery::parse("symbol=A%20B").unwrap_err()),
            ("symbol".into(), "symbol")
        );
        assert_eq!(
            field(PageQuery::parse("symbol=AAPL&theme=dark").unwrap_err()),
            ("theme".into(), "extra_forbidden")
        );
        assert_eq!(
            field(PageQuery::parse("symbol=AAPL&symbol=MSFT").unwrap_err()),
            ("symbol".into(), "repeated")
        );
    }

    #[test]
    fn the_page_meta_policy_equals_the_header_policy() {
        assert!(
            CHART_HTML.contains(&format!(
                "http-equiv=\"Content-Security-Policy\" content=\"{CONTENT_SECURITY_POLICY}\""
            )),
            "assets/chart/chart.html and CONTENT_SECURITY_POLICY differ"
        );
    }

    #[test]
    fn everything_the_page_loads_is_one_of_its_assets() {
        let loaded: Vec<&str> = ["src=\"", "<link rel=\"stylesheet\" href=\""]
            .iter()
            .flat_map(|attr| CHART_HTML.split(attr).skip(1))
            .filter_map(|rest| rest.split('"').next())
            .collect();
        assert_eq!(loaded.len(), 3, "{loaded:?}");
        // The page's modules import the others relatively: `from './bars.js'`.
        let imported: Vec<String> = ASSETS
            .iter()
            .filter(|(name, ..)| name.ends_with(".js"))
            .flat_map(|(_, body, ..)| {
                let text = std::str::from_utf8(body).expect("the scripts are UTF-8");
                text.split("from './")
                    .skip(1)
                    .filter_map(|rest| rest.split('\'').next())
                    .map(|file| format!("/chart/assets/{file}"))
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(imported.len(), 2, "{imported:?}");
        for url in loaded
            .into_iter()
            .chain(imported.iter().map(String::as_str))
        {
            let file = url.strip_prefix("/chart/assets/").unwrap_or(url);
            assert!(
                ASSETS.iter().any(|(name, ..)| *name == file),
                "the page loads {url}, which /chart/assets/ does not serve"
            );
        }
    }
}
