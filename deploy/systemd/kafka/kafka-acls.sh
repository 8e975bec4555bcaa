#!/bin/sh
# Rendered by `lienthong deploy render --target systemd` from deploy/components.toml and deploy/topics.toml. Do not edit; re-render.
# Adds the least-privilege ACLs of every component (kafka-acls --add is idempotent).
set -eu
BOOTSTRAP="${BOOTSTRAP:-localhost:9093}"
CLIENT_CONFIG="${CLIENT_CONFIG:-/etc/kafka/lienthong/admin.properties}"
ACLS="${KAFKA_HOME:-/opt/kafka}/bin/kafka-acls.sh"

acl() {
  "$ACLS" --bootstrap-server "$BOOTSTRAP" --command-config "$CLIENT_CONFIG" --add "$@"
}

# worker
acl --allow-principal User:worker --operation Write --operation Describe --topic 'agency-inbox' --resource-pattern-type literal
acl --allow-principal User:worker --operation Write --operation Describe --topic 'audit-chain' --resource-pattern-type literal
acl --allow-principal User:worker --operation Read --operation Write --operation Describe --topic 'dead-letters' --resource-pattern-type literal
acl --allow-principal User:worker --operation Write --operation Describe --topic 'deadline-alerts' --resource-pattern-type literal
acl --allow-principal User:worker --operation Read --operation Describe --topic 'documents' --resource-pattern-type literal
acl --allow-principal User:worker --operation Write --operation Describe --topic 'documents-quarantine' --resource-pattern-type literal
acl --allow-principal User:worker --operation Write --operation Describe --topic 'documents-verified' --resource-pattern-type literal
acl --allow-principal User:worker --operation Read --operation Describe --topic 'dossier-events' --resource-pattern-type literal
acl --allow-principal User:worker --operation Write --operation Describe --topic 'live-stats' --resource-pattern-type literal
acl --allow-principal User:worker --operation Write --operation Describe --topic 'monitoring-alerts' --resource-pattern-type literal
acl --allow-principal User:worker --operation Write --operation Describe --topic 'portal-status' --resource-pattern-type literal
acl --allow-principal User:worker --operation Read --operation Write --operation Describe --topic 'stats-partials' --resource-pattern-type literal
acl --allow-principal User:worker --operation Create --operation Read --operation Write --operation Describe --operation DescribeConfigs --topic 'lienthong-' --resource-pattern-type prefix
acl --allow-principal User:worker --operation Read --operation Describe --group 'lienthong' --resource-pattern-type literal

# gateway
acl --allow-principal User:gateway --operation Write --operation Describe --topic 'documents' --resource-pattern-type literal
acl --allow-principal User:gateway --operation Write --operation Describe --topic 'dossier-events' --resource-pattern-type literal
acl --allow-principal User:gateway --operation Read --operation Write --operation Describe --topic 'gateway-idempotency' --resource-pattern-type literal
acl --allow-principal User:gateway --operation Write --operation Describe --topic 'postal-orders' --resource-pattern-type literal
acl --allow-principal User:gateway --operation Write --operation Describe --topic 'postal-tracking' --resource-pattern-type literal

# portal-connector
acl --allow-principal User:portal-connector --operation Write --operation Describe --topic 'dead-letters' --resource-pattern-type literal
acl --allow-principal User:portal-connector --operation Read --operation Describe --topic 'live-stats' --resource-pattern-type literal
acl --allow-principal User:portal-connector --operation Write --operation Describe --topic 'monitoring-alerts' --resource-pattern-type literal
acl --allow-principal User:portal-connector --operation Write --operation Describe --topic 'portal-parked' --resource-pattern-type literal
acl --allow-principal User:portal-connector --operation Read --operation Describe --topic 'portal-status' --resource-pattern-type literal
acl --allow-principal User:portal-connector --operation Read --operation Describe --group 'lienthong-portal-connector' --resource-pattern-type literal

# postal-connector
acl --allow-principal User:postal-connector --operation Write --operation Describe --topic 'dead-letters' --resource-pattern-type literal
acl --allow-principal User:postal-connector --operation Read --operation Write --operation Describe --topic 'monitoring-alerts' --resource-pattern-type literal
acl --allow-principal User:postal-connector --operation Read --operation Describe --topic 'postal-orders' --resource-pattern-type literal
acl --allow-principal User:postal-connector --operation Read --operation Write --operation Describe --topic 'postal-tracking' --resource-pattern-type literal
acl --allow-principal User:postal-connector --operation Read --operation Describe --group 'lienthong-postal-connector' --resource-pattern-type literal

# central-adapter
acl --allow-principal User:central-adapter --operation Read --operation Write --operation Describe --topic 'central-requests' --resource-pattern-type literal
acl --allow-principal User:central-adapter --operation Read --operation Write --operation Describe --topic 'dossier-events' --resource-pattern-type literal
acl --allow-principal User:central-adapter --operation Write --operation Describe --topic 'monitoring-alerts' --resource-pattern-type literal
acl --allow-principal User:central-adapter --operation Read --operation Describe --group 'lienthong-central-adapter' --resource-pattern-type literal

# broker-probe
acl --allow-principal User:broker-probe --operation Describe --topic '*' --resource-pattern-type literal
acl --allow-principal User:broker-probe --operation Describe --group '*' --resource-pattern-type literal

# console
acl --allow-principal User:console --operation Read --operation Describe --topic 'dead-letters' --resource-pattern-type literal
acl --allow-principal User:console --operation Read --operation Describe --topic 'deadline-alerts' --resource-pattern-type literal
acl --allow-principal User:console --operation Write --operation Describe --topic 'documents' --resource-pattern-type literal
acl --allow-principal User:console --operation Write --operation Describe --topic 'dossier-events' --resource-pattern-type literal
acl --allow-principal User:console --operation Read --operation Describe --topic 'live-stats' --resource-pattern-type literal
acl --allow-principal User:console --operation Read --operation Describe --topic 'monitoring-alerts' --resource-pattern-type literal
acl --allow-principal User:console --operation Read --operation Write --operation Describe --topic 'portal-status' --resource-pattern-type literal
acl --allow-principal User:console --operation Write --operation Describe --topic 'postal-orders' --resource-pattern-type literal
acl --allow-principal User:console --operation Write --operation Describe --topic 'stats-partials' --resource-pattern-type literal

echo "ACLs in place for: worker gateway portal-connector postal-connector central-adapter broker-probe console"
