//! Rate limits at the HTTP edge: per token and per IP address on every
//! request, and failed logins per IP and per user name. Each refusal is a
//! 429 with `Retry-After`. Limits live in this process's memory, so with
//! several server processes each enforces its own.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::app::AppState;
use crate::caller::{bearer_token, token_hash};
use crate::error::AppError;
use crate::rate_limit::{Rate, RateLimiter, RetryAfter};
use crate::service::Limits;

pub struct Throttles {
    per_token: RateLimiter<String>,
    per_ip: RateLimiter<IpAddr>,
    login_failures_per_ip: RateLimiter<IpAddr>,
    login_failures_per_user: RateLimiter<String>,
}

fn too_many(message: &str, retry: RetryAfter) -> AppError {
    AppError::TooManyRequests {
        message: message.to_owned(),
        retry_after_secs: retry.0,
    }
}

impl Throttles {
    pub fn new(limits: &Limits) -> Throttles {
        let login = Rate {
            per_minute: limits.login_failures_per_minute,
        };
        Throttles {
            per_token: RateLimiter::new(Rate {
                per_minute: limits.requests_per_minute_per_token,
            }),
            per_ip: RateLimiter::new(Rate {
                per_minute: limits.requests_per_minute_per_ip,
            }),
            login_failures_per_ip: RateLimiter::new(login),
            login_failures_per_user: RateLimiter::new(login),
        }
    }

    /// Refuses a login attempt while its IP or its user name has used up
    /// its failures. Checked before the password, so a throttled guess is
    /// refused even when it happens to be right.
    pub fn check_login(&self, ip: Option<IpAddr>, user: &str, now_ms: i64) -> Result<(), AppError> {
        let message = "too many failed logins";
        if let Some(ip) = ip {
            self.login_failures_per_ip
                .check(&ip, now_ms)
                .map_err(|r| too_many(message, r))?;
        }
        self.login_failures_per_user
            .check(&user.to_owned(), now_ms)
            .map_err(|r| too_many(message, r))
    }

    /// Counts a failed login against its IP and its user name.
    pub fn login_failed(&self, ip: Option<IpAddr>, user: &str, now_ms: i64) {
        if let Some(ip) = ip {
            let _ = self.login_failures_per_ip.take(&ip, now_ms);
        }
        let _ = self.login_failures_per_user.take(&user.to_owned(), now_ms);
    }
}

/// The client's IP address, when the server runs with connection info (a
/// router driven without it, as in `oneshot` tests, has none).
pub fn client_ip(request_extensions: &axum::http::Extensions) -> Option<IpAddr> {
    request_extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

/// Middleware: one unit per request from the caller's IP and, if it sends
/// one, its token. Runs before authentication, so floods of bad tokens are
/// cut off without touching the database.
pub async fn limit_requests(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, AppError> {
    let now = state.clock.now_ms();
    if let Some(ip) = client_ip(request.extensions()) {
        state
            .throttles
            .per_ip
            .take(&ip, now)
            .map_err(|r| too_many("too many requests from this address", r))?;
    }
    if let Some(token) = bearer_token(request.headers()) {
        state
            .throttles
            .per_token
            .take(&token_hash(token), now)
            .map_err(|r| too_many("too many requests with this token", r))?;
    }
    Ok(next.run(request).await)
}
