//! The coordinator's two listeners made safe to expose: TLS (and mutual TLS) on gRPC, TLS, a
//! bearer token, a concurrency limit and a time limit on HTTP, and the rule that decides what
//! may listen where. Who may *call* is decided per request by [`crate::auth`].
//!
//! HTTP is served by a small accept loop (a TLS handshake per connection, in its own task, under
//! a time limit, so a slow client never holds up the others) instead of `axum::serve`, which
//! has no TLS.

use crate::auth::{constant_time_eq, AccessPolicy};
use crate::config::ServeConfig;
use crate::error::{CoordinatorError, Result};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use sawmill_core::connection::read_secret;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

/// Everything the listeners need, loaded from the files the settings name.
pub struct Transport {
    /// TLS of the gRPC listener.
    pub grpc_tls: Option<ServerTlsConfig>,
    pub policy: Arc<AccessPolicy>,
    pub http: HttpGuard,
    http_tls: Option<Arc<rustls::ServerConfig>>,
}

/// What every HTTP request goes through.
#[derive(Clone)]
pub struct HttpGuard {
    token: Option<Arc<str>>,
    metrics_open: bool,
    max_concurrency: usize,
    timeout: Duration,
}

fn read(what: &str, p: &Path) -> Result<Vec<u8>> {
    Ok(sawmill_core::connection::read_file(what, p)?)
}

impl Transport {
    /// Loads certificates and the token, and checks the addresses against them: the HTTP API
    /// on a non-loopback address needs TLS and a token (unless `http_insecure`); gRPC there
    /// without TLS only warns (plaintext stays available for development).
    pub fn load(cfg: &ServeConfig, grpc: SocketAddr, http: SocketAddr) -> Result<Self> {
        let token = match &cfg.token_file {
            Some(p) => Some(read_secret("coordinator token", p)?),
            None => None,
        };
        let identity = match (&cfg.tls_cert, &cfg.tls_key) {
            (Some(c), Some(k)) => Some((read("TLS certificate", c)?, read("TLS key", k)?)),
            _ => None,
        };
        let client_ca = match &cfg.tls_client_ca {
            Some(p) => Some(read("client CA certificate", p)?),
            None => None,
        };
        let grpc_tls = identity.as_ref().map(|(cert, key)| {
            let tls = ServerTlsConfig::new().identity(Identity::from_pem(cert, key));
            match &client_ca {
                Some(ca) => tls.client_ca_root(Certificate::from_pem(ca)),
                None => tls,
            }
        });
        let http_tls = match &identity {
            Some((cert, key)) => Some(Arc::new(rustls_server(cert, key)?)),
            None => None,
        };
        let policy = AccessPolicy::new(
            token.clone(),
            cfg.allowed_workers.clone(),
            client_ca.is_some(),
        );
        if !http.ip().is_loopback() && (http_tls.is_none() || token.is_none()) && !cfg.http_insecure
        {
            return Err(CoordinatorError::Config(format!(
                "the HTTP API would listen on {http}, a non-loopback address, without TLS and a \
                 token: give --tls-cert, --tls-key and --token-file (or --http 127.0.0.1:7001, or \
                 --http-insecure to accept it)"
            )));
        }
        if !grpc.ip().is_loopback() && grpc_tls.is_none() {
            tracing::warn!(
                address = %grpc,
                "the gRPC port listens on a non-loopback address in plaintext: anyone who reaches it can join as a worker; give --tls-cert/--tls-key (and --tls-client-ca or --token-file)"
            );
        }
        if !grpc.ip().is_loopback() && policy.is_open() {
            tracing::warn!(address = %grpc, "no worker authentication (no --tls-client-ca, no --token-file)");
        }
        Ok(Transport {
            grpc_tls,
            policy: Arc::new(policy),
            http: HttpGuard {
                token: token.map(Arc::from),
                metrics_open: cfg.metrics_open,
                max_concurrency: cfg.http_max_concurrency,
                timeout: Duration::from_millis(cfg.http_timeout_ms),
            },
            http_tls,
        })
    }

    /// Serves `app` on `listener` (TLS when configured) until `shutdown` completes.
    pub async fn serve_http(
        &self,
        listener: tokio::net::TcpListener,
        app: Router,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let app = self.http.clone().wrap(app);
        let Some(tls) = self.http_tls.clone() else {
            return axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await;
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        let handshake_timeout = self.http.timeout;
        tokio::pin!(shutdown);
        loop {
            let (tcp, _) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::debug!(error = %e, "http accept failed");
                        continue;
                    }
                },
                () = &mut shutdown => return Ok(()),
            };
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(Ok(tls)) =
                    tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await
                else {
                    return;
                };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await;
            });
        }
    }
}

/// A rustls server configuration (ring provider, as tonic's) from PEM certificate and key.
fn rustls_server(cert: &[u8], key: &[u8]) -> Result<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |what: &str, e: &dyn std::fmt::Display| {
        CoordinatorError::Config(format!("the TLS {what} is not usable PEM: {e}"))
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| bad("certificate", &e))?;
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| bad("key", &e))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| bad("configuration", &e))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| bad("certificate and key", &e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

impl HttpGuard {
    /// An open guard (no token) with the default limits, for tests that build a router alone.
    pub fn open() -> Self {
        HttpGuard {
            token: None,
            metrics_open: true,
            max_concurrency: 64,
            timeout: Duration::from_secs(10),
        }
    }

    /// `app` behind the token check, the concurrency limit and the time limit.
    pub fn wrap(self, app: Router) -> Router {
        let timeout = self.timeout;
        let limit = self.max_concurrency;
        app.layer(axum::middleware::from_fn_with_state(self, authorize))
            .layer(tower::limit::GlobalConcurrencyLimitLayer::new(limit))
            .layer(axum::middleware::from_fn(
                move |req: Request, next: Next| async move {
                    match tokio::time::timeout(timeout, next.run(req)).await {
                        Ok(r) => r,
                        Err(_) => {
                            (StatusCode::SERVICE_UNAVAILABLE, "request timed out\n").into_response()
                        }
                    }
                },
            ))
    }

    /// Whether `path` may be served to a caller with `authorization` (pure, for tests).
    pub fn allows(&self, path: &str, authorization: Option<&str>) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        if path == "/healthz" || (self.metrics_open && path == "/metrics") {
            return true;
        }
        authorization
            .and_then(|a| a.strip_prefix("Bearer "))
            .is_some_and(|given| constant_time_eq(given.as_bytes(), token.as_bytes()))
    }
}

async fn authorize(State(guard): State<HttpGuard>, req: Request, next: Next) -> Response {
    let auth = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if guard.allows(req.uri().path(), auth) {
        next.run(req).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(axum::http::header::WWW_AUTHENTICATE, "Bearer")],
            "missing or wrong token: send Authorization: Bearer <token>\n",
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(token: Option<&str>, metrics_open: bool) -> HttpGuard {
        HttpGuard {
            token: token.map(Arc::from),
            metrics_open,
            ..HttpGuard::open()
        }
    }

    #[test]
    fn the_token_guards_everything_but_health_and_open_metrics() {
        let g = guard(Some("t0k"), false);
        assert!(g.allows("/healthz", None));
        for path in ["/", "/api/v1/analytics", "/api/v1/status", "/metrics"] {
            assert!(!g.allows(path, None), "{path}");
            assert!(!g.allows(path, Some("Bearer nope")), "{path}");
            assert!(g.allows(path, Some("Bearer t0k")), "{path}");
        }
        assert!(guard(Some("t0k"), true).allows("/metrics", None));
        assert!(guard(None, false).allows("/api/v1/analytics", None));
    }

    fn cfg() -> ServeConfig {
        ServeConfig::default()
    }

    #[test]
    fn a_public_http_address_needs_tls_and_a_token() {
        let public: SocketAddr = "0.0.0.0:7001".parse().unwrap();
        let lo: SocketAddr = "127.0.0.1:7001".parse().unwrap();
        let e = Transport::load(&cfg(), lo, public)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("--tls-cert") && e.contains("--http-insecure"),
            "{e}"
        );
        assert!(Transport::load(&cfg(), lo, lo).is_ok());
        let insecure = ServeConfig {
            http_insecure: true,
            ..cfg()
        };
        assert!(Transport::load(&insecure, public, public).is_ok());
    }
}
