//! The browser app: pages and assets embedded in the binary, served on the API's origin, and
//! the cookie session behind them (docs/web.md).
//!
//! Every page is the same HTML shell; the page's scripts pick the view from the path. Assets
//! live under `/assets/<set>/…`, where `<set>` is a hash of every embedded file, so they can
//! be cached forever (`immutable`): a new build has a new set and new URLs. The shell itself is
//! `no-store`. Every answer here carries a content security policy that allows scripts from
//! this origin only (and WebAssembly compilation, which OPAQUE's Argon2 needs), no inline
//! script, and no framing.

use axum::extract::Path;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::error::{ApiError, InputError};
use crate::service::Sesame;

mod assets;
mod session;

pub use assets::{asset_set, Asset, ASSETS};
pub(crate) use session::{clear_cookie, cookie_token};

/// The paths the shell is served at: one per view of the app.
pub const PAGES: [&str; 9] = [
    "/", "/signup", "/signin", "/recover", "/account", "/chat", "/admin", "/verify", "/consent",
];

/// The content security policy of every page and asset.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self' \
    'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
    font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

/// The routes of the app (merged into [`crate::http::router`]).
pub(crate) fn routes() -> Router<Sesame> {
    let mut router = Router::new();
    for page in PAGES {
        router = router.route(page, get(shell));
    }
    router
        .route("/assets/{set}/{*path}", get(asset))
        .route("/favicon.ico", get(favicon))
        .merge(session::routes())
        .layer(axum::middleware::map_response(security_headers))
}

/// The OpenAPI paths of the cookie-session routes (the pages are not part of the API).
pub(crate) use session::openapi;

/// Adds the headers every answer of the app carries.
pub(crate) async fn security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, name: HeaderName, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(h, header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY);
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(
        h,
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set(
        h,
        HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
    set(
        h,
        HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=(), payment=()",
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, header::CACHE_CONTROL, "no-store");
    }
    resp
}

/// The HTML shell, with the asset set's URLs filled in.
async fn shell() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        assets::shell(),
    )
        .into_response()
}

/// `/assets/<set>/<path>`: an embedded file, cached forever when `<set>` is this build's.
async fn asset(Path((set, path)): Path<(String, String)>) -> Result<Response, ApiError> {
    let not_found = || ApiError::new(InputError::NotFound, "No such asset.");
    if set != asset_set() {
        return Err(not_found());
    }
    let asset = assets::find(&path).ok_or_else(not_found)?;
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, asset.mime),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        asset.bytes,
    )
        .into_response())
}

/// `/favicon.ico`: browsers ask for it whatever the page says; the icon is an SVG.
async fn favicon() -> Response {
    let icon = assets::find("icon.svg").map_or(&[][..], |a| a.bytes);
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        icon,
    )
        .into_response()
}

#[cfg(test)]
mod tests;
