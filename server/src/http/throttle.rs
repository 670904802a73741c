//! Rate limits at the HTTP edge: per token and per IP address on every
//! request, and failed logins per IP and per user name. Each refusal is a
//! 429 with `Retry-After`. Request limits live in this process's memory,
//! so with several server processes each enforces its own (load is what
//! they protect, and each process bears its own); failed logins are
//! counted in the database, so a guesser gets no more attempts by
//! spreading them over several servers.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::app::AppState;
use crate::caller::{bearer_token, token_hash};
use crate::error::AppError;
use crate::rate_limit::{Rate, RateLimiter, RetryAfter};
use crate::service::Limits;
use crate::storage::Db;

pub struct Throttles {
    per_token: RateLimiter<String>,
    per_ip: RateLimiter<IpAddr>,
    login_failures_per_minute: u32,
}

/// A 429 from the limit named `limit` (a metrics label), counted.
fn too_many(limit: &'static str, message: &str, retry: RetryAfter) -> AppError {
    crate::metrics::rate_limited(limit);
    AppError::TooManyRequests {
        message: message.to_owned(),
        retry_after_secs: retry.0,
    }
}

impl Throttles {
    pub fn new(limits: &Limits) -> Throttles {
        Throttles {
            per_token: RateLimiter::new(Rate {
                per_minute: limits.requests_per_minute_per_token,
            }),
            per_ip: RateLimiter::new(Rate {
                per_minute: limits.requests_per_minute_per_ip,
            }),
            login_failures_per_minute: limits.login_failures_per_minute,
        }
    }

    /// Counts a login attempt against its IP and its user name before the
    /// password is checked, so parallel guesses cannot all slip past the
    /// limit while the slow hash runs; a successful login hands the units
    /// back ([`Self::login_succeeded`]). Refused once either has used up its
    /// failures: then even a right password waits.
    pub async fn start_login(
        &self,
        db: &Db,
        ip: Option<IpAddr>,
        user: &str,
        now_ms: i64,
    ) -> Result<(), AppError> {
        let message = "too many failed logins";
        let per_minute = self.login_failures_per_minute;
        let ip = ip.map(|ip| format!("ip:{}", subnet(ip)));
        let user = format!("user:{user}");
        let retry =
            |wait_ms: i64| RetryAfter(u64::try_from((wait_ms + 999) / 1000).unwrap_or(1).max(1));
        if let Some(ip) = &ip
            && let Err(wait) = db.check_attempt(ip, per_minute, now_ms).await?
        {
            return Err(too_many("login_ip", message, retry(wait)));
        }
        if let Err(wait) = db.take_attempt(&user, per_minute, now_ms).await? {
            return Err(too_many("login_user", message, retry(wait)));
        }
        if let Some(ip) = &ip
            && let Err(wait) = db.take_attempt(ip, per_minute, now_ms).await?
        {
            db.give_back_attempt(&user, per_minute, now_ms).await?;
            return Err(too_many("login_ip", message, retry(wait)));
        }
        Ok(())
    }

    /// The attempt was right: it does not count as a failure.
    pub async fn login_succeeded(
        &self,
        db: &Db,
        ip: Option<IpAddr>,
        user: &str,
        now_ms: i64,
    ) -> Result<(), AppError> {
        let per_minute = self.login_failures_per_minute;
        if let Some(ip) = ip {
            db.give_back_attempt(&format!("ip:{}", subnet(ip)), per_minute, now_ms)
                .await?;
        }
        db.give_back_attempt(&format!("user:{user}"), per_minute, now_ms)
            .await?;
        Ok(())
    }
}

/// The key of an address: an IPv6 client usually holds a whole /64, so
/// limiting single addresses would limit nothing.
fn subnet(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
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
            .take(&subnet(ip), now)
            .map_err(|r| too_many("ip", "too many requests from this address", r))?;
    }
    if let Some(token) = bearer_token(request.headers()) {
        state
            .throttles
            .per_token
            .take(&token_hash(token), now)
            .map_err(|r| too_many("token", "too many requests with this token", r))?;
    }
    Ok(next.run(request).await)
}

#[cfg(test)]
mod tests {
    use super::subnet;

    #[test]
    fn ipv6_clients_are_limited_by_their_64_and_mapped_v4_as_v4() {
        let a = "2001:db8:1:2:aaaa::1".parse().ok();
        let b = "2001:db8:1:2:bbbb::2".parse().ok();
        let other = "2001:db8:1:3::1".parse().ok();
        assert_eq!(a.map(subnet), b.map(subnet));
        assert_ne!(a.map(subnet), other.map(subnet));
        assert_eq!(
            "::ffff:10.0.0.7".parse().ok().map(subnet),
            "10.0.0.7".parse().ok()
        );
        assert_eq!("10.0.0.7".parse().ok().map(subnet), "10.0.0.7".parse().ok());
    }
}
