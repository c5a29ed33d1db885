//! What every request passes before a handler sees it: the Host check (against DNS
//! rebinding), the token (bound beyond loopback), the Origin check of requests that change
//! something (no cross-site writes), the query's size, and the time limit.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::state::{Rules, Shared};
use super::{ApiError, MAX_QUERY_BYTES};

/// The cookie the page keeps the token in after it was opened with `?token=`.
pub const TOKEN_COOKIE: &str = "papersim_token";

pub async fn check(
    State((shared, timeout)): State<(Arc<Shared>, Duration)>,
    request: Request,
    next: Next,
) -> Response {
    if let Err(e) = admit(&shared.rules, &request) {
        return e.into_response();
    }
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the request took longer than the server's limit of {} s (--timeout)",
                timeout.as_secs()
            ),
        )
        .into_response(),
    }
}

fn admit(rules: &Rules, request: &Request) -> Result<(), ApiError> {
    let query = request.uri().query().unwrap_or("");
    if query.len() > MAX_QUERY_BYTES {
        return Err(ApiError::new(
            StatusCode::URI_TOO_LONG,
            format!(
                "the query string is {} bytes; at most {MAX_QUERY_BYTES} are read (send long \
                 input in a POST body)",
                query.len()
            ),
        ));
    }
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if rules.loopback_only && !host_allowed(host, rules) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "Host `{}` is not this server's: a server on loopback answers only to \
                 localhost, 127.0.0.1 or [::1] on port {} (a page that renamed itself to this \
                 address is not let in)",
                host.escape_debug(),
                rules.port
            ),
        ));
    }
    if let Some(token) = &rules.token {
        if !carries_token(request, token) {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "this server is bound beyond loopback and needs its token: send \
                 `Authorization: Bearer TOKEN` (the token is in the library's serve-token \
                 file), or open the page as /?token=TOKEN once"
                    .to_string(),
            ));
        }
    }
    let changes = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if changes {
        let fetch_site = request
            .headers()
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok());
        if fetch_site == Some("cross-site") {
            return Err(cross_site("Sec-Fetch-Site: cross-site"));
        }
        // Browsers send Origin with every POST; a client that is not a browser sends none.
        if let Some(origin) = request.headers().get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("");
            let same = origin
                .strip_prefix("http://")
                .is_some_and(|o| !host.is_empty() && o.eq_ignore_ascii_case(host));
            if !same {
                return Err(cross_site(&format!("Origin `{}`", origin.escape_debug())));
            }
        }
    }
    Ok(())
}

fn cross_site(what: &str) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        format!(
            "{what} is not this server's page: requests that change the library or the \
             profile are taken only from the server's own page or from clients that are not \
             browsers"
        ),
    )
}

/// Whether `host` (a Host header) names loopback on the server's port.
fn host_allowed(host: &str, rules: &Rules) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        Some((n, p)) if !n.ends_with(':') || n.starts_with('[') => (n, p),
        _ => (host, "80"),
    };
    if port.parse::<u16>().ok() != Some(rules.port) {
        return false;
    }
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip == rules.bound_ip)
}

fn carries_token(request: &Request, token: &str) -> bool {
    let headers = request.headers();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix(TOKEN_COOKIE)?.strip_prefix('='))
        .find(|c| same_secret(c, token));
    let query = query_token(request.uri().query().unwrap_or(""));
    bearer.is_some_and(|b| same_secret(b.trim(), token))
        || cookie.is_some()
        || query.is_some_and(|q| same_secret(&q, token))
}

/// The `token` parameter of a query string.
pub fn query_token(query: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
}

/// Compares without stopping at the first difference, so that timing tells nothing.
fn same_secret(given: &str, token: &str) -> bool {
    given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}
