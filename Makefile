# glassbox: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
# The suite runs under a non-UTC zone on purpose: every time-window check must
# hold whatever the host's TZ (SPEC §2).
TEST_TZ ?= America/New_York

.PHONY: run test unit e2e bench lint bootstrap check-prebuilt demo-data

bootstrap:
	@scripts/bootstrap

## Run glassbox on fresh demo data (release build).
run: bootstrap
	cargo build --release
	$(TARGET_DIR)/release/glassbox demo --data-dir ./demo-data

## Everything CI checks: unit + API tests, then the browser tests.
test: bootstrap check-prebuilt unit e2e

unit:
	TZ=$(TEST_TZ) cargo test --all-targets

e2e:
	@test -x $(TARGET_DIR)/debug/glassbox || cargo build
	cd e2e && npm ci --no-audit --no-fund --silent && GLASSBOX_BIN=$(abspath $(TARGET_DIR))/debug/glassbox npm test

## Release-build benchmarks with printed figures (see docs/operations.md).
bench: bootstrap
	cargo build --release
	scripts/bench $(TARGET_DIR)/release/glassbox

lint: bootstrap
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings

## DuckDB must come from vendor/duckdb, never a 45-minute source build that a
## feature (`json`, `parquet`, `bundled`) slipped in.
check-prebuilt:
	@if cargo tree -e features -i libduckdb-sys 2>/dev/null | grep -q 'libduckdb-sys feature "bundled"'; then \
	  echo "libduckdb-sys is built bundled (from source): remove the feature that enables it"; exit 1; \
	else echo "check-prebuilt: libduckdb-sys links the prebuilt library"; fi
