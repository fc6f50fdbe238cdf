//! `ApiError`: every way a request can fail, mapped to a status in one place. Bad input is
//! always a 4xx naming the parameter; a store failure is a 503 that says what failed without
//! the driver's text (the log has the whole chain). Every error answer has a JSON body.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

/// One invalid parameter, reported FastAPI-style.
#[derive(Debug)]
pub struct FieldError {
    /// `query` or `path`.
    pub location: &'static str,
    pub name: String,
    /// Machine-readable kind (`int_parsing`, `greater_than_equal`, …).
    pub kind: &'static str,
    pub message: String,
    pub input: String,
    /// The violated bound, where there is one.
    pub ctx: Option<serde_json::Value>,
}

/// Errors of the REST routes.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A parameter has the wrong type or is out of bounds (FastAPI-style 422).
    #[error("invalid {} parameter {}: {}", .0.location, .0.name, .0.message)]
    Validation(Box<FieldError>),
    /// A parameter is well-formed but not acceptable (unknown interval or indicator).
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// The path exists, the method does not (`Allow` lists the ones that do).
    #[error("method not allowed; allowed: {0}")]
    MethodNotAllowed(&'static str),
    /// The store failed or timed out (logged with its chain; clients see no driver text).
    #[error("database unavailable")]
    Store(#[from] anyhow::Error),
    /// A handler asked for a parameter its route does not declare: a defect of the route
    /// table, found by the tests that call every route.
    #[error("internal error")]
    Undeclared(&'static str),
}

impl ApiError {
    /// A 422 for query parameter `name`.
    pub fn query(name: &str, kind: &'static str, message: impl Into<String>, input: &str) -> Self {
        Self::field("query", name, kind, message.into(), input)
    }

    /// A 422 for path parameter `name`.
    pub fn path(name: &str, kind: &'static str, message: impl Into<String>, input: &str) -> Self {
        Self::field("path", name, kind, message.into(), input)
    }

    fn field(
        location: &'static str,
        name: &str,
        kind: &'static str,
        message: String,
        input: &str,
    ) -> Self {
        Self::Validation(Box::new(FieldError {
            location,
            name: name.to_owned(),
            kind,
            message,
            input: input.to_owned(),
            ctx: None,
        }))
    }

    /// Adds FastAPI's `ctx` (e.g. the violated bound).
    pub fn with_ctx(mut self, value: serde_json::Value) -> Self {
        if let Self::Validation(field) = &mut self {
            field.ctx = Some(value);
        }
        self
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Undeclared(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let body = match self {
            Self::Validation(f) => {
                let mut item = json!({ "type": f.kind, "loc": [f.location, f.name], "msg": f.message, "input": f.input });
                if let Some(ctx) = &f.ctx {
                    item["ctx"] = ctx.clone();
                }
                json!({ "detail": [item] })
            }
            Self::Store(e) => {
                tracing::error!(error = %format!("{e:#}"), "store query failed");
                json!({ "detail": self.to_string() })
            }
            Self::Undeclared(name) => {
                tracing::error!(
                    parameter = name,
                    "a handler asked for a parameter its route does not declare"
                );
                json!({ "detail": self.to_string() })
            }
            other => json!({ "detail": other.to_string() }),
        };
        let mut resp = HttpResponse::build(self.status_code());
        match self {
            Self::Unauthorized => {
                resp.insert_header(("WWW-Authenticate", "Bearer"));
            }
            Self::MethodNotAllowed(allow) => {
                resp.insert_header(("Allow", *allow));
            }
            _ => {}
        }
        resp.json(body)
    }
}
