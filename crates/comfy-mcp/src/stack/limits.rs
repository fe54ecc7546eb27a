//! The rate-limit step: a token bucket per category, and with several
//! principals one set per principal under a ceiling for all ([`Limits`]);
//! a refusal names its limit and says when to retry.

use std::convert::Infallible;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use comfy_audit::Outcome;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tower::ServiceExt;

use super::{Inner, Reply, Step, ToolCall};
use crate::config::Config;
use crate::tools::{Catalog, Category};

/// The rate limiters, one per category: in this process, or shared by
/// every replica through Redis ([`crate::state`]) with these as the
/// fallback under `state.redis_failure = local`.
///
/// With two or more principals (named tokens on the HTTP transport), each
/// principal has buckets of its own at the `rate_limits` rates, and the
/// shared buckets become the ceiling for all of them together
/// (`rate_limits.total`, by default each rate times the number of
/// principals): one principal spending its calls cannot spend another's.
/// Otherwise (stdio, no token, one token) there is one bucket per category,
/// as before.
pub struct Limits {
    /// Per category: the rate each caller has, the ceiling over all
    /// principals, and the bucket of that ceiling.
    buckets: Vec<(Category, u32, u32, DefaultDirectRateLimiter)>,
    /// Each principal's buckets (in `buckets`' order), with several
    /// principals; the names are the configured tokens' names and OAuth
    /// subjects, at most [`MAX_PRINCIPAL_BUCKETS`].
    principals: Option<std::sync::Mutex<std::collections::HashMap<Arc<str>, Vec<DefaultDirectRateLimiter>>>>,
    shared: Option<Arc<crate::state::Shared>>,
}

/// Why a call was not let through.
enum Refusal {
    /// Over the rate.
    Limited(String),
    /// The shared buckets could not be read (`fail_closed`).
    Unavailable(String),
}

/// Most principals with buckets of their own at once.
pub const MAX_PRINCIPAL_BUCKETS: usize = 10_000;

fn bucket(n: u32) -> DefaultDirectRateLimiter {
    let n = NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
    RateLimiter::direct(Quota::per_minute(n).allow_burst(n))
}

impl Limits {
    /// Buckets from `rate_limits:`, shared through `shared` when set.
    pub fn new(config: &Config, shared: Option<Arc<crate::state::Shared>>) -> Self {
        let r = config.rate_limits;
        let remote = &config.transport.remote;
        let principals = u32::try_from(remote.principal_count()).unwrap_or(u32::MAX);
        // Principals exist only on the HTTP transport.
        let several = remote.enabled && principals >= 2;
        let total = |own: u32, set: Option<u32>| match set {
            Some(t) if several => t,
            _ if several => own.saturating_mul(principals),
            _ => own,
        };
        let rates = [
            (Category::Workflow, r.workflow, r.total.workflow),
            (Category::Generation, r.generation, r.total.generation),
            (Category::FileOps, r.file_ops, r.total.file_ops),
            (Category::ReadOnly, r.read_only, r.total.read_only),
        ];
        Self {
            buckets: rates
                .iter()
                .map(|&(c, own, set)| {
                    let t = total(own, set);
                    (c, own, t, bucket(t))
                })
                .collect(),
            principals: several.then(std::sync::Mutex::default),
            shared,
        }
    }

    /// Takes one call from bucket `key` (Redis when shared, else `local`):
    /// `Ok(None)` when allowed, `Ok(Some(wait))` when refused.
    async fn take(
        &self,
        key: &str,
        n: u32,
        local: impl Fn() -> Result<(), Duration>,
    ) -> Result<Option<Duration>, Refusal> {
        if let Some(shared) = &self.shared {
            match shared.take(key, n, n).await {
                Ok(decided) => return Ok(decided),
                Err(e) if shared.fail_closed => {
                    return Err(Refusal::Unavailable(format!(
                        "The call was not run: the shared rate limits cannot be checked ({e}); \
                         state.redis_failure = fail_closed refuses calls until Redis is back."
                    )));
                }
                Err(e) => tracing::warn!("shared rate limits unavailable, using this replica's: {e}"),
            }
        }
        Ok(local().err())
    }

    /// Takes a token for `category` for `principal`; the refusal names the
    /// limit that refused and says when to retry.
    async fn check(
        &self,
        category: Category,
        tool: &str,
        principal: Option<&crate::caller::Principal>,
    ) -> Result<(), Refusal> {
        let Some(index) = self.buckets.iter().position(|(c, ..)| *c == category) else {
            return Ok(());
        };
        let (_, own, total, ceiling) = &self.buckets[index];
        let secs = |wait: Duration| wait.as_secs_f64().max(0.1);
        let now = || DefaultClock::default().now();
        if let (Some(table), Some(p)) = (&self.principals, principal) {
            let key = format!("{}:principal:{}", category.name(), p.0);
            let local = || {
                let mut table = table.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                // OAuth subjects are not bounded by the configuration:
                // past the cap, one other principal's buckets start anew
                // (the ceiling over all of them still holds).
                if table.len() >= MAX_PRINCIPAL_BUCKETS
                    && !table.contains_key(&p.0)
                    && let Some(other) = table.keys().next().cloned()
                {
                    table.remove(&other);
                }
                let buckets = table
                    .entry(Arc::clone(&p.0))
                    .or_insert_with(|| self.buckets.iter().map(|(_, own, ..)| bucket(*own)).collect());
                buckets[index]
                    .check()
                    .map_err(|not_until| not_until.wait_time_from(now()))
            };
            if let Some(wait) = self.take(&key, *own, local).await? {
                return Err(Refusal::Limited(format!(
                    "Rate limit exceeded for tool '{tool}'. Max {own} requests/minute for principal '{}' \
                     (rate_limits.{}). Retry in {:.1} s.",
                    p.0,
                    category.name(),
                    secs(wait)
                )));
            }
            let local = || ceiling.check().map_err(|not_until| not_until.wait_time_from(now()));
            if let Some(wait) = self.take(category.name(), *total, local).await? {
                return Err(Refusal::Limited(format!(
                    "Rate limit exceeded for tool '{tool}': the server-wide limit of {total} requests/minute \
                     for all principals together (rate_limits.total.{}) is reached. Retry in {:.1} s.",
                    category.name(),
                    secs(wait)
                )));
            }
            return Ok(());
        }
        let local = || ceiling.check().map_err(|not_until| not_until.wait_time_from(now()));
        match self.take(category.name(), *total, local).await? {
            None => Ok(()),
            Some(wait) => Err(Refusal::Limited(format!(
                "Rate limit exceeded for tool '{tool}'. Max {own} requests/minute. Retry in {:.1} s.",
                secs(wait)
            ))),
        }
    }
}

/// The rate limits ([`Limits`]).
#[derive(Clone)]
pub(super) struct RateLimit(pub(super) Arc<Limits>);

impl Step for RateLimit {
    async fn around<S: Inner>(self, call: ToolCall, rest: S) -> Result<Reply, Infallible> {
        let limits = self.0;
        let category = Catalog::get()
            .find(&call.name)
            .map_or(Category::ReadOnly, |t| t.category);
        let principal = crate::caller::Caller::of(call.ctx.as_ref()).principal;
        match limits.check(category, &call.name, principal.as_ref()).await {
            Ok(()) => {}
            Err(Refusal::Limited(message)) => return Ok(Reply::error(message, Outcome::RateLimited)),
            Err(Refusal::Unavailable(message)) => return Ok(Reply::error(message, Outcome::Error)),
        }
        rest.oneshot(call).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

    use super::{Limits, MAX_PRINCIPAL_BUCKETS};
    use crate::caller::Principal;
    use crate::config::Config;
    use crate::tools::Category;

    #[tokio::test]
    async fn oauth_subjects_have_a_bounded_number_of_bucket_sets() {
        let mut config = Config::default();
        config.transport.remote.enabled = true;
        config.transport.remote.oauth.issuers = vec!["https://as.example".into()];
        config.rate_limits.total.read_only = Some(u32::MAX);
        let limits = Limits::new(&config, None);
        for i in 0..=MAX_PRINCIPAL_BUCKETS + 50 {
            let p = Principal(format!("oauth:https://as.example#s{i}").into());
            assert!(limits.check(Category::ReadOnly, "t", Some(&p)).await.is_ok());
        }
        let table = limits.principals.as_ref().expect("several principals with OAuth");
        assert_eq!(table.lock().unwrap().len(), MAX_PRINCIPAL_BUCKETS);
    }
}
