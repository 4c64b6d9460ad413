# The two commands a newcomer needs: `make run` and `make test`. Everything else is a step
# they depend on. Only Python 3.11+ and make are assumed; the rest lands in .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
GEN := service/gen
DESCRIPTOR := gateway/imagegen.pb

.PHONY: run test lint proto bench fuzz clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m stack

test: lint
	$(PY) -m pytest -n auto -q

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(VENV)/bin/hadolint Dockerfile
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml
	$(PY) deploy/check.py deploy

# Regenerates the committed Python code and the Envoy descriptor set from proto/.
# tests/test_generated_code.py fails when they are stale.
proto: $(STAMP)
	$(PY) -m stack.protogen $(GEN) $(DESCRIPTOR)

# The hostile-input fuzz suite at full size: 4 tests x 2,500 requests through Envoy, each
# test checking it really sent that many (`make test` runs 4 x 500); what was sent, by
# status class, is in .run/fuzz.jsonl. Then schemathesis: 200 examples per documented operation.
fuzz: $(STAMP)
	mkdir -p .run && rm -f .run/fuzz.jsonl
	FUZZ_EXAMPLES=2500 FUZZ_LOG=.run/fuzz.jsonl $(PY) -m pytest tests/e2e/test_fuzz.py -n 4 -q
	OPENAPI_EXAMPLES=200 $(PY) -m pytest tests/e2e/test_openapi_live.py -n 2 -q
	cat .run/fuzz.jsonl

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
