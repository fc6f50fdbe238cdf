//! JSON and CSV responses in the reference's shapes, with numbers as numbers.

use crate::web::params::Format;
use actix_web::HttpResponse;
use serde_json::{Map, Value};

/// One output row.
pub type Row = Map<String, Value>;

/// A number, or `null` for an undefined one.
pub fn num(v: Option<f64>) -> Value {
    v.map_or(Value::Null, Value::from)
}

/// The JSON body of a list: metadata keys, then `data`.
#[derive(serde::Serialize)]
struct Listing<'a, T> {
    #[serde(flatten)]
    meta: &'a Row,
    data: &'a [T],
}

/// The JSON body of a single row.
#[derive(serde::Serialize)]
struct Single<'a, T> {
    #[serde(flatten)]
    meta: &'a Row,
    data: &'a T,
}

/// A list response: `meta` keys, then `data`; with `count == 0` a `message` too (one shape
/// whether empty or not). Rows serialise straight into the body (typed rows avoid building
/// a JSON tree per row). CSV: the sorted union of the rows' keys, one line per row.
pub fn list<T: serde::Serialize>(
    format: Format,
    mut meta: Row,
    rows: Vec<T>,
    empty_message: String,
    filename: &str,
) -> HttpResponse {
    match format {
        Format::Csv => csv(&as_rows(&rows), filename),
        Format::Json => {
            if rows.is_empty() {
                meta.insert("message".into(), Value::String(empty_message));
            }
            HttpResponse::Ok().json(Listing {
                meta: &meta,
                data: &rows,
            })
        }
    }
}

/// A single-row response (`/latest`): `{meta…, "data": {row}}`, or a one-row CSV.
pub fn single<T: serde::Serialize>(
    format: Format,
    meta: Row,
    row: T,
    filename: &str,
) -> HttpResponse {
    match format {
        Format::Csv => csv(&as_rows(std::slice::from_ref(&row)), filename),
        Format::Json => HttpResponse::Ok().json(Single {
            meta: &meta,
            data: &row,
        }),
    }
}

fn as_rows<T: serde::Serialize>(rows: &[T]) -> Vec<Row> {
    rows.iter()
        .filter_map(|r| match serde_json::to_value(r) {
            Ok(Value::Object(m)) => Some(m),
            _ => None,
        })
        .collect()
}

fn csv(rows: &[Row], filename: &str) -> HttpResponse {
    let disposition = (
        "Content-Disposition",
        format!("attachment; filename={filename}.csv"),
    );
    if rows.is_empty() {
        return HttpResponse::Ok()
            .content_type("text/csv")
            .insert_header(disposition)
            .body("No data available");
    }
    let mut columns: Vec<&String> = rows.iter().flat_map(|r| r.keys()).collect();
    columns.sort();
    columns.dedup();
    let mut w = csv::Writer::from_writer(Vec::new());
    // Writing to a Vec cannot fail; unwraps below rely on that.
    w.write_record(columns.iter().map(|c| c.as_str())).unwrap();
    for r in rows {
        w.write_record(columns.iter().map(|c| match r.get(*c) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.as_f64().map_or_else(
                || n.to_string(),
                |f| {
                    if n.is_f64() {
                        format!("{f:?}")
                    } else {
                        n.to_string()
                    }
                },
            ),
            Some(other) => other.to_string(),
        }))
        .unwrap();
    }
    HttpResponse::Ok()
        .content_type("text/csv")
        .insert_header(disposition)
        .body(w.into_inner().unwrap())
}

/// Builds a metadata map from pairs.
pub fn meta<const N: usize>(pairs: [(&str, Value); N]) -> Row {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}
