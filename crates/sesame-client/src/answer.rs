//! Turning the server's answers into values or errors: the status, the `Retry-After`
//! header and the error body (`{"error": {"code", "message"}}`) of every non-2xx answer.

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Response, StatusCode};
use sesame_api::{CredentialError, ErrorCode};

use crate::api::{ErrorBody, ErrorDetail};
use crate::error::{Error, Result};

/// The most characters of a non-API error body kept in an error message.
const MAX_ERROR_TEXT: usize = 200;

/// Passes a 2xx answer through and turns anything else into an error.
pub(crate) async fn checked(resp: Response) -> Result<Response> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let retry_after = retry_after(resp.headers());
    // A body that cannot be read is reported by its status alone.
    let body = resp.bytes().await.unwrap_or_default();
    Err(error_from_body(status, &body, retry_after))
}

/// Seconds from a `Retry-After` header given in seconds (the only form the server sends).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<u64> {
    headers.get(RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()
}

/// The error an answer with a non-2xx `status` and `body` stands for.
pub(crate) fn error_from_body(status: StatusCode, body: &[u8], retry_after: Option<u64>) -> Error {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(parsed) => from_detail(Some(status.as_u16()), parsed.error, retry_after),
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            let message = if text.is_empty() {
                status.canonical_reason().unwrap_or("error").to_owned()
            } else if text.starts_with('<') {
                // An HTML page: not an answer of a Sesame server (a proxy's error page, or
                // another program on that port). Never dumped on the person.
                format!(
                    "the server answered HTTP {} with a web page instead of a Sesame answer: is \
                     this address a Sesame server (and its path right)?",
                    status.as_u16()
                )
            } else {
                text.chars().take(MAX_ERROR_TEXT).collect()
            };
            Error::Server {
                status: Some(status.as_u16()),
                code: None,
                wire_code: format!("http_{}", status.as_u16()),
                message,
                retry_after,
            }
        }
    }
}

/// The error a server `{"code","message"}` stands for; `authentication_failed` becomes
/// [`Error::AuthenticationFailed`], the same error a client-side failure gives.
pub(crate) fn from_detail(
    status: Option<u16>,
    detail: ErrorDetail,
    retry_after: Option<u64>,
) -> Error {
    let code = ErrorCode::of(&detail, status);
    if code == Some(CredentialError::AuthenticationFailed.into()) {
        return Error::AuthenticationFailed;
    }
    Error::Server {
        status,
        code,
        wire_code: detail.code,
        message: detail.message,
        retry_after: retry_after.or(detail.retry_after),
    }
}

#[cfg(test)]
mod tests;
