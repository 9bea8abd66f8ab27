//! A gRPC channel to the coordinator through its security (TLS, mutual TLS, shared token), for
//! `worker join` and `sawmill status`.

use crate::error::{Error, Result};
use sawmill_core::connection::{read_file, CoordinatorAccess};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

/// The endpoint of `coordinator` (`host:port` or a URL), with TLS when `access` asks for it.
/// Callers add their own timeouts and connect.
pub fn endpoint(coordinator: &str, access: &CoordinatorAccess) -> Result<Endpoint> {
    access.validate()?;
    let tls = access.tls() || coordinator.starts_with("https://");
    let host = coordinator
        .trim_start_matches("http://")
        .trim_start_matches("https://");
    let uri = format!("{}://{host}", if tls { "https" } else { "http" });
    let ep = Endpoint::from_shared(uri).map_err(|e| {
        Error::Config(format!(
            "bad coordinator address {coordinator:?}: {e} (use host:port)"
        ))
    })?;
    if !tls {
        return Ok(ep);
    }
    let mut config = ClientTlsConfig::new();
    if let Some(ca) = &access.coordinator_ca {
        config = config.ca_certificate(Certificate::from_pem(read_file("coordinator CA", ca)?));
    }
    if let (Some(c), Some(k)) = (&access.client_cert, &access.client_key) {
        config = config.identity(Identity::from_pem(
            read_file("client certificate", c)?,
            read_file("client key", k)?,
        ));
    }
    ep.tls_config(config)
        .map_err(|e| Error::Config(format!("coordinator TLS settings: {e}")))
}

/// The `authorization` header value for the token, if any.
pub fn bearer(access: &CoordinatorAccess) -> Result<Option<MetadataValue<Ascii>>> {
    match access.token()? {
        Some(t) => format!("Bearer {t}")
            .parse()
            .map(Some)
            .map_err(|_| Error::Config("the coordinator token must be printable ASCII".into())),
        None => Ok(None),
    }
}

/// A request carrying the token (when there is one).
pub fn authorized<T>(message: T, bearer: &Option<MetadataValue<Ascii>>) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    if let Some(b) = bearer {
        req.metadata_mut().insert("authorization", b.clone());
    }
    req
}
