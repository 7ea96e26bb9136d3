#!/usr/bin/env bash
# make run: demo data, the sync server on loopback in the background, the
# demo station enrolled with it, and the station's GUI (simulated activator).
# Without a display the server stays in the foreground and the headless
# station commands to use are printed instead. The server stops on exit.
set -euo pipefail
data="$1"; addr="$2"
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/bin"
station_data="$(dirname "$data")/demo-station"
mkdir -p "$data"
creds="$("$bin/syncserver" demo --data "$data")"
token="$(printf '%s' "$creds" | sed -n 's/.*"stationEnrolToken" *: *"\([^"]*\)".*/\1/p')"
echo "Demo data in $data (generated keys that activate nothing)."
echo "Demo credentials: $creds"

server_pid=""
stop_server() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    echo "Stopping the sync server."
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
}
trap stop_server EXIT
trap 'exit 130' INT TERM

echo "Starting the sync server on http://$addr (log: $data/server.log)."
"$bin/syncserver" serve --data "$data" --addr "$addr" >>"$data/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  if curl -fsS "http://$addr/healthz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$server_pid" 2>/dev/null; then echo "The sync server did not start:"; tail -20 "$data/server.log"; exit 1; fi
  sleep 0.1
done

if "$bin/station" status --data "$station_data" --offline --json 2>/dev/null | grep -q '"enrolled": true'; then
  echo "The demo station ($station_data) is enrolled already."
elif [ -n "$token" ]; then
  "$bin/station" enrol --data "$station_data" --server "http://$addr" --token "$token" --name "Demo line" ||
    echo "Enrolling the demo station failed; enrol it from the station's sign-in screen."
else
  echo "No station enrolment token in the demo output; enrol the station from its sign-in screen."
fi

if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  cat <<MSG

There is no display here (\$DISPLAY and \$WAYLAND_DISPLAY are empty), so the
station's GUI cannot open. The sync server keeps running on http://$addr;
use the headless station commands in another shell instead:

  $bin/station status   --data $station_data
  $bin/station activate --data $station_data --activator sim --sn DEMO-0001 --model "Demo PC" --os-version "Windows 11 Pro"
  $bin/station activate --data $station_data --activator sim --sim-outcome key-fault,success --sn DEMO-0002 --model "Demo PC" --os-version "Windows 11 Home"
  $bin/station history  --data $station_data
  $bin/station sync     --data $station_data

(Ctrl-C stops the server.)
MSG
  wait "$server_pid"
  exit 0
fi

echo "Opening the station (simulated activator). Sign in with the demo operator above."
"$bin/station" gui --data "$station_data" --activator sim || echo "The station exited with an error."
