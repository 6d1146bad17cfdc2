# The only entry points a newcomer needs: run, test, lint, bench.
CARGO ?= cargo
ARGS ?=

.PHONY: run test lint bench build fuzz fuzz-smoke helm-check api-fuzz

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
	# The long replica kill loop: 100 kills of random replicas out of 3 under 500 writers (make test runs 20).
	RAILYARD_REPLICA_KILLS=100 $(CARGO) test --release -p railyard-tests --test replicas killing_random_replicas -- --nocapture

FUZZ_TARGETS = names trailers release_upload flow_template
FUZZ_SECONDS ?= 600

## Fuzzing with cargo-fuzz (nightly): each target for FUZZ_SECONDS, corpus in fuzz/corpus/<target>.
fuzz:
	cd fuzz && for t in $(FUZZ_TARGETS); do cargo +nightly fuzz run -O $$t corpus/$$t -- -max_total_time=$(FUZZ_SECONDS) || exit 1; done

## The bounded run CI does: 20 s per target.
fuzz-smoke:
	$(MAKE) fuzz FUZZ_SECONDS=20

## Lints and renders the Helm chart with Helm's own engine (PyPI helm-python-sdk; no helm binary) and validates the
## rendered objects against the Kubernetes schemas, the root Argo CD Application against Argo CD's (scripts/helm-check.py).
helm-check:
	python3 -m venv .venv-tools
	.venv-tools/bin/pip install --quiet helm-python-sdk==0.2.2 kubernetes-validate==1.37.0 PyYAML==6.0.3
	[ -d tests/clients/argocd/node_modules ] || (cd tests/clients/argocd && npm ci --silent --no-audit --no-fund)
	.venv-tools/bin/python scripts/helm-check.py

## Schema-driven API fuzzing with schemathesis against /api/openapi.json on 127.0.0.1 (bounded; 0 server errors).
api-fuzz:
	scripts/api-fuzz.sh
