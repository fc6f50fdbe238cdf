//! JSON and CSV answers in the reference's shapes, with numbers as numbers.
//!
//! A list is `{symbol, [interval], [indicators], [count], [requested_count], timezone_note,
//! [message], data}` ([`Listing`]); a CSV answer has the JSON rows' keys as its header, in
//! the JSON order (taken from the rows' own serialisation, [`key_order`]), and a header even
//! when there are no rows.

use actix_web::HttpResponse;
use serde::Serialize;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

/// A list or single-row answer of a series route. Which optional keys are present is
/// decided by the route (`series::Envelope`), the same rule the OpenAPI document follows.
#[derive(Serialize)]
pub struct Listing<'a, R> {
    pub symbol: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub indicators: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_count: Option<i64>,
    pub timezone_note: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub data: Data<'a, R>,
}

/// Rows, or the one row of a `/latest` answer.
#[derive(Serialize)]
#[serde(untagged)]
pub enum Data<'a, R> {
    Many(&'a [R]),
    One(&'a R),
}

/// A JSON answer.
pub fn json<T: Serialize>(body: &T) -> HttpResponse {
    HttpResponse::Ok().json(body)
}

/// A CSV answer of `rows` under `header` (the rows' [`key_order`], known also when there
/// are no rows), named `filename`.csv.
pub fn csv<R: Serialize>(rows: &[R], header: &[String], filename: &str) -> HttpResponse {
    let mut w = csv::Writer::from_writer(Vec::new());
    // Writing to a Vec cannot fail; the unwraps below rely on that.
    w.write_record(header).unwrap();
    for row in rows {
        let cells = entries(row);
        w.write_record(header.iter().map(|column| {
            cells
                .iter()
                .find(|(k, _)| k == column)
                .map_or_else(String::new, |(_, v)| cell(v))
        }))
        .unwrap();
    }
    let safe: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename={safe}.csv"),
        ))
        .body(w.into_inner().unwrap())
}

/// A CSV cell: empty for null, the shortest round-trip text for numbers.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_f64() => n
            .as_f64()
            .map_or_else(|| n.to_string(), |f| format!("{f:?}")),
        other => other.to_string(),
    }
}

/// The keys of `row`'s JSON object, in serialisation order.
pub fn key_order<R: Serialize>(row: &R) -> Vec<String> {
    entries(row).into_iter().map(|(k, _)| k).collect()
}

/// `row`'s JSON object as ordered pairs (serde_json's `Map` would sort them).
fn entries<R: Serialize>(row: &R) -> Vec<(String, Value)> {
    // unwrap: rows are plain data (strings, finite numbers), always serialisable, and
    // what serde_json writes it reads back.
    let text = serde_json::to_vec(row).unwrap();
    serde_json::from_slice::<Ordered>(&text).unwrap().0
}

/// A JSON object read as ordered pairs.
struct Ordered(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Pairs;
        impl<'de> Visitor<'de> for Pairs {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = map.next_key::<String>()? {
                    out.push((k, map.next_value::<Value>()?));
                }
                Ok(Ordered(out))
            }
            fn visit_unit<E>(self) -> Result<Ordered, E> {
                Ok(Ordered(Vec::new()))
            }
        }
        d.deserialize_any(Pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Row {
        timestamp: &'static str,
        close: f64,
        trades: i64,
        vwap: Option<f64>,
    }

    async fn body(resp: HttpResponse) -> String {
        let bytes = actix_web::body::to_bytes(resp.into_body()).await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[actix_rt::test]
    async fn csv_columns_follow_the_json_order_and_an_empty_answer_keeps_its_header() {
        let template = Row {
            timestamp: "",
            close: 0.0,
            trades: 0,
            vwap: None,
        };
        let rows = [Row {
            timestamp: "2024-03-08T15:00:00Z",
            close: 0.1 + 0.2,
            trades: 3,
            vwap: None,
        }];
        let header = key_order(&template);
        assert_eq!(
            body(csv(&rows, &header, "x")).await,
            "timestamp,close,trades,vwap\n2024-03-08T15:00:00Z,0.30000000000000004,3,\n"
        );
        assert_eq!(
            body(csv(&[] as &[Row], &header, "x")).await,
            "timestamp,close,trades,vwap\n"
        );
    }

    #[test]
    fn csv_file_names_keep_to_safe_characters() {
        let resp = csv(&[] as &[Row], &[], "prices_EUR/USD:X");
        assert_eq!(
            resp.headers().get("content-disposition").unwrap(),
            "attachment; filename=prices_EUR_USD_X.csv"
        );
    }
}
