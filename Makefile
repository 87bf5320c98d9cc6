# eakte: `make run` starts the service with embedded defaults, `make test` runs every check.
# Both install what is missing first (Debian packages when run as root, the virtual environment).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | sha256sum | cut -c1-12)

.PHONY: run test lint typecheck pytest system-deps-run system-deps-test venv clean

run: system-deps-run $(STAMP)
	$(BIN)/eakte db upgrade
	@echo
	@echo "eakte runs at http://127.0.0.1:8000  (API docs: http://127.0.0.1:8000/docs)"
	@echo "Set up an org unit and a file plan item, then get a token for a clerk:"
	@echo "  $(BIN)/eakte orgunit add 10 Hauptamt"
	@echo "  $(BIN)/eakte plan add 01.02 Organisation --retention-years 10 --archive-value V"
	@echo "  $(BIN)/eakte token --sub anna --role clerk --unit 10"
	@echo
	exec $(BIN)/eakte serve

test: system-deps-test $(STAMP) lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

system-deps-run:
	scripts/system-deps run

system-deps-test:
	scripts/system-deps test

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
