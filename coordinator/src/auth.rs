//! Who may talk to the coordinator's gRPC port, decided per call:
//!
//! 1. **Transport identity** (mTLS): the client certificate's common name and DNS names, which
//!    must match one of the allowed patterns (`worker-*`, `*.workers.example.com`).
//! 2. **Shared token** (small deployments): `authorization: Bearer <token>` on every call,
//!    compared in constant time; the token comes from a file, never a flag value.
//! 3. **Session secret**: Join hands each session a fresh random secret; Heartbeat and Leave
//!    must carry it, so knowing a worker's id (it is in the status) is not enough to act as it.
//!    A worker id is bound to the identity that joined with it: a Join for a live id from
//!    another identity is refused.
//!
//! The decisions are plain functions over the request's metadata and certificates; the
//! service calls them before anything reaches the cluster actor. No secret is ever logged,
//! shown in status, or put into an error message.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tonic::Status;

/// The names a client certificate proves: its subject's common name and its DNS names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub names: Vec<String>,
}

impl Identity {
    /// How the identity is shown in logs and errors.
    pub fn display(&self) -> String {
        if self.names.is_empty() {
            "(no client certificate)".into()
        } else {
            self.names.join(",")
        }
    }

    /// The names of a DER certificate (the TLS layer has already verified its chain).
    pub fn from_der(der: &[u8]) -> Result<Identity, String> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| format!("unreadable client certificate: {e}"))?;
        let mut names: Vec<String> = cert
            .subject()
            .iter_common_name()
            .filter_map(|cn| cn.as_str().ok().map(str::to_string))
            .collect();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                if let x509_parser::extensions::GeneralName::DNSName(d) = name {
                    names.push((*d).to_string());
                }
            }
        }
        names.dedup();
        Ok(Identity { names })
    }
}

/// Glob match with `*` for any run of characters (including none); case-insensitive, since
/// DNS names are.
pub fn matches(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.to_ascii_lowercase(), name.to_ascii_lowercase());
    let parts: Vec<&str> = p.split('*').collect();
    if parts.len() == 1 {
        return p == n;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !n.starts_with(first) || n.len() < first.len() + last.len() || !n.ends_with(last) {
        return false;
    }
    let mut rest = &n[first.len()..n.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// Equality that takes the same time wherever the first difference is.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What every gRPC call must show.
#[derive(Default)]
pub struct AccessPolicy {
    /// The shared token, if the token mode is on.
    token: Option<String>,
    /// Client-certificate name patterns; empty means any certificate the CA signed.
    allowed: Vec<String>,
    /// Client certificates are verified by the TLS layer (mTLS on).
    mtls: bool,
}

impl std::fmt::Debug for AccessPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessPolicy")
            .field("token", &self.token.is_some())
            .field("allowed", &self.allowed)
            .field("mtls", &self.mtls)
            .finish()
    }
}

impl AccessPolicy {
    pub fn new(token: Option<String>, allowed: Vec<String>, mtls: bool) -> Self {
        AccessPolicy {
            token,
            allowed,
            mtls,
        }
    }

    /// Whether anything is checked at all (plaintext development mode when not).
    pub fn is_open(&self) -> bool {
        self.token.is_none() && !self.mtls
    }

    /// The caller's identity, or the status to refuse the call with. `worker`: the call acts
    /// as a worker (Join, Heartbeat, Leave), so the allow-list applies; reading the status
    /// needs only an accepted certificate or the token.
    pub fn check<T>(&self, req: &tonic::Request<T>, worker: bool) -> Result<Identity, Status> {
        let certs = req.peer_certs();
        let der = certs.as_ref().and_then(|c| c.first().map(|c| c.to_vec()));
        let bearer = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        self.decide(der.as_deref(), bearer.as_deref(), worker)
    }

    /// [`Self::check`] over the parts of a request (pure, for tests).
    pub fn decide(
        &self,
        cert: Option<&[u8]>,
        authorization: Option<&str>,
        worker: bool,
    ) -> Result<Identity, Status> {
        if let Some(token) = &self.token {
            let given = authorization
                .and_then(|a| a.strip_prefix("Bearer "))
                .unwrap_or("");
            if !constant_time_eq(given.as_bytes(), token.as_bytes()) {
                return Err(Status::unauthenticated(
                    "missing or wrong token: give the worker the cluster's token file \
                     (--token-file or SAWMILL_TOKEN_FILE)",
                ));
            }
        }
        let identity = match cert {
            Some(der) => Identity::from_der(der).map_err(Status::unauthenticated)?,
            None if self.mtls => {
                return Err(Status::unauthenticated(
                    "no client certificate: this coordinator requires mutual TLS \
                     (give the worker --tls-cert and --tls-key)",
                ))
            }
            None => Identity::default(),
        };
        if worker && self.mtls && !self.allowed.is_empty() {
            let ok = identity
                .names
                .iter()
                .any(|n| self.allowed.iter().any(|p| matches(p, n)));
            if !ok {
                return Err(Status::permission_denied(format!(
                    "certificate {} is not allowed to join: it matches none of the allowed \
                     worker patterns ({})",
                    identity.display(),
                    self.allowed.join(", ")
                )));
            }
        }
        Ok(identity)
    }
}

/// One worker id's session: who joined with it, and the secret its calls must carry.
struct SessionEntry {
    identity: Identity,
    secret: String,
    last_seen: Instant,
}

/// The live sessions, by worker id.
pub struct Sessions {
    entries: Mutex<HashMap<String, SessionEntry>>,
    /// A session silent this long no longer holds its id (the cluster's session timeout).
    expiry: Duration,
}

impl Sessions {
    pub fn new(expiry: Duration) -> Self {
        Sessions {
            entries: Mutex::new(HashMap::new()),
            expiry,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, SessionEntry>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A new session for `worker_id`, refused while another identity's session for the same
    /// id is live. Returns the session secret.
    pub fn join(
        &self,
        worker_id: &str,
        identity: &Identity,
        now: Instant,
    ) -> Result<String, Status> {
        let mut entries = self.lock();
        if let Some(e) = entries.get(worker_id) {
            let live = now.saturating_duration_since(e.last_seen) < self.expiry;
            if live && e.identity != *identity {
                return Err(Status::permission_denied(format!(
                    "worker id {worker_id} is live and bound to {}; choose another --worker-id",
                    e.identity.display()
                )));
            }
        }
        let secret = new_secret();
        entries.insert(
            worker_id.to_string(),
            SessionEntry {
                identity: identity.clone(),
                secret: secret.clone(),
                last_seen: now,
            },
        );
        Ok(secret)
    }

    /// Checks a Heartbeat's or Leave's secret (and marks the session as seen).
    pub fn check(&self, worker_id: &str, secret: &str, now: Instant) -> Result<(), Status> {
        let mut entries = self.lock();
        match entries.get_mut(worker_id) {
            Some(e) if constant_time_eq(e.secret.as_bytes(), secret.as_bytes()) => {
                e.last_seen = now;
                Ok(())
            }
            // Unknown here (a restarted coordinator): the worker must join again, as for an
            // unknown generation.
            None => Err(Status::not_found(format!(
                "unknown worker {worker_id}: join first"
            ))),
            // A superseded session (the id joined again) or a forged call: either way what
            // the caller holds is stale, and a real worker rejoins.
            Some(_) => Err(Status::failed_precondition(format!(
                "stale generation (the session secret of worker {worker_id} is not the current \
                 one): rejoin"
            ))),
        }
    }

    pub fn leave(&self, worker_id: &str) {
        self.lock().remove(worker_id);
    }
}

/// 32 random bytes, hex.
fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn glob_patterns() {
        assert!(matches("worker-*", "worker-a"));
        assert!(matches("worker-*", "WORKER-"));
        assert!(!matches("worker-*", "coordinator"));
        assert!(matches("*.workers.example.com", "w1.workers.example.com"));
        assert!(!matches("*.workers.example.com", "workers.example.com"));
        assert!(matches("a*b*c", "a-x-b-y-c"));
        assert!(!matches("a*b*c", "a-c-b"));
        assert!(matches("exact", "exact") && !matches("exact", "exact2"));
        assert!(matches("*", "anything"));
    }

    proptest! {
        #[test]
        fn a_pattern_without_stars_is_equality(a in "[a-z.-]{0,12}", b in "[a-z.-]{0,12}") {
            prop_assert_eq!(matches(&a, &b), a == b);
        }

        #[test]
        fn prefix_and_suffix_patterns(pre in "[a-z]{0,6}", mid in "[a-z]{0,6}", suf in "[a-z]{0,6}") {
            let name = format!("{pre}{mid}{suf}");
            let pattern = format!("{pre}*{suf}");
            prop_assert!(matches(&pattern, &name));
        }
    }

    #[test]
    fn token_mode_refuses_missing_and_wrong_tokens_without_echoing_them() {
        let p = AccessPolicy::new(Some("s3cret".into()), vec![], false);
        assert!(p.decide(None, Some("Bearer s3cret"), true).is_ok());
        for given in [
            None,
            Some("Bearer nope"),
            Some("s3cret"),
            Some("Bearer s3cre"),
        ] {
            let e = p.decide(None, given, false).unwrap_err();
            assert_eq!(e.code(), tonic::Code::Unauthenticated);
            assert!(!e.message().contains("s3cret"), "{}", e.message());
        }
    }

    #[test]
    fn mtls_requires_a_certificate() {
        let p = AccessPolicy::new(None, vec!["worker-*".into()], true);
        assert_eq!(
            p.decide(None, None, true).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        assert!(AccessPolicy::default().decide(None, None, true).is_ok());
        assert!(AccessPolicy::default().is_open());
    }

    #[test]
    fn a_live_id_stays_bound_to_its_identity() {
        let s = Sessions::new(Duration::from_secs(10));
        let t0 = Instant::now();
        let a = Identity {
            names: vec!["worker-a".into()],
        };
        let b = Identity {
            names: vec!["worker-b".into()],
        };
        let secret = s.join("w1", &a, t0).unwrap();
        assert_eq!(secret.len(), 64);
        let e = s.join("w1", &b, t0 + Duration::from_secs(1)).unwrap_err();
        assert_eq!(e.code(), tonic::Code::PermissionDenied);
        // The same identity may join again (a restarted worker), getting a new secret.
        let again = s.join("w1", &a, t0 + Duration::from_secs(2)).unwrap();
        assert_ne!(again, secret);
        assert!(
            s.check("w1", &secret, t0).is_err(),
            "the old secret is void"
        );
        assert!(s.check("w1", &again, t0 + Duration::from_secs(3)).is_ok());
        assert_eq!(
            s.check("w1", "guess", t0).unwrap_err().code(),
            tonic::Code::FailedPrecondition
        );
        assert_eq!(
            s.check("w2", &again, t0).unwrap_err().code(),
            tonic::Code::NotFound
        );
        // Once silent past the expiry, the id is free for another identity.
        assert!(s.join("w1", &b, t0 + Duration::from_secs(14)).is_ok());
        s.leave("w1");
        assert!(s.check("w1", &again, t0).is_err());
    }
}
