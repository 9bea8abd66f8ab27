//! The worker's connection to its coordinators: the address list (`--coordinator a:7000,b:7000`,
//! or one DNS name resolving to several addresses), one lazily connected channel per address,
//! and leader following. A standby refuses worker calls with UNAVAILABLE, metadata
//! `sawmill-role: standby` and the leader's address in `sawmill-leader`; a refusal or an
//! unreachable coordinator moves the link to the named leader, else to the next address
//! ([`next_target`], pure). Partitions keep running meanwhile: fencing makes that safe.

use crate::error::{Result, WorkerError};
use sawmill_common::coordinator_client::endpoint as client_endpoint;
use sawmill_core::connection::CoordinatorAccess;
use sawmill_proto::v1::coordinator_client::CoordinatorClient;
use std::time::Duration;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;
use tonic::Code;

const RPC_TIMEOUT: Duration = Duration::from_secs(10);
/// Addresses a link learns from leader hints beyond those it was given: a bound, since hints
/// come from the network.
const MAX_ADDRESSES: usize = 32;
/// The quick retry while moving between coordinators (a takeover in progress).
const QUICK_RETRY: Duration = Duration::from_millis(200);

/// Where to go after a refusal or an unreachable coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// The address at this index of the list.
    Index(usize),
    /// A leader the list does not name yet: append it and go there.
    Add(String),
}

/// Strips the scheme, so `http://a:1` and `a:1` name the same coordinator.
fn bare(address: &str) -> &str {
    address
        .trim()
        .trim_start_matches("http://")
        .trim_start_matches("https://")
}

/// The named leader if it is not where the link is now; else the next address in the list.
pub fn next_target(addresses: &[String], current: usize, hint: Option<&str>) -> Next {
    let here = addresses.get(current).map(|a| bare(a));
    if let Some(h) = hint.map(bare).filter(|h| !h.is_empty() && Some(*h) != here) {
        return match addresses.iter().position(|a| bare(a) == h) {
            Some(i) => Next::Index(i),
            None if addresses.len() < MAX_ADDRESSES => Next::Add(h.to_string()),
            None => Next::Index((current + 1) % addresses.len().max(1)),
        };
    }
    Next::Index((current + 1) % addresses.len().max(1))
}

/// The wait before the next attempt after `misses` failed calls in a row: quick while the
/// link tries each coordinator twice (a takeover), then doubling from the heartbeat interval
/// up to `max`.
pub fn retry_delay(misses: u32, addresses: usize, interval: Duration, max: Duration) -> Duration {
    let quick = 2 * addresses.max(1) as u32;
    if misses <= quick {
        return QUICK_RETRY.min(interval);
    }
    let doublings = (misses - quick - 1).min(16);
    (interval * 2u32.pow(doublings)).min(max)
}

/// Whether a call's failure means "try elsewhere" (transport trouble or a standby), as opposed
/// to an answer the session acts on.
pub fn redirect(s: &tonic::Status) -> bool {
    matches!(
        s.code(),
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown
    )
}

/// The leader a standby named in its refusal.
pub fn leader_hint(s: &tonic::Status) -> Option<String> {
    s.metadata()
        .get("sawmill-leader")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Whether the refusal came from a standby (not from the transport).
pub fn from_standby(s: &tonic::Status) -> bool {
    s.metadata()
        .get("sawmill-role")
        .is_some_and(|v| v.as_bytes() == b"standby")
}

pub struct CoordinatorLink {
    addresses: Vec<String>,
    clients: Vec<CoordinatorClient<Channel>>,
    current: usize,
    access: CoordinatorAccess,
    /// `authorization` for every call (the shared token), if any.
    bearer: Option<MetadataValue<Ascii>>,
    /// Failed calls since the last answer.
    misses: u32,
}

fn channel(address: &str, access: &CoordinatorAccess) -> Result<CoordinatorClient<Channel>> {
    let ep = client_endpoint(address, access)?;
    Ok(CoordinatorClient::new(
        ep.connect_timeout(Duration::from_secs(3))
            .timeout(RPC_TIMEOUT)
            .http2_keep_alive_interval(Duration::from_secs(5))
            .keep_alive_timeout(Duration::from_secs(5))
            .connect_lazy(),
    ))
}

/// The addresses of `spec` (comma-separated). One plain-text `host:port` naming several
/// addresses in DNS becomes one entry per address (with TLS the name is kept: certificates
/// name hosts, not addresses).
async fn addresses(spec: &str, access: &CoordinatorAccess) -> Result<Vec<String>> {
    let list: Vec<String> = spec
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect();
    if list.is_empty() {
        return Err(WorkerError::Config(format!(
            "no coordinator address in {spec:?}: give --coordinator host:port[,host:port...]"
        )));
    }
    let tls = access.tls() || spec.contains("https://");
    if list.len() == 1 && !tls {
        if let Ok(resolved) = tokio::net::lookup_host(bare(&list[0])).await {
            let mut all: Vec<String> = resolved.map(|a| a.to_string()).collect();
            all.sort();
            all.dedup();
            if all.len() > 1 {
                tracing::info!(name = %list[0], addresses = ?all, "the coordinator name resolves to several addresses: following the leader among them");
                return Ok(all);
            }
        }
    }
    Ok(list)
}

impl CoordinatorLink {
    pub async fn new(spec: &str, access: &CoordinatorAccess) -> Result<Self> {
        let addresses = addresses(spec, access).await?;
        let clients = addresses
            .iter()
            .map(|a| channel(a, access))
            .collect::<Result<Vec<_>>>()?;
        Ok(CoordinatorLink {
            addresses,
            clients,
            current: 0,
            access: access.clone(),
            bearer: sawmill_common::coordinator_client::bearer(access)?,
            misses: 0,
        })
    }

    /// The address calls go to now.
    pub fn current(&self) -> &str {
        &self.addresses[self.current]
    }

    pub fn client(&mut self) -> &mut CoordinatorClient<Channel> {
        &mut self.clients[self.current]
    }

    pub fn bearer(&self) -> &Option<MetadataValue<Ascii>> {
        &self.bearer
    }

    /// A call was answered (whatever the answer): the link is where it should be.
    pub fn answered(&mut self) {
        self.misses = 0;
    }

    /// A call failed with `status` (a [`redirect`]): moves to the named leader or the next
    /// address and returns how long to wait before the next attempt: the heartbeat interval
    /// after a standby's answer, [`retry_delay`] after transport errors.
    pub fn failed(
        &mut self,
        status: &tonic::Status,
        interval: Duration,
        max: Duration,
    ) -> Duration {
        let standby = from_standby(status);
        let hint = leader_hint(status);
        let before = self.current;
        match next_target(&self.addresses, self.current, hint.as_deref()) {
            Next::Index(i) => self.current = i,
            Next::Add(address) => match channel(&address, &self.access) {
                Ok(client) => {
                    self.addresses.push(address);
                    self.clients.push(client);
                    self.current = self.addresses.len() - 1;
                }
                Err(e) => {
                    tracing::warn!(leader = %address, error = %e, "cannot reach the named leader; trying the others");
                    self.current = (self.current + 1) % self.addresses.len();
                }
            },
        }
        if self.current != before {
            tracing::info!(from = %self.addresses[before], to = %self.current(), standby, leader = ?hint, "following the coordinator leader");
        }
        if standby {
            // A coordinator answers: a takeover is under way (or no leader is elected yet).
            // Retry at the heartbeat pace, and quickly again after the next transport error.
            self.misses = 0;
            return interval;
        }
        self.misses = self.misses.saturating_add(1);
        retry_delay(self.misses, self.addresses.len(), interval, max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_named_leader_is_followed_else_the_next_address() {
        let a = list(&["a:1", "b:1", "c:1"]);
        assert_eq!(next_target(&a, 0, Some("c:1")), Next::Index(2));
        assert_eq!(next_target(&a, 0, Some("http://c:1")), Next::Index(2));
        // A hint naming where the link already is (the leader itself failed): move on.
        assert_eq!(next_target(&a, 2, Some("c:1")), Next::Index(0));
        assert_eq!(next_target(&a, 1, None), Next::Index(2));
        assert_eq!(next_target(&a, 1, Some("")), Next::Index(2));
        // A leader the list does not name (a DNS alias, an address behind NAT).
        assert_eq!(next_target(&a, 0, Some("d:1")), Next::Add("d:1".into()));
        assert_eq!(next_target(&list(&["a:1"]), 0, None), Next::Index(0));
    }

    #[test]
    fn learned_addresses_are_bounded() {
        let many: Vec<String> = (0..MAX_ADDRESSES).map(|i| format!("h{i}:1")).collect();
        assert_eq!(next_target(&many, 3, Some("new:1")), Next::Index(4));
    }

    #[test]
    fn retries_are_quick_during_a_takeover_then_back_off() {
        let (i, max) = (Duration::from_millis(500), Duration::from_secs(2));
        assert_eq!(retry_delay(1, 2, i, max), QUICK_RETRY);
        assert_eq!(retry_delay(4, 2, i, max), QUICK_RETRY);
        assert_eq!(retry_delay(5, 2, i, max), i);
        assert_eq!(retry_delay(6, 2, i, max), 2 * i);
        assert_eq!(retry_delay(60, 2, i, max), max);
    }

    #[test]
    fn standby_refusals_carry_the_leader() {
        let mut s = tonic::Status::unavailable("standby");
        s.metadata_mut()
            .insert("sawmill-leader", "b:7000".parse().unwrap());
        s.metadata_mut()
            .insert("sawmill-role", "standby".parse().unwrap());
        assert!(redirect(&s) && from_standby(&s));
        assert_eq!(leader_hint(&s).as_deref(), Some("b:7000"));
        let plain = tonic::Status::unavailable("connection refused");
        assert!(redirect(&plain) && !from_standby(&plain));
        assert_eq!(leader_hint(&plain), None);
        assert!(!redirect(&tonic::Status::not_found("join first")));
    }
}
