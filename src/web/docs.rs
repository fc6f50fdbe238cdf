//! `/docs` (Swagger UI) and `/redoc` (ReDoc), served from assets compiled into the binary:
//! the pages work with no internet access (no CDN). `assets/docs/README.md` says where the
//! files come from and how to refresh them.

use crate::web::errors::ApiError;
use crate::web::params::{Kind, Location, Param};
use crate::web::routes::{Call, Reply};
use actix_web::HttpResponse;
use futures_util::future::LocalBoxFuture;

const SWAGGER_HTML: &str = include_str!("../../assets/docs/swagger.html");
const REDOC_HTML: &str = include_str!("../../assets/docs/redoc.html");
const SWAGGER_JS: &[u8] = include_bytes!("../../assets/docs/swagger-ui-bundle.js");
const SWAGGER_CSS: &[u8] = include_bytes!("../../assets/docs/swagger-ui.css");
const REDOC_JS: &[u8] = include_bytes!("../../assets/docs/redoc.standalone.js");

/// The `{file}` of `/docs/assets/{file}`: one of the bundled files.
pub const ASSET: Param = Param {
    name: "file",
    location: Location::Path,
    kind: Kind::Asset {
        files: &[
            "swagger-ui-bundle.js",
            "swagger-ui.css",
            "redoc.standalone.js",
        ],
    },
    description: "A bundled file",
};

fn html(page: &'static str) -> LocalBoxFuture<'static, Reply> {
    Box::pin(async move {
        Ok(HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(page))
    })
}

/// `GET /docs`
pub fn swagger(_: Call) -> LocalBoxFuture<'static, Reply> {
    html(SWAGGER_HTML)
}

/// `GET /redoc`
pub fn redoc(_: Call) -> LocalBoxFuture<'static, Reply> {
    html(REDOC_HTML)
}

/// `GET /docs/assets/{file}`: the three bundled files, cached for a day.
pub fn asset(call: Call) -> LocalBoxFuture<'static, Reply> {
    Box::pin(async move {
        let (body, kind): (&'static [u8], &str) = match call.args.text("file") {
            Some("swagger-ui-bundle.js") => (SWAGGER_JS, "text/javascript; charset=utf-8"),
            Some("swagger-ui.css") => (SWAGGER_CSS, "text/css; charset=utf-8"),
            Some("redoc.standalone.js") => (REDOC_JS, "text/javascript; charset=utf-8"),
            _ => return Err(ApiError::NotFound("no such asset".into())),
        };
        Ok(HttpResponse::Ok()
            .content_type(kind)
            .insert_header(("Cache-Control", "public, max-age=86400"))
            .body(body))
    })
}
