#!/usr/bin/env bash
# Installs what building, running and testing KeyStation needs on a fresh
# Debian/Ubuntu machine: the C toolchain and X11/OpenGL headers of Fyne's cgo
# build, Xvfb and ImageMagick for screenshots, mingw-w64 for the Windows
# cross-compile, and the Go modules. Safe to run again: it installs only what
# is missing.
set -euo pipefail

pkgs=(gcc pkg-config libc6-dev libgl1-mesa-dev libx11-dev libxcursor-dev libxrandr-dev libxinerama-dev
      libxi-dev libxxf86vm-dev xvfb xauth imagemagick gcc-mingw-w64-x86-64 ca-certificates curl
      fonts-noto-cjk)

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v go >/dev/null 2>&1; then
  echo "setup: Go is not installed. KeyStation needs Go 1.26 or newer (https://go.dev/doc/install)." >&2
  exit 1
fi
need="$(sed -n 's/^go \([0-9.]*\).*/\1/p' go.mod)"
have="$(go env GOVERSION | sed 's/^go//')"
if [ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -1)" != "$need" ]; then
  echo "setup: Go $have is too old; KeyStation needs Go $need or newer." >&2
  exit 1
fi
go mod download
echo "setup: done"
