#!/bin/bash
# HEALTHCHECK of the sawmill-hadoop image, by the role of the running daemon:
#   NameNode: its /jmx says it is active and out of safe mode.
#   DataNode: its /jmx says it is registered with a NameNode that is up.
# Uses bash's /dev/tcp (no curl in the image), so a check costs no JVM start.
set -uo pipefail

http_get() {  # http_get PORT PATH -> body on stdout, 0 on HTTP 200
  # shellcheck disable=SC2016  # $0/$1 belong to the inner bash
  timeout 8 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$0" || exit 1
    printf "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" "$1" >&3
    IFS= read -r status <&3 || exit 1
    [[ $status == HTTP/1.?" 200"* ]] || exit 1
    cat <&3' "$1" "$2"
}

role=""
for p in /proc/[0-9]*/cmdline; do
  case $(tr '\0' ' ' <"$p" 2>/dev/null) in
    *org.apache.hadoop.hdfs.server.namenode.NameNode*) role=namenode; break ;;
    *org.apache.hadoop.hdfs.server.datanode.DataNode*) role=datanode; break ;;
  esac
done

case $role in
  namenode)
    body=$(http_get 9870 '/jmx?qry=Hadoop:service=NameNode,name=NameNodeStatus') \
      || { echo "namenode: /jmx on :9870 does not answer" >&2; exit 1; }
    grep -q '"State" *: *"active"' <<<"$body" || { echo "namenode: not active" >&2; exit 1; }
    body=$(http_get 9870 '/jmx?qry=Hadoop:service=NameNode,name=NameNodeInfo') || exit 1
    grep -q '"Safemode" *: *""' <<<"$body" || { echo "namenode: in safe mode" >&2; exit 1; }
    ;;
  datanode)
    body=$(http_get 9864 '/jmx?qry=Hadoop:service=DataNode,name=DataNodeInfo') \
      || { echo "datanode: /jmx on :9864 does not answer" >&2; exit 1; }
    grep -q '"NamenodeAddresses" *: *"{\\"[^"]' <<<"$body" \
      || { echo "datanode: not registered with a NameNode" >&2; exit 1; }
    grep -q 'ActorState\\" *: *\\"RUNNING' <<<"$body" \
      || { echo "datanode: its NameNode actor is not RUNNING" >&2; exit 1; }
    ;;
  *)
    exit 0 ;;  # a one-shot `hdfs dfs ...` container: nothing to check
esac
