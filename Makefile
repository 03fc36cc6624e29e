# The two commands of the README: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m oscar_elyra.demo

test: $(STAMP)
	$(BIN)/ruff check oscar_elyra tests benchmarks
	$(BIN)/ruff format --check --quiet oscar_elyra tests benchmarks
	$(BIN)/python -m pytest -n 2 -q

lint: $(STAMP)
	$(BIN)/ruff check oscar_elyra tests benchmarks
	$(BIN)/ruff format --check oscar_elyra tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info
