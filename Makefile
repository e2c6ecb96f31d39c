# cardops: `make run` starts everything on SQLite, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format install lock serve bench bench-audit bench-access bench-terminals bench-gateway bench-settlement bench-risk clean test-postgres

$(STAMP): requirements.lock pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/cardops db upgrade
	$(BIN)/cardops demo --if-empty
	$(BIN)/cardops serve --with-gateway --with-issuer-sim

test: $(STAMP)
	$(BIN)/pytest -q

test-postgres: $(STAMP)
	CARDOPS_TEST_POSTGRES_URL=$${CARDOPS_TEST_POSTGRES_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test} $(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests bench migrations
	$(BIN)/ruff format --check src tests bench migrations
	$(BIN)/mypy src

format: $(STAMP)
	$(BIN)/ruff check --fix src tests bench migrations
	$(BIN)/ruff format src tests bench migrations

# Re-pin every dependency (runtime and dev) after editing pyproject.toml.
lock:
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^cardops' > requirements.lock

bench: bench-audit bench-access bench-terminals bench-gateway bench-settlement bench-risk

bench-audit: $(STAMP)
	$(BIN)/python bench/audit_chain.py
	CARDOPS_BENCH_DATABASE_URL=$${CARDOPS_BENCH_POSTGRES_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test} $(BIN)/python bench/audit_chain.py --n 1000

bench-access: $(STAMP)
	$(BIN)/python bench/access_decisions.py
	CARDOPS_BENCH_DATABASE_URL=$${CARDOPS_BENCH_POSTGRES_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test} $(BIN)/python bench/access_decisions.py --cards 200000

bench-terminals: $(STAMP)
	$(BIN)/python bench/terminals_import.py
	$(BIN)/python bench/terminals_search.py
	CARDOPS_BENCH_DATABASE_URL=$${CARDOPS_BENCH_POSTGRES_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test} $(BIN)/python bench/terminals_import.py
	CARDOPS_BENCH_DATABASE_URL=$${CARDOPS_BENCH_POSTGRES_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test} $(BIN)/python bench/terminals_search.py

bench-gateway: $(STAMP)
	$(BIN)/python bench/gateway_bench.py
	$(BIN)/python bench/gateway_bench.py --database postgres

bench-settlement: $(STAMP)
	$(BIN)/python bench/settlement_bench.py
	$(BIN)/python bench/settlement_bench.py --database postgres

bench-risk: $(STAMP)
	$(BIN)/python bench/risk_bench.py
	$(BIN)/python bench/risk_bench.py --redis

clean:
	rm -rf $(VENV) var
