//! `/docs` (Swagger UI) and `/redoc` (ReDoc), served from assets compiled into the binary:
//! the pages work with no internet access (no CDN). `assets/docs/README.md` says where the
//! files come from and how to refresh them.

use actix_web::{HttpResponse, web};

const SWAGGER_HTML: &str = include_str!("../../assets/docs/swagger.html");
const REDOC_HTML: &str = include_str!("../../assets/docs/redoc.html");
const SWAGGER_JS: &[u8] = include_bytes!("../../assets/docs/swagger-ui-bundle.js");
const SWAGGER_CSS: &[u8] = include_bytes!("../../assets/docs/swagger-ui.css");
const REDOC_JS: &[u8] = include_bytes!("../../assets/docs/redoc.standalone.js");

/// `GET /docs`
pub async fn swagger() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(SWAGGER_HTML)
}

/// `GET /redoc`
pub async fn redoc() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(REDOC_HTML)
}

/// `GET /docs/assets/{file}`: the three bundled files, cached for a day.
pub async fn asset(file: web::Path<String>) -> HttpResponse {
    let (body, kind): (&'static [u8], &str) = match file.as_str() {
        "swagger-ui-bundle.js" => (SWAGGER_JS, "application/javascript"),
        "swagger-ui.css" => (SWAGGER_CSS, "text/css"),
        "redoc.standalone.js" => (REDOC_JS, "application/javascript"),
        _ => {
            return HttpResponse::NotFound().json(serde_json::json!({ "detail": "no such asset" }));
        }
    };
    HttpResponse::Ok()
        .content_type(kind)
        .insert_header(("Cache-Control", "public, max-age=86400"))
        .body(body)
}
