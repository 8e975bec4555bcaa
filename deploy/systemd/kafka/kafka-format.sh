#!/bin/sh
# Rendered by `lienthong deploy render --target systemd` from deploy/components.toml and deploy/topics.toml. Do not edit; re-render.
# Formats the storage once, creating the SCRAM-SHA-512 user of every component from
# the generated password files; a formatted directory is left alone.
set -eu
DATA="${KAFKA_DATA_DIR:-/var/lib/kafka/data}"
SECRETS="${KAFKA_SECRETS_DIR:-/etc/kafka/lienthong/secrets}"
CONFIG="${KAFKA_CONFIG_FILE:-/etc/kafka/lienthong/server.properties}"
KAFKA="${KAFKA_HOME:-/opt/kafka}/bin"
if [ -f "$DATA/meta.properties" ]; then exit 0; fi
set --
for user in admin worker gateway portal-connector postal-connector central-adapter broker-probe console; do
  password="$(cat "$SECRETS/kafka-password-$user")"
  set -- "$@" --add-scram "SCRAM-SHA-512=[name=$user,password=$password]"
done
cluster_id="$(cat "$SECRETS/kafka-cluster-id")"
"$KAFKA/kafka-storage.sh" format --cluster-id "$cluster_id" --config "$CONFIG" "$@"
