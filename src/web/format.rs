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

/// A list response: `meta` keys, then `data`; with `count == 0` a `message` too (one shape
/// whether empty or not). CSV: the sorted union of the rows' keys, one line per row.
pub fn list(
    format: Format,
    mut meta: Row,
    rows: Vec<Row>,
    empty_message: String,
    filename: &str,
) -> HttpResponse {
    match format {
        Format::Csv => csv(&rows, filename),
        Format::Json => {
            if rows.is_empty() {
                meta.insert("message".into(), Value::String(empty_message));
            }
            meta.insert(
                "data".into(),
                Value::Array(rows.into_iter().map(Value::Object).collect()),
            );
            HttpResponse::Ok().json(Value::Object(meta))
        }
    }
}

/// A single-row response (`/latest`): `{meta…, "data": {row}}`, or a one-row CSV.
pub fn single(format: Format, mut meta: Row, row: Row, filename: &str) -> HttpResponse {
    match format {
        Format::Csv => csv(&[row], filename),
        Format::Json => {
            meta.insert("data".into(), Value::Object(row));
            HttpResponse::Ok().json(Value::Object(meta))
        }
    }
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
