#!/bin/sh
# Rendered by `lienthong deploy render --target compose` from deploy/components.toml and deploy/topics.toml. Do not edit; re-render.
# Secrets arrive as files (/run/secrets/NAME); settings are environment variables. For each
# VAR=FILE pair in SECRET_ENV_FILES, export VAR with the file's content, then run the command.
set -eu
for pair in ${SECRET_ENV_FILES:-}; do
  var="${pair%%=*}"
  file="${pair#*=}"
  if [ ! -r "$file" ]; then
    echo "lienthong-entrypoint: secret file $file for $var is missing or unreadable" >&2
    exit 2
  fi
  export "$var=$(cat "$file")"
done
unset SECRET_ENV_FILES
exec "$@"
