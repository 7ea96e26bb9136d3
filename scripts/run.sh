#!/usr/bin/env bash
# make run: demo data, the sync server on loopback, and the station against it.
set -euo pipefail
data="$1"; addr="$2"
bin="$(cd "$(dirname "$0")/.." && pwd)/bin"
mkdir -p "$data"
creds="$("$bin/syncserver" demo --data "$data")"
echo "Demo data in $data (generated keys that activate nothing)."
echo "Demo credentials: $creds"
echo "Starting the sync server on http://$addr (Ctrl-C stops it)."
exec "$bin/syncserver" serve --data "$data" --addr "$addr"
