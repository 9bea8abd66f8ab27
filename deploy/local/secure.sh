# deploy/local/secure.sh - the secure profile of deploy/local/services (sourced by it).
#
# `services up --secure` (or SAWMILL_SERVICES_SECURE=1) starts the same three services with
# their real security on, and records the profile in the state dir so that every later
# command (start, stop, env, status) agrees:
#   etcd   TLS on the client port, client certificates required (--client-cert-auth), and
#          RBAC: user `root` (admin), user `sawmill` whose role may read and write only the
#          prefix /sawmill/ (tests add narrower users with `services etcdctl`).
#   Kafka  a SASL_SSL listener for clients with three mechanisms: SCRAM-SHA-512 and PLAIN
#          (users `admin` and `sawmill`, the same passwords) and GSSAPI (Kerberos: the broker is
#          kafka/127.0.0.1@SAWMILL.LOCAL in the profile's KDC), with a broker certificate from
#          the profile's CA; the controller and the broker's own listener stay on loopback in
#          plaintext.
# Every secret is generated at `up` under STATE_DIR/secrets (0700): a CA, a server
# certificate for 127.0.0.1/localhost, client certificates (root, sawmill, worker-a,
# worker-b) and, signed by a second CA nobody trusts, `outsider`; passwords in files.
# `services env` exports their paths (SAWMILL_SECURE_DIR, ...), never their values.

SECURE=0
PROFILE_FILE=$STATE_DIR/profile
SECRETS_DIR=$STATE_DIR/secrets

# secure_init: SECURE from SAWMILL_SERVICES_SECURE, else from what `up` recorded.
secure_init() {
  local recorded=""
  [[ -s $PROFILE_FILE ]] && recorded=$(<"$PROFILE_FILE")
  case ${SAWMILL_SERVICES_SECURE:-} in
    1|true|yes) SECURE=1 ;;
    0|false|no) SECURE=0 ;;
    "") [[ $recorded == secure ]] && SECURE=1 ;;
    *) die "SAWMILL_SERVICES_SECURE must be 1 or 0, not '$SAWMILL_SERVICES_SECURE'" ;;
  esac
  export SAWMILL_SERVICES_SECURE=$SECURE   # children (__exec-etcd) agree
}

# secure_matches_or_die: the profile we would use is the one the state dir's services run.
secure_matches_or_die() {
  local recorded=plain want=plain
  [[ -s $PROFILE_FILE ]] && recorded=$(<"$PROFILE_FILE")
  (( SECURE )) && want=secure
  any_proc_running || return 0
  [[ $recorded == "$want" ]] && return 0
  die "$STATE_DIR runs the $recorded profile, not $want; use a separate state dir and port" \
      "offset for the other one (deploy/local/services-secure does), or 'down' first"
}

record_profile() {
  if (( SECURE )); then echo secure; else echo plain; fi | write_file "$PROFILE_FILE"
}

scheme() { if (( SECURE )); then echo https; else echo http; fi; }

# ---------------------------------------------------------------- certificates
# issue NAME CN SAN [CA]: key + certificate signed by CA (default: the profile's CA).
issue_cert() {
  local name=$1 cn=$2 san=$3 ca=${4:-ca} d=$SECRETS_DIR
  openssl req -new -newkey rsa:2048 -nodes -keyout "$d/$name.key" -subj "/CN=$cn" \
    -out "$d/$name.csr" 2>/dev/null
  openssl x509 -req -in "$d/$name.csr" -CA "$d/$ca.pem" -CAkey "$d/$ca.key" \
    -CAcreateserial -days 825 -sha256 -out "$d/$name.pem" \
    -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n' "$san") \
    2>/dev/null
  rm -f "$d/$name.csr"
}

new_ca() {  # new_ca NAME CN
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -sha256 -subj "/CN=$2" \
    -keyout "$SECRETS_DIR/$1.key" -out "$SECRETS_DIR/$1.pem" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    2>/dev/null
}

new_password() {  # new_password FILE: 32 random alphanumerics, no newline
  head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32 >"$SECRETS_DIR/$1"
}

# secure_secrets: everything the profile needs, generated once per `up` from clean data.
secure_secrets() {
  (( SECURE )) || return 0
  have openssl || die "openssl not found (apt-get install openssl)"
  [[ -s $SECRETS_DIR/ca.pem && -s $SECRETS_DIR/kafka-broker.p12 ]] && return 0
  log "secure: generating a CA, certificates and passwords in $SECRETS_DIR"
  rm -rf "$SECRETS_DIR"
  mkdir -p "$SECRETS_DIR"
  chmod 700 "$SECRETS_DIR"
  new_ca ca "sawmill local CA"
  new_ca outsider-ca "untrusted CA"
  issue_cert server localhost "DNS:localhost,IP:127.0.0.1"
  local who
  for who in root sawmill worker-a worker-b coordinator; do
    issue_cert "$who" "$who" "DNS:$who,DNS:localhost,IP:127.0.0.1"
  done
  issue_cert outsider sawmill "DNS:outsider,IP:127.0.0.1" outsider-ca
  for who in etcd-root etcd-sawmill kafka-admin kafka-sawmill kafka-keystore sawmill-token; do
    new_password "$who.password"
  done
  openssl pkcs12 -export -in "$SECRETS_DIR/server.pem" -inkey "$SECRETS_DIR/server.key" \
    -certfile "$SECRETS_DIR/ca.pem" -name kafka \
    -passout "file:$SECRETS_DIR/kafka-keystore.password" -out "$SECRETS_DIR/kafka-broker.p12"
  chmod 600 "$SECRETS_DIR"/*
}

# ---------------------------------------------------------------- etcd
etcd_tls_args() {
  (( SECURE )) || return 0
  printf '%s\n' --client-cert-auth=true \
    "--trusted-ca-file=$SECRETS_DIR/ca.pem" \
    "--cert-file=$SECRETS_DIR/server.pem" "--key-file=$SECRETS_DIR/server.key"
}

etcdctl_tls_args() {
  (( SECURE )) || return 0
  printf '%s\n' "--cacert=$SECRETS_DIR/ca.pem" \
    "--cert=$SECRETS_DIR/root.pem" "--key=$SECRETS_DIR/root.key"
}

# etcd_auth_setup: users, the sawmill role and `auth enable`, once after `up` (the client
# certificate's CN is the user when a request carries no password).
etcd_auth_setup() {
  (( SECURE )) || return 0
  local root_pw sawmill_pw
  root_pw=$(<"$SECRETS_DIR/etcd-root.password")
  sawmill_pw=$(<"$SECRETS_DIR/etcd-sawmill.password")
  {
    etcdctl_ user add root --new-user-password="$root_pw"
    etcdctl_ user grant-role root root
    etcdctl_ role add sawmill
    etcdctl_ role grant-permission sawmill --prefix=true readwrite /sawmill/
    etcdctl_ user add sawmill --new-user-password="$sawmill_pw"
    etcdctl_ user grant-role sawmill sawmill
    etcdctl_ auth enable
  } >>"$LOG_DIR/etcd.log" 2>&1 || fail_service etcd "enabling etcd auth failed" etcd
  log "etcd: TLS with client certificates, RBAC on (users root, sawmill: readwrite /sawmill/)"
}

# ---------------------------------------------------------------- kafka
# Extra broker properties of the secure profile: clients on SASL_SSL at KAFKA_PORT, the
# broker's own traffic on a loopback plaintext listener.
kafka_secure_conf() {
  local pw
  pw=$(<"$SECRETS_DIR/kafka-keystore.password")
  cat <<EOF
listeners=SASL_SSL://$HOST:$KAFKA_PORT,INTERNAL://$HOST:$KAFKA_INTERNAL_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=SASL_SSL://$HOST:$KAFKA_PORT,INTERNAL://$HOST:$KAFKA_INTERNAL_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT
listener.security.protocol.map=SASL_SSL:SASL_SSL,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=INTERNAL
sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN,GSSAPI
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_admin="$(<"$SECRETS_DIR/kafka-admin.password")" user_sawmill="$(<"$SECRETS_DIR/kafka-sawmill.password")";
sasl.kerberos.service.name=kafka
listener.name.sasl_ssl.gssapi.sasl.jaas.config=com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true storeKey=true isInitiator=false keyTab="$SECRETS_DIR/kafka.keytab" principal="$KAFKA_KRB_PRINCIPAL";
ssl.keystore.type=PKCS12
ssl.keystore.location=$SECRETS_DIR/kafka-broker.p12
ssl.keystore.password=$pw
ssl.key.password=$pw
ssl.client.auth=none
EOF
}

# The admin client's properties (health checks and kafka-topics) in the secure profile.
kafka_secure_client_conf() {
  cat <<EOF
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$(<"$SECRETS_DIR/kafka-admin.password")";
ssl.truststore.type=PEM
ssl.truststore.location=$SECRETS_DIR/ca.pem
EOF
}

# Arguments for the storage format: the SCRAM users exist from the first start.
kafka_scram_format_args() {
  (( SECURE )) || return 0
  printf '%s\n' --add-scram "SCRAM-SHA-512=[name=admin,password=$(<"$SECRETS_DIR/kafka-admin.password")]" \
    --add-scram "SCRAM-SHA-512=[name=sawmill,password=$(<"$SECRETS_DIR/kafka-sawmill.password")]"
}

# The librdkafka properties a Sawmill client of the secure profile uses (KEY=VALUE lines;
# the password comes from its own file, SAWMILL_KAFKA_SECRET). `plain` and `gssapi` give the
# other two mechanisms: PLAIN takes the same password; GSSAPI logs in as sawmill@REALM from
# its keytab (librdkafka runs kinit into KRB5CCNAME).
kafka_sawmill_client_conf() {
  local mechanism=SCRAM-SHA-512
  case ${1:-scram} in plain) mechanism=PLAIN ;; gssapi) mechanism=GSSAPI ;; esac
  printf 'security.protocol=SASL_SSL\nsasl.mechanisms=%s\nssl.ca.location=%s\n' \
    "$mechanism" "$SECRETS_DIR/ca.pem"
  if [[ $mechanism == GSSAPI ]]; then
    printf 'sasl.kerberos.service.name=kafka\nsasl.kerberos.principal=%s\nsasl.kerberos.keytab=%s\n' \
      "sawmill@$REALM" "$SECRETS_DIR/sawmill.keytab"
  else
    echo "sasl.username=sawmill"
  fi
}

# JVM flags of the secure profile's broker: its GSSAPI acceptor reads the profile's krb5.conf.
kafka_secure_jvm_opts() {
  (( SECURE )) || return 0
  printf '%s\n' "-Djava.security.krb5.conf=$KRB_DIR/krb5.conf" -Dsun.security.krb5.disableReferrals=true
}

# kdc_for_kafka: the broker's GSSAPI needs its keytab from the realm before it starts, so in
# this profile `up` starts the KDC (a process of the service hdfs) before Kafka; start_hdfs
# then finds it running and keeps it.
kdc_for_kafka() {
  (( SECURE )) || return 0
  proc_pid kdc >/dev/null && kdc_healthy && return 0
  start_kdc
  wait_kdc
}

# secure_env: the exports `services env` adds in the secure profile (paths, never secrets):
# with them, `sawmill`, `coordinator` and `worker` reach all three services as user sawmill.
secure_env() {
  (( SECURE )) || return 0
  printf 'export SAWMILL_SECURE_DIR=%q\n' "$SECRETS_DIR"
  printf 'export SAWMILL_ETCD_CA=%q\n' "$SECRETS_DIR/ca.pem"
  printf 'export SAWMILL_ETCD_CERT=%q\n' "$SECRETS_DIR/sawmill.pem"
  printf 'export SAWMILL_ETCD_KEY=%q\n' "$SECRETS_DIR/sawmill.key"
  printf 'export SAWMILL_ETCD_USER=sawmill\n'
  printf 'export SAWMILL_ETCD_PASSWORD_FILE=%q\n' "$SECRETS_DIR/etcd-sawmill.password"
  printf 'export SAWMILL_KAFKA_PROPERTIES_FILE=%q\n' "$CONF_DIR/kafka/sawmill-client.properties"
  printf 'export SAWMILL_KAFKA_SECRET=%q\n' "sasl.password=$SECRETS_DIR/kafka-sawmill.password"
  printf 'export SAWMILL_KAFKA_PASSWORD_FILE=%q\n' "$SECRETS_DIR/kafka-sawmill.password"
  # The same client with SASL PLAIN or GSSAPI instead of SCRAM (as SAWMILL_KAFKA_PROPERTIES_FILE).
  printf 'export SAWMILL_SECURE_KAFKA_PLAIN_PROPERTIES=%q\n' "$CONF_DIR/kafka/sawmill-client-plain.properties"
  printf 'export SAWMILL_SECURE_KAFKA_GSSAPI_PROPERTIES=%q\n' "$CONF_DIR/kafka/sawmill-client-gssapi.properties"
  printf 'export KRB5_CONFIG=%q\n' "$KRB_DIR/krb5.conf"
  printf 'export SAWMILL_KRB5_CONFIG=%q\n' "$KRB_DIR/krb5.conf"
  printf 'export SAWMILL_HDFS_PRINCIPAL=%q\n' "sawmill@$REALM"
  printf 'export SAWMILL_HDFS_KEYTAB=%q\n' "$SECRETS_DIR/sawmill.keytab"
  printf 'export SAWMILL_HADOOP_CONF_DIR=%q\n' "$CONF_DIR/hadoop"
}

# ---------------------------------------------------------------- Kerberos (HDFS)
# A real MIT KDC (Debian's krb5-kdc) for the realm SAWMILL.LOCAL on 127.0.0.1:KDC_PORT, run as
# the process `kdc` of the service hdfs in this profile. Principals: nn/localhost,
# dn/localhost, HTTP/localhost (keytab secrets/hdfs.keytab), the broker kafka/127.0.0.1
# (secrets/kafka.keytab: librdkafka names the broker by the host it dials) and sawmill
# (secrets/sawmill.keytab).
readonly REALM=SAWMILL.LOCAL
KAFKA_KRB_PRINCIPAL=kafka/$HOST@$REALM
KRB_DIR=$CONF_DIR/krb5

krb_env() {  # the environment every Kerberos tool and server of this profile runs with
  export KRB5_CONFIG=$KRB_DIR/krb5.conf KRB5_KDC_PROFILE=$KRB_DIR/kdc.conf
  export KRB5CCNAME=FILE:$STATE_DIR/tmp/krb5cc_admin
}

write_krb_conf() {
  mkdir -p "$KRB_DIR"
  write_file "$KRB_DIR/krb5.conf" <<EOC
# generated by deploy/local/services (secure profile)
[libdefaults]
  default_realm = $REALM
  dns_lookup_realm = false
  dns_lookup_kdc = false
  dns_canonicalize_hostname = false
  rdns = false
  udp_preference_limit = 1
  ticket_lifetime = 24h
  renew_lifetime = 7d
  forwardable = true
[realms]
  $REALM = {
    kdc = $HOST:$KDC_PORT
  }
[domain_realm]
  localhost = $REALM
  .localhost = $REALM
EOC
  write_file "$KRB_DIR/kdc.conf" <<EOC
[kdcdefaults]
  kdc_listen = $HOST:$KDC_PORT
  kdc_tcp_listen = $HOST:$KDC_PORT
[realms]
  $REALM = {
    database_name = $DATA_DIR/kdc/principal
    key_stash_file = $DATA_DIR/kdc/stash
    acl_file = $KRB_DIR/kadm5.acl
    max_life = 24h
    max_renewable_life = 7d
    supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
  }
EOC
  echo "*/admin@$REALM *" | write_file "$KRB_DIR/kadm5.acl"
}

exec_kdc() {
  krb_env
  exec krb5kdc -n -P "$DATA_DIR/kdc/krb5kdc.pid"
}

kdc_healthy() {
  port_open "$KDC_PORT" || return 1
  # A real AS exchange: a ticket for the admin principal from its keytab.
  [[ -s $SECRETS_DIR/hdfs.keytab ]] || return 0   # principals not created yet
  ( krb_env; KRB5CCNAME=FILE:$STATE_DIR/tmp/krb5cc_probe; export KRB5CCNAME
    timeout 10 kinit -k -t "$SECRETS_DIR/hdfs.keytab" "nn/localhost@$REALM" ) >/dev/null 2>&1
}

# start_kdc: a new realm database and the principals with their keytabs (up only).
start_kdc() {
  have krb5kdc && have kadmin.local && have kinit \
    || die "the secure profile needs krb5-kdc, krb5-admin-server and krb5-user; run: $SELF deps"
  ports_free_or_die kdc "$KDC_PORT"
  rm -rf "$DATA_DIR/kdc"
  mkdir -p "$DATA_DIR/kdc" "$STATE_DIR/tmp"
  write_krb_conf
  rotate_log kdc
  (
    krb_env
    kdb5_util create -s -r "$REALM" -P "$(head -c 32 /dev/urandom | base64)"
    local p
    for p in nn/localhost dn/localhost HTTP/localhost "kafka/$HOST" sawmill; do
      kadmin.local -q "addprinc -randkey $p@$REALM"
    done
    rm -f "$SECRETS_DIR/hdfs.keytab" "$SECRETS_DIR/sawmill.keytab" "$SECRETS_DIR/kafka.keytab"
    kadmin.local -q "ktadd -k $SECRETS_DIR/hdfs.keytab nn/localhost@$REALM dn/localhost@$REALM HTTP/localhost@$REALM"
    kadmin.local -q "ktadd -k $SECRETS_DIR/kafka.keytab $KAFKA_KRB_PRINCIPAL"
    kadmin.local -q "ktadd -k $SECRETS_DIR/sawmill.keytab sawmill@$REALM"
    chmod 600 "$SECRETS_DIR"/*.keytab
  ) >>"$LOG_DIR/kdc.log" 2>&1 || fail_service kdc "creating the Kerberos realm failed" kdc
  spawn kdc "$SELF" __exec-kdc
}

relaunch_kdc() {
  ports_free_or_die kdc "$KDC_PORT"
  write_krb_conf
  rotate_log kdc
  spawn kdc "$SELF" __exec-kdc
}

wait_kdc() { wait_for kdc "$(( $(now) + TIMEOUT ))" kdc_healthy kdc; }

# krb_admin_ticket: the harness's own probes and `hdfs-dfs` act as the HDFS superuser (nn).
krb_admin_ticket() {
  (( SECURE )) || return 0
  krb_env
  klist -s 2>/dev/null && return 0
  mkdir -p "$STATE_DIR/tmp"
  timeout 10 kinit -k -t "$SECRETS_DIR/hdfs.keytab" "nn/localhost@$REALM" >/dev/null 2>&1 || true
}

# JVM flags of the secure profile's Hadoop processes.
hadoop_secure_jvm_opts() {
  (( SECURE )) || return 0
  printf '%s\n' "-Djava.security.krb5.conf=$KRB_DIR/krb5.conf" -Dsun.security.krb5.disableReferrals=true
}

hadoop_secure_core_site() {
  (( SECURE )) || return 0
  cat <<EOC
  <property><name>hadoop.security.authentication</name><value>kerberos</value></property>
  <property><name>hadoop.security.authorization</name><value>true</value></property>
  <property><name>hadoop.rpc.protection</name><value>privacy</value></property>
EOC
}

hadoop_secure_hdfs_site() {
  (( SECURE )) || return 0
  local kt=$SECRETS_DIR/hdfs.keytab
  cat <<EOC
  <property><name>dfs.block.access.token.enable</name><value>true</value></property>
  <property><name>dfs.namenode.kerberos.principal</name><value>nn/localhost@$REALM</value></property>
  <property><name>dfs.namenode.keytab.file</name><value>$kt</value></property>
  <property><name>dfs.namenode.kerberos.internal.spnego.principal</name><value>HTTP/localhost@$REALM</value></property>
  <property><name>dfs.datanode.kerberos.principal</name><value>dn/localhost@$REALM</value></property>
  <property><name>dfs.datanode.keytab.file</name><value>$kt</value></property>
  <property><name>dfs.web.authentication.kerberos.principal</name><value>HTTP/localhost@$REALM</value></property>
  <property><name>dfs.web.authentication.kerberos.keytab</name><value>$kt</value></property>
  <property><name>dfs.data.transfer.protection</name><value>privacy</value></property>
  <!-- privacy: encrypt block data with AES/CTR (keys exchanged under the DIGEST-MD5 session)
       instead of DIGEST-MD5's own 3DES, which hdfs-native (and the DataNode) run at ~7 MiB/s
       against ~150 MiB/s. hdfs-native always offers AES/CTR/NoPadding; the DataNode only
       accepts it when this is set. JCE codec: this profile has no libhadoop/OpenSSL. -->
  <property><name>dfs.encrypt.data.transfer.cipher.suites</name><value>AES/CTR/NoPadding</value></property>
  <property><name>hadoop.security.crypto.codec.classes.aes.ctr.nopadding</name><value>org.apache.hadoop.crypto.JceAesCtrCryptoCodec</value></property>
  <property><name>dfs.http.policy</name><value>HTTPS_ONLY</value></property>
EOC
}

# ssl-server.xml / ssl-client.xml: HTTPS is required for a DataNode on unprivileged ports with
# SASL data-transfer protection.
write_hadoop_ssl_conf() {
  (( SECURE )) || return 0
  local d=$CONF_DIR/hadoop pw
  pw=$(<"$SECRETS_DIR/kafka-keystore.password")
  if [[ ! -s $SECRETS_DIR/truststore.p12 ]]; then
    keytool -importcert -noprompt -alias ca -file "$SECRETS_DIR/ca.pem" -storetype PKCS12 \
      -keystore "$SECRETS_DIR/truststore.p12" -storepass "$pw" >/dev/null 2>&1
    chmod 600 "$SECRETS_DIR/truststore.p12"
  fi
  write_file "$d/ssl-server.xml" <<EOC
<?xml version="1.0"?>
<configuration>
  <property><name>ssl.server.keystore.type</name><value>pkcs12</value></property>
  <property><name>ssl.server.keystore.location</name><value>$SECRETS_DIR/kafka-broker.p12</value></property>
  <property><name>ssl.server.keystore.password</name><value>$pw</value></property>
  <property><name>ssl.server.keystore.keypassword</name><value>$pw</value></property>
  <property><name>ssl.server.truststore.type</name><value>pkcs12</value></property>
  <property><name>ssl.server.truststore.location</name><value>$SECRETS_DIR/truststore.p12</value></property>
  <property><name>ssl.server.truststore.password</name><value>$pw</value></property>
</configuration>
EOC
  write_file "$d/ssl-client.xml" <<EOC
<?xml version="1.0"?>
<configuration>
  <property><name>ssl.client.truststore.type</name><value>pkcs12</value></property>
  <property><name>ssl.client.truststore.location</name><value>$SECRETS_DIR/truststore.p12</value></property>
  <property><name>ssl.client.truststore.password</name><value>$pw</value></property>
</configuration>
EOC
  chmod 600 "$d/ssl-server.xml" "$d/ssl-client.xml"
}

# hdfs_secure_setup: permissions are on in this profile; the root is world-writable with the
# sticky bit (so tests can make their own directories) and /sawmill belongs to sawmill.
hdfs_secure_setup() {
  (( SECURE )) || return 0
  {
    "$SELF" __exec-hadoop-tool org.apache.hadoop.fs.FsShell -chmod 1777 /
    "$SELF" __exec-hadoop-tool org.apache.hadoop.fs.FsShell -mkdir -p /sawmill
    "$SELF" __exec-hadoop-tool org.apache.hadoop.fs.FsShell -chown sawmill /sawmill
  } >>"$LOG_DIR/namenode.log" 2>&1 || fail_service hdfs "setting up HDFS permissions failed" namenode datanode
  log "hdfs: Kerberos (realm $REALM), RPC and data transfer protection 'privacy', permissions on"
}
