//! What several replicas share through Redis (or Valkey), when
//! `state.redis_url` is set: the rate-limit buckets (per category, and per
//! principal with several), the job table (prompt id → backend, owner,
//! client), uploads' owners and MCP tasks (with their owner,
//! [`crate::tasks`]).
//!
//! Rate limits are a GCRA (the token bucket governor implements, with the
//! same rate and burst) kept in one Redis key per category and run as one
//! Lua script, so the check and the update are atomic across replicas and
//! use Redis's clock, not each replica's. Jobs are one hash per prompt id
//! with a TTL (`state.job_ttl`).
//!
//! Every Redis call is bounded (connect and response timeouts); when Redis
//! cannot be reached the caller decides what follows
//! (`state.redis_failure`: local limits, or refusal). Without
//! `state.redis_url` none of this runs and nothing connects.

use std::collections::HashMap;
use std::time::Duration;

use redis::AsyncCommands as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::config::{RedisFailure, StateConfig};

/// Why Redis could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The URL is not one the client understands.
    #[error("state.redis_url: {0}")]
    Url(String),
    /// Redis did not answer, or answered with an error.
    #[error("Redis is unreachable or failing: {0}")]
    Redis(String),
}

impl From<redis::RedisError> for StateError {
    fn from(e: redis::RedisError) -> Self {
        // The error text never contains the URL's password.
        StateError::Redis(e.to_string())
    }
}

/// The longest any Redis call may take.
const REDIS_WAIT: Duration = Duration::from_secs(2);

/// GCRA over Redis's clock. KEYS[1] the bucket; ARGV[1] the emission
/// interval (µs), ARGV[2] the burst. Returns `{allowed, wait_µs}`.
const GCRA: &str = r"
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local earliest = tat - interval * (burst - 1)
if now < earliest then
  return {0, earliest - now}
end
local new = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', new), 'PX', math.ceil((new - now) / 1000) + 1000)
return {1, 0}
";

/// The shared state.
pub struct Shared {
    conn: ConnectionManager,
    prefix: String,
    job_ttl: u64,
    /// `state.redis_failure = fail_closed`.
    pub fail_closed: bool,
    gcra: redis::Script,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// The shared state for `config`, or `None` without `redis_url`. No
    /// connection is made until the first use.
    ///
    /// # Errors
    /// [`StateError::Url`] for a URL the client cannot use.
    pub fn open(config: &StateConfig) -> Result<Option<Self>, StateError> {
        let Some(url) = &config.redis_url else {
            return Ok(None);
        };
        let client = redis::Client::open(url.as_str()).map_err(|e| StateError::Url(e.to_string()))?;
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_WAIT))
            .set_response_timeout(Some(REDIS_WAIT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let conn = client
            .get_connection_manager_lazy(manager)
            .map_err(|e| StateError::Url(e.to_string()))?;
        Ok(Some(Self {
            conn,
            prefix: config.key_prefix.clone(),
            job_ttl: config.job_ttl,
            fail_closed: config.redis_failure == RedisFailure::FailClosed,
            gcra: redis::Script::new(GCRA),
        }))
    }

    fn key(&self, kind: &str, id: &str) -> String {
        format!("{}:{kind}:{id}", self.prefix)
    }

    /// Takes one call from the bucket `bucket` (`per_minute` calls a
    /// minute, bursts of `burst`): `Ok(None)` when allowed, `Ok(Some(wait))`
    /// when refused.
    ///
    /// # Errors
    /// [`StateError::Redis`] when Redis did not decide.
    pub async fn take(&self, bucket: &str, per_minute: u32, burst: u32) -> Result<Option<Duration>, StateError> {
        let interval_us = 60_000_000 / u64::from(per_minute.max(1));
        let mut conn = self.conn.clone();
        let mut call = self.gcra.key(self.key("rate", bucket));
        call.arg(interval_us).arg(burst.max(1));
        let (allowed, wait_us): (i64, i64) = tokio::time::timeout(REDIS_WAIT, call.invoke_async(&mut conn))
            .await
            .map_err(|_| StateError::Redis("no answer within 2 s".to_owned()))??;
        Ok((allowed != 1).then(|| Duration::from_micros(u64::try_from(wait_us).unwrap_or(0))))
    }

    /// Sets `fields` of the `kind` record `id` and (re)sets its TTL.
    ///
    /// # Errors
    /// [`StateError::Redis`].
    pub async fn hash_set(&self, kind: &str, id: &str, fields: &[(&str, &str)], ttl: u64) -> Result<(), StateError> {
        let key = self.key(kind, id);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .hset_multiple(&key, fields)
            .ignore()
            .expire(&key, i64::try_from(ttl).unwrap_or(i64::MAX))
            .ignore();
        let mut conn = self.conn.clone();
        tokio::time::timeout(REDIS_WAIT, pipe.query_async::<()>(&mut conn))
            .await
            .map_err(|_| StateError::Redis("no answer within 2 s".to_owned()))??;
        Ok(())
    }

    /// Every field of the `kind` record `id` (empty when unknown).
    ///
    /// # Errors
    /// [`StateError::Redis`].
    pub async fn hash_get(&self, kind: &str, id: &str) -> Result<HashMap<String, String>, StateError> {
        let mut conn = self.conn.clone();
        let key = self.key(kind, id);
        let fields: HashMap<String, String> = tokio::time::timeout(REDIS_WAIT, conn.hgetall(&key))
            .await
            .map_err(|_| StateError::Redis("no answer within 2 s".to_owned()))??;
        Ok(fields)
    }

    /// Sets `fields` of job `id` (and renews its TTL).
    ///
    /// # Errors
    /// [`StateError::Redis`].
    pub async fn job_set(&self, id: &str, fields: &[(&str, &str)]) -> Result<(), StateError> {
        self.hash_set("job", id, fields, self.job_ttl).await
    }

    /// Records `owner` as the uploader of the file `id` (folder, subfolder
    /// and name), kept as long as jobs are.
    ///
    /// # Errors
    /// [`StateError::Redis`].
    pub async fn job_file_set(&self, id: &str, owner: &str) -> Result<(), StateError> {
        self.hash_set("file", id, &[("owner", owner)], self.job_ttl).await
    }

    /// Every field of job `id` (empty when unknown).
    ///
    /// # Errors
    /// [`StateError::Redis`].
    pub async fn job(&self, id: &str) -> Result<HashMap<String, String>, StateError> {
        self.hash_get("job", id).await
    }

    /// Field `field` of each job in `ids`, in order.
    ///
    /// # Errors
    /// [`StateError::Redis`].
    pub async fn jobs_field(&self, ids: &[&str], field: &str) -> Result<Vec<Option<String>>, StateError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.hget(self.key("job", id), field);
        }
        let mut conn = self.conn.clone();
        let values: Vec<Option<String>> = tokio::time::timeout(REDIS_WAIT, pipe.query_async(&mut conn))
            .await
            .map_err(|_| StateError::Redis("no answer within 2 s".to_owned()))??;
        Ok(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_url_means_no_redis() {
        assert!(Shared::open(&StateConfig::default()).unwrap().is_none());
    }

    #[tokio::test]
    async fn a_bad_url_is_a_start_up_error() {
        let config = StateConfig {
            redis_url: Some("redis://".to_owned()),
            ..StateConfig::default()
        };
        assert!(matches!(Shared::open(&config), Err(StateError::Url(_))));
    }
}
