# The only entry points a newcomer needs: run, test, lint, bench.
CARGO ?= cargo
ARGS ?=

.PHONY: run test lint bench build fuzz fuzz-smoke

build:
	$(CARGO) build --release --bins

## Starts Railyard on its embedded default: ./.railyard/repo.git, pushed to the local bare ./.railyard/remote.git.
run:
	$(CARGO) run --release --bin railyard-api -- $(ARGS)

## Unit tests and end-to-end tests (which start the real binaries, so those are built first).
test:
	$(CARGO) build --bins
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --workspace --no-fail-fast; \
	else \
		$(CARGO) test --workspace --no-fail-fast; \
	fi
	$(CARGO) test --workspace --doc

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## Benchmarks with baselines from the same run (figures: docs/benchmarks.md). The API benches start the release binaries.
bench:
	$(CARGO) build --release --bins
	$(CARGO) bench --workspace

FUZZ_TARGETS = names trailers release_upload flow_template
FUZZ_SECONDS ?= 600

## Fuzzing with cargo-fuzz (nightly): each target for FUZZ_SECONDS, corpus in fuzz/corpus/<target>.
fuzz:
	cd fuzz && for t in $(FUZZ_TARGETS); do cargo +nightly fuzz run -O $$t corpus/$$t -- -max_total_time=$(FUZZ_SECONDS) || exit 1; done

## The bounded run CI does: 20 s per target.
fuzz-smoke:
	$(MAKE) fuzz FUZZ_SECONDS=20
