# KeyStation. `make run` and `make test` set up everything they need on a
# fresh Debian/Ubuntu machine (scripts/setup.sh installs what is missing).

SHELL := /bin/bash
# Fyne parses the locale when it loads and complains about C/POSIX ones.
ifeq ($(filter-out C C.UTF-8 C.utf8 POSIX,$(LANG)),)
export LANG := en_US.UTF-8
endif
export LANG
GO ?= go
BIN := bin
DATA ?= data/demo
ADDR ?= 127.0.0.1:8080
SETUP_STAMP := .cache/setup.stamp

.PHONY: all setup build run test test-short vet fuzz bench clean help screenshots package-windows check-windows

all: build

help:
	@echo "make run    - set up, build, start the sync server with demo data (and the station against it)"
	@echo "make test   - set up, vet and run every test"
	@echo "make bench  - print the benchmark figures"
	@echo "make fuzz   - run each fuzz target briefly"
	@echo "make screenshots     - PNGs of every station screen (both languages) into docs/screenshots"
	@echo "make package-windows - dist/station.exe with icon, version and administrator manifest"

$(SETUP_STAMP): scripts/setup.sh go.mod
	@bash scripts/setup.sh
	@mkdir -p $(dir $@) && touch $@

setup: $(SETUP_STAMP)

# The Linux station is linked with its image base one page above 4 MiB, so
# that no segment lines up with the 2 MiB grid of its file offsets (see
# cmd/kbench/gui_bench.go: otherwise Linux may map whole 2 MiB page-cache
# folios of embedded fonts the station never reads).
STATION_LDFLAGS := -extldflags=-Wl,-Ttext-segment=0x401000

build: setup
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/syncserver ./cmd/kbench
	$(GO) build -ldflags=$(STATION_LDFLAGS) -o $(BIN)/ ./cmd/station

run: build
	@bash scripts/run.sh "$(DATA)" "$(ADDR)"

vet: setup
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt would change:"; gofmt -l .; exit 1; }

test: setup vet check-windows
	$(GO) test -count=1 -timeout 20m ./...

test-short: setup
	$(GO) test -short -count=1 ./...

FUZZTIME ?= 15s
fuzz: setup
	@for spec in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs grep -h -o '^func Fuzz[A-Za-z0-9_]*' | sort -u | sed 's/func //'); do \
	  pkg=$$(dirname $$(grep -rl --include='*_test.go' "^func $$spec(" . | head -1)); \
	  echo "== $$pkg $$spec"; $(GO) test $$pkg -run '^$$' -fuzz "^$$spec$$" -fuzztime $(FUZZTIME) || exit 1; \
	done

bench: build
	$(GO) run ./cmd/kbench

# Screenshots of every station screen in both languages, under Xvfb.
screenshots: build
	@bash scripts/screenshots.sh

# station.exe for Windows: GUI subsystem, icon, version metadata, and a
# manifest that asks for administrator rights (activation needs them).
package-windows: setup
	@bash scripts/package-windows.sh

# The Windows builds compile (mingw cross-compile). Same -trimpath and tags as
# scripts/package-windows.sh, so the two share the Go build cache (a cold
# Windows cgo build of sqlite3 and go-gl takes minutes).
check-windows: setup
	CGO_ENABLED=1 GOOS=windows GOARCH=amd64 CC=x86_64-w64-mingw32-gcc $(GO) build -trimpath -tags release,migrated_fynedo -o /dev/null ./cmd/station
	CGO_ENABLED=1 GOOS=windows GOARCH=amd64 CC=x86_64-w64-mingw32-gcc $(GO) build -trimpath -tags release,migrated_fynedo -o /dev/null ./cmd/syncserver

clean:
	rm -rf $(BIN) .cache
