#!/usr/bin/env bash
# make screenshots: runs the real station GUI under Xvfb against the demo
# sync server and saves a PNG of every screen, in English and Simplified
# Chinese, into docs/screenshots/. The GUI's --tour mode drives the screens
# in a fixed order and signals each one; this script takes the picture.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/bin"
out="$root/docs/screenshots"
work="$(mktemp -d "${TMPDIR:-/tmp}/keystation-shots.XXXXXX")"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

for tool in xvfb-run import; do
  command -v "$tool" >/dev/null || { echo "screenshots: $tool is missing (scripts/setup.sh installs it)" >&2; exit 1; }
done
export LANG=en_US.UTF-8

# The demo server on a free loopback port.
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 18089)"
addr="127.0.0.1:$port"
demo="$("$bin/syncserver" demo --data "$work/server")"
user="$(printf '%s' "$demo" | sed -n 's/.*"operator" *: *{[^}]*"username" *: *"\([^"]*\)".*/\1/p')"
pass="$(printf '%s' "$demo" | sed -n 's/.*"operator" *: *{[^}]*"password" *: *"\([^"]*\)".*/\1/p')"
token="$(printf '%s' "$demo" | sed -n 's/.*"stationEnrolToken" *: *"\([^"]*\)".*/\1/p')"
if [ -z "$user" ] || [ -z "$pass" ] || [ -z "$token" ]; then
  echo "screenshots: could not read the demo credentials from: $demo" >&2; exit 1
fi
"$bin/syncserver" serve --data "$work/server" --addr "$addr" --log-level warn >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  curl -fsS "http://$addr/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
"$bin/station" enrol --data "$work/station" --server "http://$addr" --token "$token" --name "Line 1" >/dev/null

mkdir -p "$out"
shoot() { # lang
  local lang="$1" dir="$work/tour-$1"
  mkdir -p "$dir"
  KEYSTATION_TOUR_USER="$user" KEYSTATION_TOUR_PASSWORD="$pass" \
    xvfb-run -a -s '-screen 0 1280x800x24' bash -c '
      "$0" gui --data "$1" --activator sim --lang "$2" --tour "$3" --removable "$3/usb" >"$3/station.log" 2>&1 &
      pid=$!
      while kill -0 $pid 2>/dev/null; do
        for r in "$3"/*.ready; do
          [ -e "$r" ] || continue
          name="$(basename "$r" .ready)"
          import -window root "$4/$2-$name.png"
          echo "  $4/$2-$name.png"
          rm -f "$r"; touch "$3/$name.done"
        done
        sleep 0.2
      done
      wait $pid' "$bin/station" "$work/station" "$lang" "$dir" "$out" || true
  if [ ! -e "$dir/finished" ]; then
    echo "screenshots: the $lang tour did not finish; station output:" >&2
    cat "$dir/station.log" >&2
    exit 1
  fi
}
echo "screenshots: English"
shoot en
echo "screenshots: Simplified Chinese"
shoot zh
echo "screenshots: done, $(ls "$out"/*.png | wc -l) PNGs in docs/screenshots/"
