//! How this process reaches Kafka and etcd through their security: client certificates, users,
//! librdkafka properties, and the files secrets are read from.
//!
//! These are per process, never part of [`crate::settings::PipelineSettings`]: the coordinator
//! sends those to every worker (`settings_json`), and each process has its own identity. Only
//! *paths* to secrets are settings; a secret's value is read from its file when a client is
//! built and never kept in a struct that is printed, logged or sent. A secret given as a flag
//! value (visible in `ps`) is refused.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The `[connection]` table of the config file, and its flags.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectionSettings {
    /// librdkafka properties for every Kafka client of this process
    /// (`security.protocol = "SASL_SSL"`, `sasl.mechanisms = "SCRAM-SHA-512"`, ...). Secret
    /// properties are refused here: put them in `kafka_secrets`.
    pub kafka_properties: BTreeMap<String, String>,
    /// librdkafka properties whose value is the content of a file (`sasl.password =
    /// "/run/secrets/kafka-password"`): for passwords and keys.
    pub kafka_secrets: BTreeMap<String, PathBuf>,
    /// A Java-style properties file (`KEY=VALUE` lines, `#` comments) of librdkafka properties,
    /// read before `kafka_properties`; may hold secrets (it is a file, not a flag).
    pub kafka_properties_file: Option<PathBuf>,
    /// PEM CA certificate that signs etcd's server certificate; setting it (or a client
    /// certificate) turns TLS on for etcd.
    pub etcd_ca: Option<PathBuf>,
    /// PEM client certificate and key for etcd (mutual TLS; etcd's `--client-cert-auth`).
    pub etcd_cert: Option<PathBuf>,
    pub etcd_key: Option<PathBuf>,
    /// etcd user (RBAC); its password is read from `etcd_password_file`.
    pub etcd_user: Option<String>,
    pub etcd_password_file: Option<PathBuf>,
    /// Kerberos principal for HDFS (`sawmill@REALM`); with `hdfs_keytab` the client logs in
    /// from the keytab and renews by itself, without it a ticket cache is used (`kinit`). The
    /// KDC comes from the usual `KRB5_CONFIG` (default /etc/krb5.conf).
    pub hdfs_principal: Option<String>,
    pub hdfs_keytab: Option<PathBuf>,
    /// Kerberos ticket cache (default: `KRB5CCNAME`, then the system default).
    pub hdfs_ticket_cache: Option<String>,
    /// Hadoop configuration directory (`core-site.xml`, `hdfs-site.xml`: name services, data
    /// transfer protection); default `HADOOP_CONF_DIR`.
    pub hadoop_conf_dir: Option<PathBuf>,
}

/// Property names whose values are secrets: never accepted as a flag or plain setting value.
fn is_secret_property(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.contains("password") || k.contains("secret") || k.ends_with(".key.pem") || k == "ssl.key.pem"
}

/// A secret's value from its file: the content without one trailing line end.
pub fn read_secret(what: &str, path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::Config(format!(
            "cannot read the {what} from {}: {e} (check the path and its permissions)",
            path.display()
        ))
    })?;
    let value = text.strip_suffix('\n').unwrap_or(&text);
    let value = value.strip_suffix('\r').unwrap_or(value);
    if value.is_empty() {
        return Err(Error::Config(format!(
            "the {what} file {} is empty",
            path.display()
        )));
    }
    Ok(value.to_string())
}

/// A certificate or key file, whole; the error names what it is for and where.
pub fn read_file(what: &str, path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| Error::Config(format!("cannot read the {what} {}: {e}", path.display())))
}

/// Parses a Java-style properties file: `KEY=VALUE` (or `KEY: VALUE`) lines, `#`/`!` comments.
pub fn parse_properties(text: &str) -> std::result::Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let Some(i) = line.find(['=', ':']) else {
            return Err(format!("line {}: expected KEY=VALUE", n + 1));
        };
        let (key, value) = (line[..i].trim(), line[i + 1..].trim());
        if key.is_empty() {
            return Err(format!("line {}: empty property name", n + 1));
        }
        out.push((key.to_string(), value.to_string()));
    }
    Ok(out)
}

/// The etcd side, resolved: PEM contents and the password, ready for the client.
#[derive(Clone, Default)]
pub struct EtcdAuth {
    pub tls: bool,
    pub ca_pem: Option<Vec<u8>>,
    /// (certificate PEM, key PEM)
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
    /// (user, password)
    pub user: Option<(String, String)>,
}

impl std::fmt::Debug for EtcdAuth {
    // Never prints a key or a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdAuth")
            .field("tls", &self.tls)
            .field("ca", &self.ca_pem.is_some())
            .field("client_certificate", &self.identity.is_some())
            .field("user", &self.user.as_ref().map(|(u, _)| u))
            .finish()
    }
}

impl ConnectionSettings {
    /// Refuses settings that can never work, with what to change.
    pub fn validate(&self) -> Result<()> {
        if let Some(key) = self.kafka_properties.keys().find(|k| is_secret_property(k)) {
            return Err(Error::Config(format!(
                "the Kafka property {key} is a secret: pass it as --kafka-secret {key}=FILE (or in \
                 kafka_properties_file), never as a value that shows in `ps` or the config"
            )));
        }
        if self.etcd_cert.is_some() != self.etcd_key.is_some() {
            return Err(Error::Config(
                "--etcd-cert and --etcd-key go together: give both or neither".into(),
            ));
        }
        if self.hdfs_keytab.is_some() && self.hdfs_principal.is_none() {
            return Err(Error::Config(
                "--hdfs-keytab needs --hdfs-principal (the principal to log in as)".into(),
            ));
        }
        if self.etcd_user.is_some() != self.etcd_password_file.is_some() {
            return Err(Error::Config(
                "--etcd-user needs --etcd-password-file (and the other way round)".into(),
            ));
        }
        Ok(())
    }

    /// Every librdkafka property of this process, secrets read from their files: the file's
    /// properties, then `kafka_properties`, then `kafka_secrets`.
    pub fn kafka_client_properties(&self) -> Result<Vec<(String, String)>> {
        let mut props = BTreeMap::new();
        if let Some(path) = &self.kafka_properties_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Error::Config(format!(
                    "cannot read the Kafka properties file {}: {e}",
                    path.display()
                ))
            })?;
            let parsed = parse_properties(&text).map_err(|e| {
                Error::Config(format!("Kafka properties file {}: {e}", path.display()))
            })?;
            props.extend(parsed);
        }
        props.extend(self.kafka_properties.clone());
        for (key, path) in &self.kafka_secrets {
            props.insert(
                key.clone(),
                read_secret(&format!("Kafka property {key}"), path)?,
            );
        }
        Ok(props.into_iter().collect())
    }

    /// Whether etcd is reached over TLS.
    pub fn etcd_tls(&self) -> bool {
        self.etcd_ca.is_some() || self.etcd_cert.is_some()
    }

    /// The etcd credentials, read from their files.
    pub fn etcd_auth(&self) -> Result<EtcdAuth> {
        let ca_pem = match &self.etcd_ca {
            Some(p) => Some(read_file("etcd CA certificate", p)?),
            None => None,
        };
        let identity = match (&self.etcd_cert, &self.etcd_key) {
            (Some(c), Some(k)) => Some((
                read_file("etcd client certificate", c)?,
                read_file("etcd client key", k)?,
            )),
            _ => None,
        };
        let user = match (&self.etcd_user, &self.etcd_password_file) {
            (Some(u), Some(p)) => Some((u.clone(), read_secret("etcd password", p)?)),
            _ => None,
        };
        Ok(EtcdAuth {
            tls: self.etcd_tls(),
            ca_pem,
            identity,
            user,
        })
    }
}

/// The connection settings as flags; each also reads `SAWMILL_<NAME>` from the environment.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Connection security")]
pub struct ConnectionFlags {
    /// A librdkafka property for every Kafka client, KEY=VALUE (repeatable; secrets are
    /// refused here: use --kafka-secret).
    #[arg(
        short = 'X',
        long = "kafka-property",
        value_name = "KEY=VALUE",
        env = "SAWMILL_KAFKA_PROPERTY",
        value_delimiter = ','
    )]
    pub kafka_property: Vec<String>,
    /// A librdkafka property whose value is read from a file, KEY=PATH (repeatable), e.g.
    /// sasl.password=/run/secrets/kafka-password.
    #[arg(
        long = "kafka-secret",
        value_name = "KEY=PATH",
        env = "SAWMILL_KAFKA_SECRET",
        value_delimiter = ','
    )]
    pub kafka_secret: Vec<String>,
    /// A properties file of librdkafka properties (KEY=VALUE lines).
    #[arg(long, value_name = "PATH", env = "SAWMILL_KAFKA_PROPERTIES_FILE")]
    pub kafka_properties_file: Option<PathBuf>,
    /// PEM CA certificate of etcd's server certificate (turns TLS on).
    #[arg(long, value_name = "PATH", env = "SAWMILL_ETCD_CA")]
    pub etcd_ca: Option<PathBuf>,
    /// PEM client certificate for etcd (with --etcd-key).
    #[arg(long, value_name = "PATH", env = "SAWMILL_ETCD_CERT")]
    pub etcd_cert: Option<PathBuf>,
    /// PEM private key of --etcd-cert.
    #[arg(long, value_name = "PATH", env = "SAWMILL_ETCD_KEY")]
    pub etcd_key: Option<PathBuf>,
    /// etcd user name (with --etcd-password-file).
    #[arg(long, env = "SAWMILL_ETCD_USER")]
    pub etcd_user: Option<String>,
    /// File holding the etcd user's password.
    #[arg(long, value_name = "PATH", env = "SAWMILL_ETCD_PASSWORD_FILE")]
    pub etcd_password_file: Option<PathBuf>,
    /// Kerberos principal for HDFS (e.g. sawmill@EXAMPLE.COM).
    #[arg(long, env = "SAWMILL_HDFS_PRINCIPAL")]
    pub hdfs_principal: Option<String>,
    /// Keytab of --hdfs-principal (without it: the ticket cache from kinit).
    #[arg(long, value_name = "PATH", env = "SAWMILL_HDFS_KEYTAB")]
    pub hdfs_keytab: Option<PathBuf>,
    /// Kerberos ticket cache for HDFS (default: KRB5CCNAME).
    #[arg(long, env = "SAWMILL_HDFS_TICKET_CACHE")]
    pub hdfs_ticket_cache: Option<String>,
    /// Hadoop configuration directory (default: HADOOP_CONF_DIR).
    #[arg(long, value_name = "PATH", env = "SAWMILL_HADOOP_CONF_DIR")]
    pub hadoop_conf_dir: Option<PathBuf>,
}

fn key_value(flag: &str, s: &str) -> Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(Error::Config(format!(
            "--{flag} takes KEY=VALUE, not {s:?}"
        ))),
    }
}

impl ConnectionFlags {
    /// The values given, as a JSON object of setting names (for [`crate::settings::layer`]).
    pub fn overrides(&self) -> Result<Value> {
        let mut v = serde_json::Map::new();
        if !self.kafka_property.is_empty() {
            let mut m = serde_json::Map::new();
            for p in &self.kafka_property {
                let (k, val) = key_value("kafka-property", p)?;
                m.insert(k, Value::String(val));
            }
            v.insert("kafka_properties".into(), Value::Object(m));
        }
        if !self.kafka_secret.is_empty() {
            let mut m = serde_json::Map::new();
            for p in &self.kafka_secret {
                let (k, val) = key_value("kafka-secret", p)?;
                m.insert(k, Value::String(val));
            }
            v.insert("kafka_secrets".into(), Value::Object(m));
        }
        let paths = [
            ("kafka_properties_file", &self.kafka_properties_file),
            ("etcd_ca", &self.etcd_ca),
            ("etcd_cert", &self.etcd_cert),
            ("etcd_key", &self.etcd_key),
            ("etcd_password_file", &self.etcd_password_file),
            ("hdfs_keytab", &self.hdfs_keytab),
            ("hadoop_conf_dir", &self.hadoop_conf_dir),
        ];
        for (name, path) in paths {
            if let Some(p) = path {
                v.insert(name.into(), Value::String(p.display().to_string()));
            }
        }
        let names = [
            ("etcd_user", &self.etcd_user),
            ("hdfs_principal", &self.hdfs_principal),
            ("hdfs_ticket_cache", &self.hdfs_ticket_cache),
        ];
        for (name, value) in names {
            if let Some(x) = value {
                v.insert(name.into(), Value::String(x.clone()));
            }
        }
        Ok(Value::Object(v))
    }
}

/// How a worker or `sawmill status` reaches a secured coordinator (gRPC): TLS with the
/// coordinator's CA, this process's client certificate (mutual TLS), and the shared token.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Coordinator access")]
pub struct CoordinatorAccess {
    /// PEM CA certificate of the coordinator's TLS certificate (turns TLS on).
    #[arg(long, value_name = "PATH", env = "SAWMILL_COORDINATOR_CA")]
    pub coordinator_ca: Option<PathBuf>,
    /// PEM client certificate of this process, for a coordinator requiring mutual TLS.
    #[arg(long, value_name = "PATH", env = "SAWMILL_CLIENT_CERT")]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of --client-cert.
    #[arg(long, value_name = "PATH", env = "SAWMILL_CLIENT_KEY")]
    pub client_key: Option<PathBuf>,
    /// File holding the coordinator's shared token.
    #[arg(long, value_name = "PATH", env = "SAWMILL_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
}

impl CoordinatorAccess {
    pub fn tls(&self) -> bool {
        self.coordinator_ca.is_some() || self.client_cert.is_some()
    }

    pub fn validate(&self) -> Result<()> {
        if self.client_cert.is_some() != self.client_key.is_some() {
            return Err(Error::Config(
                "--client-cert and --client-key go together: give both or neither".into(),
            ));
        }
        Ok(())
    }

    /// The token, read from its file.
    pub fn token(&self) -> Result<Option<String>> {
        match &self.token_file {
            Some(p) => Ok(Some(read_secret("coordinator token", p)?)),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_properties_are_refused_as_values() {
        let mut s = ConnectionSettings::default();
        s.kafka_properties
            .insert("sasl.password".into(), "hunter2".into());
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("--kafka-secret sasl.password=FILE"), "{e}");
        assert!(
            !e.contains("hunter2"),
            "the error must not echo the secret: {e}"
        );
        s.kafka_properties.clear();
        s.kafka_properties
            .insert("security.protocol".into(), "SASL_SSL".into());
        assert!(s.validate().is_ok());
    }

    #[test]
    fn secrets_come_from_files_and_layer_after_the_properties_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("client.properties");
        std::fs::write(
            &file,
            "# comment\nsecurity.protocol=SASL_PLAINTEXT\nsasl.mechanisms: PLAIN\n",
        )
        .unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "s3cret\n").unwrap();
        let mut s = ConnectionSettings {
            kafka_properties_file: Some(file),
            ..Default::default()
        };
        s.kafka_properties
            .insert("security.protocol".into(), "SASL_SSL".into());
        s.kafka_secrets.insert("sasl.password".into(), pw);
        let props: BTreeMap<_, _> = s.kafka_client_properties().unwrap().into_iter().collect();
        assert_eq!(props["security.protocol"], "SASL_SSL");
        assert_eq!(props["sasl.mechanisms"], "PLAIN");
        assert_eq!(props["sasl.password"], "s3cret");
    }

    #[test]
    fn a_missing_or_empty_secret_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let e = read_secret("etcd password", &empty)
            .unwrap_err()
            .to_string();
        assert!(e.contains("is empty"), "{e}");
        let e = read_secret("etcd password", &dir.path().join("nope"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot read the etcd password"), "{e}");
    }

    #[test]
    fn etcd_pairs_must_be_complete_and_debug_hides_the_password() {
        let s = ConnectionSettings {
            etcd_cert: Some("c.pem".into()),
            ..Default::default()
        };
        assert!(s.validate().is_err());
        let auth = EtcdAuth {
            tls: true,
            user: Some(("sawmill".into(), "hunter2".into())),
            ..Default::default()
        };
        let shown = format!("{auth:?}");
        assert!(
            shown.contains("sawmill") && !shown.contains("hunter2"),
            "{shown}"
        );
    }

    #[test]
    fn flags_become_settings() {
        let flags = ConnectionFlags {
            kafka_property: vec!["security.protocol=SASL_SSL".into()],
            kafka_secret: vec!["sasl.password=/run/pw".into()],
            etcd_user: Some("sawmill".into()),
            ..Default::default()
        };
        let v = flags.overrides().unwrap();
        assert_eq!(v["kafka_properties"]["security.protocol"], "SASL_SSL");
        assert_eq!(v["kafka_secrets"]["sasl.password"], "/run/pw");
        assert_eq!(v["etcd_user"], "sawmill");
        let bad = ConnectionFlags {
            kafka_property: vec!["novalue".into()],
            ..Default::default()
        };
        assert!(bad.overrides().is_err());
        assert!(parse_properties("=x").is_err());
        assert!(parse_properties("nokey").is_err());
    }
}
