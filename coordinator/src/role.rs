//! This coordinator's role, shared by the doors: leading (the cluster actor of its current
//! term and the fence of its tenure) or standing by (and who leads, if known). Replaced whole
//! by the election loop ([`crate::leader`]); readers load it without a lock.

use crate::cluster::ClusterMsg;
use crate::status::RoleView;
use arc_swap::ArcSwap;
use ractor::ActorRef;
use sawmill_common::etcd::Fence;
use std::sync::Arc;

/// The gRPC response metadata naming the leader in a standby's refusal (see the proto).
pub const LEADER_METADATA: &str = "sawmill-leader";
/// Set (to `standby`) on every standby refusal, so a worker tells it from a transport error.
pub const ROLE_METADATA: &str = "sawmill-role";

#[derive(Clone)]
pub enum Role {
    Standby {
        /// The leader's advertised address, if one is known.
        leader: Option<String>,
    },
    Leader {
        cluster: ActorRef<ClusterMsg>,
        fence: Arc<Fence>,
        /// This coordinator's advertised address.
        advertise: String,
    },
}

pub type SharedRole = Arc<ArcSwap<Role>>;

pub fn shared() -> SharedRole {
    Arc::new(ArcSwap::from_pointee(Role::Standby { leader: None }))
}

impl Role {
    /// The cluster actor, only while the tenure is certainly valid: a leader resumed after its
    /// lease ran out refuses at once, before the election loop has noticed.
    pub fn leading(&self) -> Option<&ActorRef<ClusterMsg>> {
        match self {
            Role::Leader { cluster, fence, .. } if fence.valid() => Some(cluster),
            _ => None,
        }
    }

    /// What the status document shows.
    pub fn view(&self) -> RoleView {
        match self {
            Role::Leader { advertise, .. } if self.leading().is_some() => RoleView {
                role: "leader",
                leader: Some(advertise.clone()),
            },
            Role::Leader { .. } => RoleView {
                role: "standby",
                leader: None,
            },
            Role::Standby { leader } => RoleView {
                role: "standby",
                leader: leader.clone(),
            },
        }
    }
}

/// A standby's answer to a worker's Join, Heartbeat or Leave: UNAVAILABLE (the worker retries)
/// with the leader's address in the metadata when known.
pub fn not_leader(view: &RoleView) -> tonic::Status {
    let message = match &view.leader {
        Some(l) => format!("this coordinator is a standby; the leader is at {l}: follow it"),
        None => "this coordinator is a standby and no leader is elected yet: retry".to_string(),
    };
    let mut status = tonic::Status::unavailable(message);
    status.metadata_mut().insert(
        ROLE_METADATA,
        tonic::metadata::MetadataValue::from_static("standby"),
    );
    if let Some(l) = view.leader.as_ref().and_then(|l| {
        l.parse::<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>()
            .ok()
    }) {
        status.metadata_mut().insert(LEADER_METADATA, l);
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_standby_refusal_names_the_leader_for_workers_to_follow() {
        let view = Role::Standby {
            leader: Some("10.0.0.2:7000".into()),
        }
        .view();
        assert_eq!(view.role, "standby");
        let s = not_leader(&view);
        assert_eq!(s.code(), tonic::Code::Unavailable);
        assert_eq!(
            s.metadata().get(LEADER_METADATA).unwrap().to_str().unwrap(),
            "10.0.0.2:7000"
        );
        assert_eq!(s.metadata().get(ROLE_METADATA).unwrap(), "standby");
        assert!(s.message().contains("10.0.0.2:7000"), "{}", s.message());
        let unknown = not_leader(&Role::Standby { leader: None }.view());
        assert!(unknown.metadata().get(LEADER_METADATA).is_none());
        assert_eq!(unknown.metadata().get(ROLE_METADATA).unwrap(), "standby");
    }
}
