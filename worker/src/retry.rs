//! Retrying storage and etcd operations: a capped backoff under an overall deadline, permanent
//! errors never retried, and every failed attempt recorded for its partition (so a partition
//! that cannot progress shows in `/metrics`, the heartbeat and `sawmill status` within one
//! retry delay, instead of retrying silently forever).
//!
//! Giving up returns an error: the commit task ends, its commit gate is dropped and the
//! partition actor fails, so the supervisor restarts it with backoff (or the coordinator moves
//! it) and recovery sorts out what the failed attempt left.

use crate::error::{Result, WorkerError};
use crate::metrics::PartitionHealth;
use sawmill_common::Error;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The overall deadline of a retry loop that was given no setting (recovery).
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(180);
const FIRST_DELAY: Duration = Duration::from_millis(200);
const MAX_DELAY: Duration = Duration::from_secs(10);

/// Whether trying the same operation again can succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Storage or etcd unavailable, a timeout, a lost answer: try again.
    Retryable,
    /// Needs a person (permissions, a path under a file, a request etcd will never take,
    /// corrupt data, bad configuration): retrying only hides it.
    Permanent,
}

/// Markers (lowercase) of permanent failures in the text of storage and etcd errors, which
/// reach us as messages from the HDFS client, std::io and etcd's gRPC status.
const PERMANENT_MARKERS: [&str; 14] = [
    // etcd: a manifest above its request limit, a transaction with too many operations.
    "request is too large",
    "too many operations in txn",
    "message larger than max",
    "invalidargument",
    "invalid argument",
    // etcd authentication.
    "permissiondenied",
    "unauthenticated",
    // HDFS and local files.
    "permission denied",
    "accesscontrolexception",
    "parentnotdirectoryexception",
    "not a directory",
    "invalidpathexception",
    "quotaexceededexception",
    "read-only file system",
];

/// Retryable or permanent. Pure: a decision that must be right, tested exhaustively below.
pub fn classify(error: &Error) -> ErrorClass {
    if error.is_permanent() {
        return ErrorClass::Permanent;
    }
    let text = match error {
        // NotLeader is a coordinator's (a fenced write); like Fenced, retrying cannot help.
        Error::Fenced { .. } | Error::NotLeader(_) | Error::NoSummary { .. } => {
            return ErrorClass::Permanent
        }
        Error::Input { source, .. } | Error::Output { source, .. } => {
            use std::io::ErrorKind::*;
            if matches!(
                source.kind(),
                PermissionDenied | InvalidInput | NotADirectory | ReadOnlyFilesystem
            ) {
                return ErrorClass::Permanent;
            }
            source.to_string()
        }
        Error::Storage { message, .. } => message.clone(),
        Error::Etcd(message) | Error::Pipeline(message) => message.clone(),
        Error::Config(_) | Error::Corrupt { .. } | Error::Core(_) => error.to_string(),
    }
    .to_lowercase();
    if PERMANENT_MARKERS.iter().any(|m| text.contains(m)) {
        ErrorClass::Permanent
    } else {
        ErrorClass::Retryable
    }
}

/// How one retry loop retries, and for whom it records failures.
#[derive(Clone)]
pub struct RetryPolicy {
    /// Overall budget from the first attempt; no attempt starts after it.
    pub deadline: Duration,
    /// The partition and its failure record; `None` retries without reporting.
    pub report: Option<(i32, Arc<PartitionHealth>)>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            deadline: DEFAULT_DEADLINE,
            report: None,
        }
    }
}

/// The state of one retry loop: call [`Attempts::failed`] after each failed attempt.
pub struct Attempts<'a> {
    policy: &'a RetryPolicy,
    what: &'a str,
    started: Instant,
    attempt: u32,
    delay: Duration,
}

impl<'a> Attempts<'a> {
    pub fn new(policy: &'a RetryPolicy, what: &'a str) -> Self {
        Attempts {
            policy,
            what,
            started: Instant::now(),
            attempt: 0,
            delay: FIRST_DELAY,
        }
    }

    /// Records the failure, then sleeps before the next attempt, or returns the error to give
    /// up with (a permanent error, or the deadline would pass before the next attempt).
    pub async fn failed(&mut self, error: Error) -> Result<()> {
        self.attempt += 1;
        let (what, attempt) = (self.what, self.attempt);
        if let Some((partition, health)) = &self.policy.report {
            health.failed(*partition, what, &error);
        }
        let partition = self.policy.report.as_ref().map(|(p, _)| *p);
        if classify(&error) == ErrorClass::Permanent {
            tracing::error!(?partition, what, attempt, error = %error, "permanent error: not retrying");
            return Err(error.into());
        }
        let elapsed = self.started.elapsed();
        if elapsed + self.delay > self.policy.deadline {
            tracing::error!(?partition, what, attempt, elapsed_ms = elapsed.as_millis() as u64, error = %error, "giving up: the retry deadline has passed");
            return Err(WorkerError::GaveUp {
                what: what.to_string(),
                attempts: attempt,
                elapsed_ms: elapsed.as_millis() as u64,
                last: error,
            });
        }
        tracing::warn!(?partition, what, attempt, error = %error, "attempt failed, retrying");
        tokio::time::sleep(self.delay).await;
        self.delay = (self.delay * 2).min(MAX_DELAY);
        Ok(())
    }
}

/// Runs `op` until it succeeds, giving up as [`Attempts::failed`] decides.
pub async fn retry_with<T, F, Fut>(policy: &RetryPolicy, what: &str, mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = sawmill_common::Result<T>>,
{
    let mut attempts = Attempts::new(policy, what);
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) => attempts.failed(e).await?,
        }
    }
}

/// [`retry_with`] under the default deadline, reporting nothing (recovery: its failure is
/// reported by the supervisor when the partition fails to start).
pub async fn retry<T, F, Fut>(what: &str, op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = sawmill_common::Result<T>>,
{
    retry_with(&RetryPolicy::default(), what, op).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn storage(message: &str) -> Error {
        Error::Storage {
            path: "hdfs://nn/out/_staging/x".into(),
            message: message.into(),
        }
    }

    fn io(kind: std::io::ErrorKind) -> Error {
        Error::Output {
            path: "/out".into(),
            source: std::io::Error::new(kind, "io"),
        }
    }

    #[test]
    fn every_kind_of_error_is_classified() {
        use std::io::ErrorKind;
        use ErrorClass::*;
        let cases: Vec<(Error, ErrorClass)> = vec![
            (Error::Config("bad".into()), Permanent),
            (
                Error::Corrupt {
                    what: "manifest".into(),
                    message: "bad name".into(),
                },
                Permanent,
            ),
            (Error::Core(sawmill_core::Error::Config("x".into())), Permanent),
            (
                Error::Fenced {
                    partition: 0,
                    epoch: 1,
                    current: Some(2),
                },
                Permanent,
            ),
            (Error::NoSummary { root: "/x".into() }, Permanent),
            (Error::Etcd("grpc request error: status: InvalidArgument, message: \"etcdserver: request is too large\"".into()), Permanent),
            (Error::Etcd("etcdserver: too many operations in txn request".into()), Permanent),
            (Error::Etcd("status: ResourceExhausted, message: \"grpc: received message larger than max (4194320 vs. 4194304)\"".into()), Permanent),
            (Error::Etcd("status: PermissionDenied, message: \"etcdserver: permission denied\"".into()), Permanent),
            (Error::Etcd("status: Unauthenticated".into()), Permanent),
            (Error::Etcd("transport error: connection refused".into()), Retryable),
            (Error::Etcd("status: Unavailable, message: \"etcdserver: leader changed\"".into()), Retryable),
            (Error::Etcd("status: DeadlineExceeded".into()), Retryable),
            (storage("org.apache.hadoop.security.AccessControlException: Permission denied: user=x"), Permanent),
            (storage("ParentNotDirectoryException: /out/file (is not a directory)"), Permanent),
            (storage("org.apache.hadoop.fs.InvalidPathException: Invalid path name"), Permanent),
            (storage("DSQuotaExceededException: The DiskSpace quota is exceeded"), Permanent),
            (storage("could only be written to 0 of the 1 minReplication nodes"), Retryable),
            (storage("Connection refused (os error 111)"), Retryable),
            (storage("operation timed out"), Retryable),
            (Error::Pipeline("stage shard: a file operation took longer than 330s (is the output storage hung?)".into()), Retryable),
            (io(ErrorKind::PermissionDenied), Permanent),
            (io(ErrorKind::InvalidInput), Permanent),
            (io(ErrorKind::NotADirectory), Permanent),
            (io(ErrorKind::ReadOnlyFilesystem), Permanent),
            (io(ErrorKind::TimedOut), Retryable),
            (io(ErrorKind::StorageFull), Retryable),
            (io(ErrorKind::Interrupted), Retryable),
        ];
        for (error, want) in cases {
            assert_eq!(classify(&error), want, "{error}");
        }
    }

    #[test]
    fn every_marker_is_permanent_in_any_case() {
        for marker in PERMANENT_MARKERS {
            assert_eq!(
                classify(&Error::Etcd(marker.to_uppercase())),
                ErrorClass::Permanent
            );
            assert_eq!(classify(&storage(marker)), ErrorClass::Permanent);
        }
    }

    #[tokio::test]
    async fn a_permanent_error_is_tried_once_and_reported() {
        let health = Metrics::default().health();
        let policy = RetryPolicy {
            deadline: Duration::from_secs(60),
            report: Some((4, health.clone())),
        };
        let calls = AtomicU32::new(0);
        let got: Result<()> = retry_with(&policy, "stage shard", || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(storage("AccessControlException: Permission denied")) }
        })
        .await;
        assert!(got.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let failing = health.failing();
        assert_eq!(failing[&4].what, "stage shard");
        assert!(failing[&4].error.contains("Permission denied"));
    }

    #[tokio::test]
    async fn a_retryable_error_gives_up_at_the_deadline() {
        let health = Metrics::default().health();
        let policy = RetryPolicy {
            deadline: Duration::from_millis(700),
            report: Some((1, health.clone())),
        };
        let t0 = Instant::now();
        let got: Result<()> = tokio::time::timeout(
            Duration::from_secs(10),
            retry_with(&policy, "commit shard", || async {
                Err(Error::Etcd("transport error: connection refused".into()))
            }),
        )
        .await
        .expect("the retry loop must give up by its deadline");
        assert!(
            matches!(got, Err(WorkerError::GaveUp { attempts, .. }) if attempts >= 2),
            "{got:?}"
        );
        assert!(t0.elapsed() <= Duration::from_secs(2));
        assert!(health.failing()[&1].attempts >= 2);
    }

    #[tokio::test]
    async fn a_transient_error_is_retried_until_it_succeeds() {
        let calls = AtomicU32::new(0);
        let got = retry("publish shard", || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 2 {
                    Err(storage("connection reset"))
                } else {
                    Ok(n)
                }
            }
        })
        .await
        .expect("succeeds on the third attempt");
        assert_eq!(got, 2);
    }
}
