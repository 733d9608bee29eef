//! The one door in front of every route of `batchfan serve`: the `Host` check
//! (no DNS rebinding), the login, and the security headers on every response.
//!
//! | request | what the guard does |
//! | --- | --- |
//! | `GET /healthz`, `POST /hooks/{name}` | passes (the webhook is HMAC-signed, and comes through tunnels with other `Host` names) |
//! | a `Host` that is not this server's | 421 |
//! | `GET /login?token=T`, `POST /login` | passes to [`login`]: a right token sets the session cookie and redirects to `/` |
//! | anything else without the session cookie or `Authorization: Bearer T` | 401: a JSON error under `/api/`, else a page saying how to log in |
//!
//! `--no-auth` turns the login off (the `Host` check and the headers stay).
//! The token is never in a page served without it.

use axum::{
    extract::{Query, Request, State},
    http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode},
    middleware::Next,
    response::{Html, IntoResponse, Redirect, Response},
    Form, Json,
};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{
    assets,
    site::{Gate, SharedSite},
};

/// The page's policy: scripts and styles only from this server (no inline
/// script), no framing by anyone, forms posted only here.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// Headers on every response, errors and the webhook's included.
///
/// `Referrer-Policy: same-origin`, not `no-referrer`: with `no-referrer` a
/// browser sends `Origin: null` on the page's own form posts, which the Run
/// button's same-origin check must refuse; `same-origin` still sends nothing
/// to any other site.
pub const SECURITY_HEADERS: [(&str, &str); 4] = [
    ("x-frame-options", "DENY"),
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
];

/// The session cookie's name: per port, as browsers share cookies between the ports of a host.
pub fn cookie_name(port: u16) -> String {
    format!("batchfan-{port}")
}

/// Equal in constant time: compares the SHA-256 of both, so neither the
/// content nor the length of the expected token shows in the timing.
pub fn same_token(given: &str, expected: &str) -> bool {
    let (a, b) = (Sha256::digest(given.as_bytes()), Sha256::digest(expected.as_bytes()));
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn json_error(code: StatusCode, message: impl Into<String>) -> Response {
    (code, Json(json!({ "error": message.into() }))).into_response()
}

/// Refuses a request whose `Host` is not one of this server's names.
fn refuse_host(gate: &Gate, headers: &HeaderMap) -> Option<Response> {
    let addr = gate.addr()?;
    let host = header_str(headers, header::HOST.as_str()).unwrap_or("");
    let port = addr.port();
    let ok = host == addr.to_string()
        || host == format!("localhost:{port}")
        || host == format!("127.0.0.1:{port}")
        || host == format!("[::1]:{port}")
        || gate
            .allowed_hosts
            .iter()
            .any(|h| h == host || *h == host.rsplit_once(':').map_or(host, |(n, _)| n));
    (!ok).then(|| {
        json_error(
            StatusCode::MISDIRECTED_REQUEST,
            format!("host {host:?} is not this server's: open http://{addr}/, or start serve with --allow-host NAME"),
        )
    })
}

/// The session cookie's value, if the request has one.
fn session_cookie<'a>(gate: &Gate, headers: &'a HeaderMap) -> Option<&'a str> {
    let name = cookie_name(gate.addr()?.port());
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether the request carries the token: the session cookie, or `Authorization: Bearer`.
fn authorized(gate: &Gate, headers: &HeaderMap) -> bool {
    let bearer = header_str(headers, header::AUTHORIZATION.as_str()).and_then(|v| v.strip_prefix("Bearer "));
    [session_cookie(gate, headers), bearer]
        .into_iter()
        .flatten()
        .any(|t| same_token(t.trim(), &gate.api_token))
}

/// Paths that need neither the login nor the `Host` check.
fn open_path(method: &axum::http::Method, path: &str) -> bool {
    path == "/healthz" || (method == axum::http::Method::POST && path.starts_with("/hooks/"))
}

/// The middleware: `Host` check, login, security headers.
pub async fn guard(State(site): State<SharedSite>, req: Request, next: Next) -> Response {
    let gate = site.gate();
    let path = req.uri().path().to_owned();
    let mut response = if open_path(req.method(), &path) {
        next.run(req).await
    } else if let Some(refused) = refuse_host(gate, req.headers()) {
        refused
    } else if !gate.auth || path == "/login" || authorized(gate, req.headers()) {
        next.run(req).await
    } else if path.starts_with("/api/") {
        let mut r = json_error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong token: send Authorization: Bearer TOKEN with the token in the state directory's serve.json",
        );
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"batchfan serve\""));
        r
    } else {
        (StatusCode::UNAUTHORIZED, Html(assets::login_page(None))).into_response()
    };
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(HeaderName::from_static(name), HeaderValue::from_static(value));
    }
    response
}

/// `?token=` of the login URL, or the login page's form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    token: Option<String>,
}

fn login_with(gate: &Gate, token: Option<&str>) -> Response {
    let Some(token) = token.map(str::trim).filter(|t| !t.is_empty()) else {
        return (StatusCode::UNAUTHORIZED, Html(assets::login_page(None))).into_response();
    };
    if !gate.auth || !same_token(token, &gate.api_token) {
        let why = if gate.auth {
            "that token is not this server's (it restarts with a new one): use the URL it printed last"
        } else {
            "this server runs with --no-auth: there is nothing to log in to"
        };
        return (StatusCode::UNAUTHORIZED, Html(assets::login_page(Some(why)))).into_response();
    }
    let port = gate.addr().map_or(0, |a| a.port());
    let cookie = format!("{}={}; HttpOnly; SameSite=Strict; Path=/", cookie_name(port), gate.api_token);
    let mut response = Redirect::to("/").into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// `GET /login?token=T`: the URL serve prints on start.
pub async fn login(State(site): State<SharedSite>, Query(q): Query<LoginForm>) -> Response {
    login_with(site.gate(), q.token.as_deref())
}

/// `POST /login`: the login page's form (a token pasted from `serve.json`).
pub async fn login_form(State(site): State<SharedSite>, Form(f): Form<LoginForm>) -> Response {
    login_with(site.gate(), f.token.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_by_content_whatever_their_length() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abd", "abc"));
        assert!(!same_token("ab", "abc"));
        assert!(!same_token("", "abc"));
    }

    #[test]
    fn the_policy_forbids_framing_and_inline_script() {
        assert!(CONTENT_SECURITY_POLICY.contains("frame-ancestors 'none'"));
        assert!(CONTENT_SECURITY_POLICY.contains("script-src 'self';"));
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe-inline"));
    }
}
