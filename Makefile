# The two set-up commands: `make run` serves, `make test` runs every test.
# Both create .venv, install the pinned dependencies and obtain opa first.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
GET_OPA := scripts/get-opa.sh
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: run test venv opa redoc browser image-tools image-test check rego-test rule-test pytest lint clean wrk bench bench-quick bench-memory bench-multicore bench-opa bench-cpu

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

opa:
	@$(GET_OPA) >/dev/null

# The /schema API reference page's script (Redoc, pinned, from the npm registry), served by opsgate itself.
redoc:
	@scripts/get-redoc.sh >/dev/null

# The reviewer-page tests drive Debian's Chromium (Playwright cannot download its own browser here).
browser:
	@scripts/need-debian-package.sh chromium chromium "for the browser tests"

# The image test (tests/image/) builds the Dockerfile offline and runs it under Debian's podman with runc;
# mmdebstrap makes its Debian base (cached in ~/.cache/opsgate/image/).
image-tools:
	@scripts/need-debian-package.sh podman podman "for the container image test"
	@scripts/need-debian-package.sh runc runc "for the container image test"
	@scripts/need-debian-package.sh mmdebstrap mmdebstrap "for the container image test"

image-test: venv opa image-tools
	OPSGATE_OPA_BIN="$$($(GET_OPA))" $(BIN)/python -m pytest tests/image

# The first start makes the key that signs the log's checkpoints (var/signing.key, and .pub for auditors).
run: venv opa redoc
	@mkdir -p var
	@test -f var/signing.key || $(BIN)/opsgate keys signing --out var/signing.key
	OPSGATE_OPA_BIN="$$($(GET_OPA))" OPSGATE_SIGNING_KEY_FILE="$${OPSGATE_SIGNING_KEY_FILE:-var/signing.key}" \
	  $(BIN)/opsgate serve --host $(HOST) --port $(PORT) --db var/decisions.db

check: venv opa
	OPSGATE_OPA_BIN="$$($(GET_OPA))" $(BIN)/opsgate check

rego-test: opa
	@set -e; mkdir -p var; opa="$$($(GET_OPA))"; \
	echo "== opa fmt --diff rego/"; "$$opa" fmt --diff --fail rego/; \
	echo "== opa check --strict rego/"; "$$opa" check --strict rego/; \
	echo "== opa fmt --diff, opa test: the entrypoint's contract"; contract=service/adapters/opa/entrypoint_contract_test.rego; \
	"$$opa" fmt --diff --fail "$$contract"; \
	echo "== opa test -v --coverage rego/"; "$$opa" test -v rego/ "$$contract"; \
	"$$opa" test --coverage --threshold 90 rego/ > var/rego-coverage.json \
	  || { echo "rego coverage below 90%"; exit 1; }; \
	$(BIN)/python -c 'import json; print("rego coverage: %.1f%%" % json.load(open("var/rego-coverage.json"))["coverage"])'

# Every shipped ruleset's cases (rules/tests/<ruleset>/) must pass and make every rule fire.
rule-test: venv opa
	OPSGATE_OPA_BIN="$$($(GET_OPA))" $(BIN)/opsgate test --min-coverage 100

pytest: venv opa redoc browser image-tools
	OPSGATE_OPA_BIN="$$($(GET_OPA))" $(BIN)/python -m pytest

test: venv opa
	@mkdir -p var
	@$(MAKE) --no-print-directory lint check rego-test rule-test pytest

# Benchmarks (bench/): opsgate side by side with raw OPA, loopback only, bounded in time; never part of make test.
# wrk comes from Debian, like the browser tests' chromium.
wrk:
	@scripts/need-debian-package.sh wrk wrk "for the benchmarks"

bench: venv opa wrk
	OPSGATE_OPA_BIN="$$($(GET_OPA))" $(BIN)/python -m bench.run

bench-quick: venv opa wrk
	OPSGATE_OPA_BIN="$$($(GET_OPA))" $(BIN)/python -m bench.run --quick

# CPU µs per decision (service, its OPA, all-in) at c=64 on POST /decide/ops, medians over rounds (bench/cpu.py);
# REF=main measures that commit side by side, rounds interleaved: make bench-cpu REF=main
bench-cpu: venv opa wrk
	OPSGATE_OPA_BIN="$$($(GET_OPA))" $(BIN)/python -m bench.cpu $(if $(REF),--ref $(REF))

# Raw OPA and serve --workers 1/2/4/8 pinned (taskset) to 4 and then 8 cores, wrk on cores 12-15:
# bench/results/<date>-multicore.json. On a machine of fewer than 16 cores it says why and measures nothing.
bench-multicore: venv opa wrk
	OPSGATE_OPA_BIN="$$($(GET_OPA))" $(BIN)/python -m bench.multicore

# OPA's own evaluation time for data.opsgate.decision on the Operations inputs (bench/opa_eval.py)
bench-opa: venv opa
	OPSGATE_OPA_BIN="$$($(GET_OPA))" $(BIN)/python -m bench.opa_eval

# RSS over 1,000,000 decisions (about 20 minutes here): bench/results/<date>-memory.json
bench-memory: venv opa wrk
	OPSGATE_OPA_BIN="$$($(GET_OPA))" $(BIN)/python -m bench.memory

# ruff, mypy --strict, and the architecture's import contracts ([tool.importlinter] in pyproject.toml).
lint: venv
	$(BIN)/ruff check service tests bench
	$(BIN)/mypy service
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) var .pytest_cache tests/artifacts
