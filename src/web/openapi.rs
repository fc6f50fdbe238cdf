//! `/openapi.json`: the OpenAPI 3.1 document, generated from the route table
//! ([`crate::web::routes::ROUTES`]): each route's parameters from the same [`Param`]s its
//! requests are validated against, each answer from the row and answer types the handlers
//! serialise (their `utoipa::ToSchema` derives, and [`IndicatorRow::schema`] for rows whose
//! indicator columns depend on the request). Nothing in it is written twice.

use crate::domain::symbol::MAX_SYMBOL_LEN;
use crate::web::params::{EARLIEST_DATE, Kind, LATEST_DATE, Location, Param};
use crate::web::routes::{Answer, Call, Protection, ROUTES, Reply, Route};
use crate::web::rows::{DailyBar, IndicatorRow, IntradayBar, TickOut};
use crate::web::series::{Series, SeriesSpec, Shape};
use actix_web::HttpResponse;
use futures_util::future::LocalBoxFuture;
use serde_json::json;
use std::sync::LazyLock;
use utoipa::ToSchema;
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, ParameterStyle, PathItem,
};
use utoipa::openapi::schema::{
    ArrayBuilder, ComponentsBuilder, KnownFormat, ObjectBuilder, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{
    ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, Ref, RefOr, Required,
    ResponseBuilder, Schema,
};

/// A schema with its name, and the named schemas it refers to.
pub struct Named {
    pub name: String,
    pub schema: RefOr<Schema>,
    pub dependencies: Vec<(String, RefOr<Schema>)>,
}

/// The [`Named`] schema of an answer type.
pub fn named<T: ToSchema>() -> Named {
    let mut dependencies = Vec::new();
    T::schemas(&mut dependencies);
    Named {
        name: T::name().into_owned(),
        schema: T::schema(),
        dependencies,
    }
}

/// The document, rendered once.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    // unwrap: the document is plain data; serialising it cannot fail.
    serde_json::to_string(&document()).unwrap()
});

/// `GET /openapi.json`.
pub fn serve(_: Call) -> LocalBoxFuture<'static, Reply> {
    Box::pin(async {
        Ok(HttpResponse::Ok()
            .content_type("application/json")
            .body(DOCUMENT.as_str()))
    })
}

const DESCRIPTION: &str = "Real-time and historical market data: trades, OHLCV bars and \
TA-Lib-identical indicators.\n\n\
* With `API_TOKEN` set, `/api/*` needs `Authorization: Bearer <token>` and `/ws/*` the \
header or `?token=`; `/`, `/health`, `/metrics` and the docs stay open.\n\
* Dates and times are New York time. Rows come newest first; `before` pages back.\n\
* Intervals are spelled `1m 5m 15m 30m 1h 4h 1d` in every answer (`1min`, `5min`, \
minute counts… are still accepted in requests).\n\
* Unknown or repeated parameters and conflicting windows are refused with a 422 naming \
the parameter.";

/// Builds the document from the route table.
pub fn document() -> OpenApi {
    let mut components = ComponentsBuilder::new()
        .security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        )
        .security_scheme(
            "token",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::new("token"))),
        )
        .schema("Detail", detail_schema())
        .schema("ValidationError", validation_schema());
    for row in [
        named::<TickOut>(),
        named::<IntradayBar>(),
        named::<DailyBar>(),
    ] {
        components = components.schema(row.name, row.schema);
    }
    for series in [
        Series::TickMetrics,
        Series::IntradayAnalytics,
        Series::DailyAnalytics,
    ] {
        let (name, schema) = indicator_row(series);
        components = components.schema(name, schema);
    }
    let mut paths = PathsBuilder::new();
    for route in ROUTES {
        let (operation, schemas) = operation(route);
        for n in schemas {
            components = components
                .schemas_from_iter(n.dependencies)
                .schema(n.name, n.schema);
        }
        paths = paths.path(route.path, PathItem::new(HttpMethod::Get, operation));
    }
    let tags = [
        ("realtime", "Trades and realtime tick metrics"),
        ("intraday", "Intraday bars and their indicators"),
        ("historical", "Daily session bars and their indicators"),
        ("catalog", "What is stored and what this instance builds"),
        (
            "streams",
            "WebSockets (upgrade with GET; the first message confirms)",
        ),
        ("service", "Health, metrics, this document and its pages"),
    ];
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("tickflow")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(DESCRIPTION)),
        )
        .paths(paths)
        .components(Some(components.build()))
        .tags(Some(tags.map(|(name, about)| {
            TagBuilder::new()
                .name(name)
                .description(Some(about))
                .build()
        })))
        .build()
}

/// The operation of `route`, and the named schemas it refers to.
fn operation(route: &Route) -> (utoipa::openapi::path::Operation, Vec<Named>) {
    let mut op = OperationBuilder::new()
        .operation_id(Some(route.operation_id))
        .tag(route.tag)
        .summary(Some(route.summary));
    for p in route.params.iter().filter(|p| p.kind != Kind::Token) {
        op = op.parameter(parameter(p));
    }
    if route.access == Protection::Token {
        op = op.security(SecurityRequirement::new("bearer", Vec::<String>::new()));
        if route.params.iter().any(|p| p.kind == Kind::Token) {
            op = op.security(SecurityRequirement::new("token", Vec::<String>::new()));
        }
    }
    let mut named = Vec::new();
    let ok = match &route.answer {
        Answer::Series(spec) => series_answer(route, spec),
        Answer::Json { schema, csv, .. } => {
            let n = schema();
            let mut r = ResponseBuilder::new()
                .description("OK")
                .content("application/json", content(reference(&n.name)));
            if *csv {
                r = r.content("text/csv", csv_content("one row per item of the JSON list"));
            }
            named.push(n);
            r
        }
        Answer::Text(media) => media.iter().fold(ResponseBuilder::new().description("OK"), |r, m| {
            let schema: RefOr<Schema> = if *m == "application/json" {
                ObjectBuilder::new().schema_type(Type::Object).into()
            } else {
                string(None).into()
            };
            r.content(*m, content(schema))
        }),
        Answer::Html { .. } => ResponseBuilder::new()
            .description("The page")
            .content("text/html", content(string(None))),
        Answer::WebSocket => ResponseBuilder::new()
            .description("Switching Protocols: the WebSocket is open; its first message confirms the subscription"),
    };
    if matches!(route.answer, Answer::Html { redirects: true }) {
        op = op.response(
            "308",
            ResponseBuilder::new()
                .description("The same page at its canonical address (`Location`): other spellings of its parameters redirect there"),
        );
    }
    op = if matches!(route.answer, Answer::WebSocket) {
        op.response("101", ok).response(
            "400",
            error("Not a WebSocket upgrade request, or an unknown interval"),
        )
    } else {
        op.response("200", ok)
    };
    if route.operation_id == "health" {
        let same = reference(&named[0].name);
        op = op.response(
            "503",
            ResponseBuilder::new()
                .description("Degraded: Kafka or the store does not answer (same body)")
                .content("application/json", content(same)),
        );
    }
    let queries = route.params.iter().any(|p| p.location == Location::Query);
    if queries && !matches!(route.answer, Answer::WebSocket) {
        op = op.response(
            "400",
            error("Malformed query string, or an unknown interval or indicator"),
        );
    }
    if route.access == Protection::Token {
        op = op.response("401", error("Missing or wrong token"));
    }
    let not_found = match &route.answer {
        Answer::Series(s) => s.shape != Shape::List,
        _ => route
            .params
            .iter()
            .any(|p| matches!(p.kind, Kind::Asset { .. })),
    };
    if not_found {
        op = op.response("404", error("Nothing stored (or no such file)"));
    }
    // Every route refuses query parameters it does not take (`?cachebuster=1` on /health
    // too): a 422 is always possible.
    op = op.response(
        "422",
        ResponseBuilder::new()
            .description("A parameter is unknown, repeated, out of bounds or conflicts with another; `loc` names it")
            .content("application/json", content(reference("ValidationError"))),
    );
    if route.reads().is_some() {
        op = op.response("503", error("The store is unavailable or timed out"));
    }
    (op.build(), named)
}

/// The `200` of a series route: its envelope in JSON, or CSV.
fn series_answer(route: &Route, spec: &SeriesSpec) -> ResponseBuilder {
    let e = spec.envelope(route.params);
    let row = reference(&row_name(spec.series));
    let data: RefOr<Schema> = if spec.shape == Shape::Latest {
        row
    } else {
        ArrayBuilder::new().items(row).into()
    };
    let mut o = ObjectBuilder::new()
        .schema_type(Type::Object)
        .property("symbol", string(None))
        .required("symbol");
    if e.interval {
        o = o
            .property(
                "interval",
                string(None).description(Some("Canonical interval name")),
            )
            .required("interval");
    }
    if e.indicators {
        o = o
            .property("indicators", ArrayBuilder::new().items(string(None)))
            .required("indicators");
    }
    if e.count {
        o = o
            .property("count", ObjectBuilder::new().schema_type(Type::Integer))
            .required("count");
    }
    if e.requested_count {
        o = o
            .property(
                "requested_count",
                ObjectBuilder::new().schema_type(Type::Integer),
            )
            .required("requested_count");
    }
    o = o
        .property("timezone_note", string(None))
        .required("timezone_note");
    if e.message {
        o = o.property(
            "message",
            string(None).description(Some("Present when there are no rows")),
        );
    }
    o = o.property("data", data).required("data");
    let columns = spec.series.columns(&[]).join(",");
    let columns = if spec.series.indicator_names().is_empty() {
        format!("Columns: {columns}")
    } else {
        format!("Columns: {columns}, with the requested indicators after price, in the order asked")
    };
    ResponseBuilder::new()
        .description("OK")
        .content("application/json", content(o))
        .content("text/csv", csv_content(&columns))
}

fn row_name(series: Series) -> String {
    match series {
        Series::Trades => TickOut::name().into_owned(),
        Series::IntradayBars => IntradayBar::name().into_owned(),
        Series::DailyBars => DailyBar::name().into_owned(),
        other => indicator_row(other).0,
    }
}

/// The named schema of a series' indicator rows.
fn indicator_row(series: Series) -> (String, RefOr<Schema>) {
    let (name, about) = match series {
        Series::TickMetrics => (
            "TickMetricsRow",
            "Realtime tick metrics of one published trade",
        ),
        Series::DailyAnalytics => ("DailyAnalyticsRow", "Indicators of one daily session bar"),
        _ => ("IntradayAnalyticsRow", "Indicators of one intraday bar"),
    };
    (
        name.to_owned(),
        IndicatorRow::schema(series.daily(), series.indicator_names(), about),
    )
}

/// A documented parameter: its schema comes from its [`Kind`], the one validation uses.
fn parameter(p: &Param) -> utoipa::openapi::path::Parameter {
    let mut b = ParameterBuilder::new()
        .name(p.name)
        .parameter_in(match p.location {
            Location::Path => ParameterIn::Path,
            Location::Query => ParameterIn::Query,
        })
        .required(if p.location == Location::Path {
            Required::True
        } else {
            Required::False
        })
        .description(Some(p.description))
        .schema(Some(param_schema(p)));
    if matches!(p.kind, Kind::Indicators { .. }) {
        b = b.style(Some(ParameterStyle::Form)).explode(Some(true));
    }
    b.build()
}

/// The schema of a parameter's values.
pub fn param_schema(p: &Param) -> RefOr<Schema> {
    let int = |min: i64, max: i64, default: Option<i64>| {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(min))
            .maximum(Some(max))
            .default(default.map(Into::into))
            .into()
    };
    let bounded_date = |format| {
        string(Some(format))
            .description(Some(format!("Between {EARLIEST_DATE} and {LATEST_DATE}")))
            .into()
    };
    let choice = |names: Vec<&str>| string(None).enum_values(Some(names));
    match p.kind {
        Kind::Symbol => string(None)
            .pattern(Some(format!(
                r"^\s*[A-Za-z0-9.\-^=/:]{{1,{MAX_SYMBOL_LEN}}}\s*$"
            )))
            .into(),
        Kind::Count { max } => int(1, max, None),
        Kind::Limit { default, max } => int(1, max, Some(default)),
        // Not a schema `default`: generated clients would always send it, and it would then
        // conflict with any other window. It applies only when no other window is given.
        Kind::Lookback {
            max,
            default: Some(n),
            ..
        } => ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1))
            .maximum(Some(max))
            .description(Some(format!("{n} when no other window is given")))
            .into(),
        Kind::Lookback { max, .. } => int(1, max, None),
        Kind::Date | Kind::Before { daily: true } => bounded_date(KnownFormat::Date),
        Kind::Before { daily: false } => bounded_date(KnownFormat::DateTime),
        Kind::Time => string(None)
            .pattern(Some(r"^\d{1,2}:\d{2}(:\d{2})?$"))
            .examples([json!("09:30")])
            .into(),
        Kind::Interval { set, default } => choice(set.names()).default(Some(json!(default))).into(),
        Kind::Indicators { set, default } => ArrayBuilder::new()
            .items(choice(set.names()))
            .default(Some(json!(default)))
            .into(),
        Kind::Format => choice(vec!["json", "csv"])
            .default(Some(json!("json")))
            .into(),
        Kind::Token | Kind::Text => string(None).into(),
        Kind::Asset { files } => choice(files.to_vec()).into(),
    }
}

fn string(format: Option<KnownFormat>) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(format.map(SchemaFormat::KnownFormat))
}

fn reference(name: &str) -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(name))
}

fn content(schema: impl Into<RefOr<Schema>>) -> utoipa::openapi::Content {
    ContentBuilder::new().schema(Some(schema)).build()
}

fn csv_content(columns: &str) -> utoipa::openapi::Content {
    content(string(None).description(Some(format!(
        "CSV with a header line (also when there are no rows). {columns}."
    ))))
}

fn error(about: &str) -> ResponseBuilder {
    ResponseBuilder::new()
        .description(about)
        .content("application/json", content(reference("Detail")))
}

fn detail_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some("An error, said in words (no driver text)"))
        .property("detail", string(None))
        .required("detail")
}

fn validation_schema() -> ObjectBuilder {
    let loc = ArrayBuilder::new().items(
        ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::String, Type::Integer])),
    );
    let item = ObjectBuilder::new()
        .schema_type(Type::Object)
        .property("type", string(None))
        .required("type")
        .property("loc", loc)
        .required("loc")
        .property("msg", string(None))
        .required("msg")
        .property("input", string(None))
        .required("input")
        .property("ctx", ObjectBuilder::new().schema_type(Type::Object));
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some("FastAPI's shape: `loc` is [\"query\"|\"path\", name]"))
        .property("detail", ArrayBuilder::new().items(item))
        .required("detail")
}
