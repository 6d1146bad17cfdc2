# The only entry points a newcomer needs: run, test, lint, bench.
CARGO ?= cargo
ARGS ?=

.PHONY: run test lint bench build

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

bench:
	$(CARGO) bench --workspace
