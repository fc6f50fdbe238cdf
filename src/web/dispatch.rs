//! Serving the route table: each route of [`ROUTES`] is one actix resource wrapped by
//! [`guard`], so the token check and the metrics label are decided on the route the router
//! matched, whatever spelling of the path reached it (percent-encoding, case of the
//! symbol), for REST and WebSocket alike. [`dispatch`] validates the parameters, then
//! answers from the cache or the handler. Other methods on a route's path get a 405 with
//! `Allow`; paths matching no route a JSON 404.

use crate::web::args::Args;
use crate::web::errors::ApiError;
use crate::web::params::Kind;
use crate::web::routes::{Call, Protection, ROUTES, Reply, Route};
use crate::web::{AppState, cache};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, ResponseError, web};

/// The route template a request matched, for the metrics (absent: `unmatched`).
#[derive(Debug, Clone, Copy)]
pub struct Endpoint(pub &'static str);

/// Path prefixes registered as actix scopes: the router then matches a prefix before the
/// few routes under it, instead of trying every route in turn.
const SCOPES: [&str; 4] = [
    "/api/v2/realtime",
    "/api/v2/intraday",
    "/api/v2/historical",
    "/ws",
];

/// Registers every route of [`ROUTES`], and the JSON 404 for everything else.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let scoped = |route: &Route| {
        SCOPES
            .iter()
            .find(|p| route.path.starts_with(&format!("{p}/")))
    };
    for prefix in SCOPES {
        let mut scope = web::scope(prefix).default_service(web::to(not_found));
        for route in ROUTES.iter().filter(|r| scoped(r) == Some(&prefix)) {
            scope = scope.service(resource(route, &route.path[prefix.len()..]));
        }
        cfg.service(scope);
    }
    for route in ROUTES.iter().filter(|r| scoped(r).is_none()) {
        cfg.service(resource(route, route.path));
    }
    cfg.default_service(web::to(not_found));
}

/// The actix resource of `route` at `path` (its path within its scope).
fn resource(
    route: &'static Route,
    path: &str,
) -> actix_web::Resource<
    impl actix_web::dev::ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let call = move |req: HttpRequest, payload: web::Payload, state: web::Data<AppState>| {
        dispatch(route, req, payload, state)
    };
    web::resource(path)
        .route(web::get().to(call))
        .route(web::head().to(call))
        .default_service(web::to(|| async {
            Err::<HttpResponse, _>(ApiError::MethodNotAllowed("GET, HEAD"))
        }))
        .wrap_fn(move |req, srv| {
            use futures_util::future::{Either, ready};
            if guard(route, &req) {
                Either::Left(srv.call(req))
            } else {
                // An answer, not an error: the metrics still see the route.
                let refused = ApiError::Unauthorized.error_response();
                Either::Right(ready(Ok(req.into_response(refused))))
            }
        })
}

/// Labels `req` with its route and tells whether it may pass: open routes always, the
/// others with the token when one is set (the `Authorization: Bearer` header, or `?token=`
/// where the route declares it: WebSockets, which browsers cannot give headers).
fn guard(route: &'static Route, req: &ServiceRequest) -> bool {
    req.extensions_mut().insert(Endpoint(route.path));
    let token = req
        .app_data::<web::Data<AppState>>()
        .and_then(|s| s.access.token.as_deref());
    let Some(token) = token.filter(|_| route.access == Protection::Token) else {
        return true;
    };
    let header = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_owned());
    let query = route
        .params
        .iter()
        .any(|p| p.kind == Kind::Token)
        .then(|| {
            serde_urlencoded::from_str::<Vec<(String, String)>>(req.query_string())
                .ok()
                .and_then(|q| q.into_iter().find(|(k, _)| k == "token").map(|(_, v)| v))
        })
        .flatten();
    [header, query]
        .iter()
        .flatten()
        .any(|given| same_secret(given.as_bytes(), token.as_bytes()))
}

/// Compares secrets in time independent of where they first differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Validates the request against the route's parameters, then answers it from the cache
/// or the handler (keeping a cacheable answer).
async fn dispatch(
    route: &'static Route,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Reply {
    // Decoded as `web::Path` decodes them (`%2F` included); most need no decoding.
    let segments: Vec<(&str, std::borrow::Cow<'_, str>)> = req
        .match_info()
        .iter()
        .map(|(name, raw)| {
            (
                name,
                percent_encoding::percent_decode_str(raw).decode_utf8_lossy(),
            )
        })
        .collect();
    let args = Args::parse(
        route.params,
        segments.iter().map(|(k, v)| (*k, v.as_ref())),
        req.query_string(),
    )?;
    drop(segments);
    let cache = state.cache.clone();
    let kind = route.reads().filter(|_| cache.enabled());
    let call = Call {
        req,
        payload,
        state,
        route,
        args,
    };
    let Some(kind) = kind else {
        return (route.handler)(call).await;
    };
    let key = call.args.cache_key(route.path);
    // The generation is read before the data: a write racing the read leaves the entry
    // stale-marked, never a stale entry marked current.
    let generation = call.state.store.generations().get(kind);
    if let Some(kept) = cache.get(&key, generation) {
        let mut res = HttpResponse::Ok();
        if let Some(ct) = kept.content_type {
            res.insert_header((CONTENT_TYPE, ct));
        }
        if let Some(cd) = kept.disposition {
            res.insert_header((CONTENT_DISPOSITION, cd));
        }
        return Ok(res.body(kept.body));
    }
    let res = (route.handler)(call).await?;
    Ok(keep(&cache, &key, generation, res))
}

/// Keeps `res` when it is a complete `200` answer small enough, and returns it.
fn keep(
    cache: &cache::ResponseCache,
    key: &str,
    generation: u64,
    res: HttpResponse,
) -> HttpResponse {
    use actix_web::body::{BodySize, BoxBody, MessageBody};
    if res.status() != actix_web::http::StatusCode::OK
        || !matches!(res.body().size(), BodySize::Sized(n) if n <= cache::MAX_BODY as u64)
    {
        return res;
    }
    let content_type = res.headers().get(CONTENT_TYPE).cloned();
    let disposition = res.headers().get(CONTENT_DISPOSITION).cloned();
    let (res, body) = res.into_parts();
    match body.try_into_bytes() {
        Ok(body) => {
            cache.put(
                key,
                generation,
                cache::Kept {
                    content_type,
                    disposition,
                    body: body.clone(),
                },
            );
            res.set_body(BoxBody::new(body))
        }
        // Not an in-memory body after all: pass it on untouched.
        Err(body) => res.set_body(body),
    }
}

/// The answer to paths that match no route.
async fn not_found() -> HttpResponse {
    ApiError::NotFound("Not Found: no such route (GET / lists them)".into()).error_response()
}

/// Labels a response for the metrics: the matched route's template, or `unmatched`.
pub fn endpoint_of<B>(res: &ServiceResponse<B>) -> &'static str {
    res.request()
        .extensions()
        .get::<Endpoint>()
        .map_or(crate::metrics::UNMATCHED, |e| e.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"s3cret", b"s3cret"));
        assert!(!same_secret(b"s3cre", b"s3cret"));
        assert!(!same_secret(b"s3cres", b"s3cret"));
        assert!(!same_secret(b"", b"s3cret"));
    }
}
