# pgtopo — `make test` (unit + integration on a real Docker engine), `make lint`, `make demo`, `make bench`,
# `make mutate` (mutation testing of the pure core; no engine).
# On a machine with no Docker engine (as root on Debian/Ubuntu) the engine is installed and
# started, and the local PostgreSQL images are built without a registry; all cached.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_IMAGE ?= $(or $(PGTOPO_IMAGE),pgtopo-local/postgres:18)

.PHONY: test unit properties mutate lint contracts settings-catalog integration demo demo-down engine images schema bench chaos clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

venv: $(STAMP)

MUTATE_STAMP := $(VENV)/.installed-mutate
$(MUTATE_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[test,mutate]'
	touch $@

engine:
	@bash scripts/engine-up.sh

images: engine
	@bash scripts/images.sh

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit -q -m "not integration"

# The property tests, randomized, with twenty times the examples (make test runs them derandomized).
properties: $(STAMP)
	HYPOTHESIS_PROFILE=long $(BIN)/python -m pytest -q tests/unit/test_loader.py tests/unit/test_loader_properties.py \
		tests/unit/test_spec.py

# Mutation testing of the pure core (docs/mutation.md): mutmut ([tool.mutmut] in pyproject.toml) changes
# the planner and its parts, the loader, interpolation, model and parsers one small edit at a
# time and runs the unit tests on each (property tests at a tenth of their examples); then the score per
# module, failing on a survivor docs/mutation.md does not explain.  Not part of `make test`; no engine.
# Results are cached in mutants/: a second run checks only the mutants of functions that changed.
MUTATE_JOBS ?= 2
mutate: $(MUTATE_STAMP)
	HYPOTHESIS_PROFILE=mutate $(BIN)/mutmut run --max-children $(MUTATE_JOBS)
	$(BIN)/python scripts/mutation_report.py

# The import contracts of pyproject.toml's [tool.importlinter]: a pure planner, layers one way.
contracts: $(STAMP)
	$(BIN)/lint-imports

# The CI gate before the tests: ruff (pyproject's [tool.ruff]; no formatter), mypy --strict over
# pgtopo/ ([tool.mypy]), then the import contracts.
lint: $(STAMP)
	$(BIN)/ruff check pgtopo tests bench scripts
	$(BIN)/mypy
	$(BIN)/lint-imports

integration: $(STAMP) images
	$(BIN)/python -m pytest tests/integration -q

test: $(STAMP) images
	$(BIN)/python -m pytest tests -q

# The demo application's password (the file's roles.app.password reads APP_PASSWORD)
APP_PASSWORD ?= demo-app-password

demo: $(STAMP) engine
	@if [ -z "$(PGTOPO_IMAGE)" ]; then PGTOPO_TEST_MAJORS=18 bash scripts/images.sh; fi
	@if [ -z "$(PGTOPO_POOLER_IMAGE)" ]; then bash scripts/build-pooler-image.sh; fi
	APP_PASSWORD=$(APP_PASSWORD) PGTOPO_IMAGE=$(DEMO_IMAGE) $(BIN)/pgtopo apply examples/seed.yaml
	PGTOPO_IMAGE=$(DEMO_IMAGE) $(BIN)/pgtopo status examples/seed.yaml
	@echo
	@echo "App:       PGPASSWORD=$(APP_PASSWORD) psql \"host=127.0.0.1 port=6432 user=app dbname=appdb\""
	@echo "Connect:   PGTOPO_IMAGE=$(DEMO_IMAGE) $(BIN)/pgtopo psql examples/seed.yaml"
	@echo "Check:     docker exec pg-primary psql -U postgres -x -c 'SELECT * FROM pg_stat_replication'"
	@echo "Tear down: PGTOPO_IMAGE=$(DEMO_IMAGE) $(BIN)/pgtopo destroy examples/seed.yaml --yes [--volumes]"

demo-down: $(STAMP)
	PGTOPO_IMAGE=$(DEMO_IMAGE) $(BIN)/pgtopo destroy examples/seed.yaml --yes --volumes

bench: $(STAMP) engine
	@if [ -z "$(PGTOPO_BENCH_IMAGE)" ]; then PGTOPO_TEST_MAJORS=15 bash scripts/images.sh; fi
	$(BIN)/python bench/run.py

# Randomized fault harness (issue 11): `make chaos SEED=1 ROUNDS=50`; LOSSY=0.2 lets a fifth of the
# rounds pass --allow-data-loss; ENGINE_RESTART=1 adds engine restarts (root; disturbs every user of
# the engine); SCENARIO=split-brain|lost-write|disk-full runs one scenario instead.
SEED ?= 1
ROUNDS ?= 50
chaos: $(STAMP) images
	$(BIN)/python -m tests.chaos --seed $(SEED) --rounds $(ROUNDS) $(if $(LOSSY),--lossy $(LOSSY)) \
		$(if $(ENGINE_RESTART),--engine-restart) $(if $(SCENARIO),--scenario $(SCENARIO))

# pgtopo/catalog/settings-<major>.tsv, the settings `validate` checks parameters against, from the images.
settings-catalog: images
	bash scripts/settings-catalog.sh $(foreach m,$(or $(PGTOPO_TEST_MAJORS),13 15 17 18),pgtopo-local/postgres:$(m))

schema: $(STAMP)
	for name in topology plan status history backups; do \
	  $(BIN)/python -c "from pgtopo.schema import schema_text; print(schema_text('$$name'), end='')" \
	    > schemas/$$name.schema.json || exit 1; \
	done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache mutants
