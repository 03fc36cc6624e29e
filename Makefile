# The two commands of the README: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint install clean test-min fuzz bench mutate

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all]'
	# editable installs skip data-files (setuptools#3399): enable the Jupyter server extension
	# that creates the OSCAR palette at start, as a wheel install does
	mkdir -p $(VENV)/etc/jupyter/jupyter_server_config.d
	cp jupyter-config/jupyter_server_config.d/oscar_elyra.json $(VENV)/etc/jupyter/jupyter_server_config.d/
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m oscar_elyra.demo

test: $(STAMP)
	$(BIN)/ruff check oscar_elyra tests benchmarks
	$(BIN)/ruff format --check --quiet oscar_elyra tests benchmarks
	# 4 workers on 2 cores: the tests wait on servers and subprocesses about half the time.
	# loadfile: a module's tests run on one worker (its module fixtures, e.g. a cluster, start
	# once); modules are handed out in collection order, those with slow tests first (conftest)
	$(BIN)/python -m pytest -n 4 --dist loadfile --no-loadscope-reorder -q --durations=15

# The property-based and API fuzz tests with many more cases than `make test` (long: about an
# hour on 2 cores): 20,000 per hypothesis property, about 23,000 generated API requests.
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz FUZZ_API_EXAMPLES=1000 $(BIN)/python -m pytest -q -s -p no:cacheprovider --timeout 0 \
		tests/test_fuzz_loaders.py tests/test_fuzz_api.py tests/test_cli_hostile.py

# Every benchmark, each figure beside its anchor measured in the same run, into
# benchmarks/RESULTS.md (under 15 minutes on 2 cores; rclone: apt-get install rclone).
bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

lint: $(STAMP)
	$(BIN)/ruff check oscar_elyra tests benchmarks
	$(BIN)/ruff format --check oscar_elyra tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info

# Lowest declared versions (constraints/minimum.txt) of the core, `local` and `test` deps, in a
# separate venv, running the tests that need no `elyra` extra (Elyra, papermill, kfp, pandas).
MIN_VENV := .venv-min
MIN_TESTS := tests/test_config.py tests/test_auth.py tests/test_faults.py tests/test_client.py \
	tests/test_fdl.py tests/test_local_*.py tests/test_storage.py tests/test_invoke*.py \
	tests/test_cli_cluster.py tests/test_cli_data.py tests/test_cli_run_dispatch.py \
	tests/test_artifacts.py tests/test_components.py tests/test_pipeline_validate.py \
	tests/test_pipeline_palette.py tests/test_pipeline_run.py
# these two need pandas / papermill (the `elyra` extra)
MIN_DESELECT := --deselect tests/test_invoke_async.py::test_map_async_resume_after_partial_run \
	--deselect tests/test_pipeline_run.py::test_notebooks_source_unchanged_and_failing_cell

$(MIN_VENV)/.installed: pyproject.toml constraints/minimum.txt
	test -x $(MIN_VENV)/bin/python || $(PY) -m venv $(MIN_VENV)
	$(MIN_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(MIN_VENV)/bin/python -m pip install --quiet -e '.[local,test]' -c constraints/minimum.txt
	touch $@

test-min: $(MIN_VENV)/.installed
	$(MIN_VENV)/bin/python -m pytest -n 2 -q -p no:cacheprovider $(MIN_TESTS) $(MIN_DESELECT)

# Mutation testing of the core modules (issue 15: invoke, storage, auth, redact, local jobs and
# server, pipeline runner and model; [tool.mutmut] in pyproject.toml lists them and the fast tests
# mutmut may use). benchmarks/mutate.py takes a deterministic sample of MUTATE_SAMPLE mutants per
# module (0 = all), runs mutmut on 2 cores bounded by MUTATE_TIMEOUT seconds, and prints killed /
# survived / timeout per module and the score. MUTANTS selects a subset by mutant-name glob or
# module, e.g. make mutate MUTANTS='oscar_elyra.local.jobs*' or MUTANTS='oscar_elyra.storage
# oscar_elyra.auth'. `mutmut show NAME` shows a survivor. Delete mutants/ after changing [tool.mutmut].
MUTATE_TIMEOUT ?= 5400
MUTATE_SAMPLE ?= 40
MUTANTS ?=
mutate: $(STAMP)
	$(BIN)/python -c 'import mutmut' 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[all,mutate]'
	$(BIN)/python benchmarks/mutate.py --sample $(MUTATE_SAMPLE) --timeout $(MUTATE_TIMEOUT) '$(MUTANTS)'
