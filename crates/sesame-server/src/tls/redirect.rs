//! HTTPS-only answers: `Strict-Transport-Security` on the TLS listener, and the plain-HTTP
//! listener (`http_redirect_listen`) that answers every request with a `308` to HTTPS.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;

/// Adds `Strict-Transport-Security: max-age=<max_age>` to every answer of `app` (nothing when
/// `max_age` is 0).
pub fn hsts(app: Router, max_age: u64) -> Router {
    if max_age == 0 {
        return app;
    }
    let value = HeaderValue::from_str(&format!("max-age={max_age}"))
        .unwrap_or_else(|_| HeaderValue::from_static("max-age=31536000"));
    app.layer(axum::middleware::map_response(move |mut res: Response| {
        let value = value.clone();
        async move {
            res.headers_mut()
                .insert(header::STRICT_TRANSPORT_SECURITY, value);
            res
        }
    }))
}

/// The router of the plain-HTTP listener: every request is redirected (`308`, method and
/// body kept) to the same path on `https://<Host>[:https_port]`. A request without a usable
/// `Host` is answered `400`.
pub fn redirect_router(https_port: u16) -> Router {
    Router::new().fallback(redirect).with_state(https_port)
}

async fn redirect(State(port): State<u16>, headers: HeaderMap, uri: Uri) -> Response {
    match https_location(&headers, &uri, port) {
        Some(location) => (
            StatusCode::PERMANENT_REDIRECT,
            [(header::LOCATION, location)],
        )
            .into_response(),
        None => (
            StatusCode::BAD_REQUEST,
            "A Host header is needed to redirect to HTTPS.\n",
        )
            .into_response(),
    }
}

/// `https://<host of Host>[:port]<path and query>`; the port is left out when it is 443.
pub fn https_location(headers: &HeaderMap, uri: &Uri, port: u16) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let authority: axum::http::uri::Authority = host.parse().ok()?;
    let name = authority.host();
    if name.is_empty() {
        return None;
    }
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    Some(if port == 443 {
        format!("https://{name}{path}")
    } else {
        format!("https://{name}:{port}{path}")
    })
}

#[cfg(test)]
mod tests;
