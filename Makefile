# Two commands: `make repro` runs the pipeline, `make test` runs the tests (ruff first).
# Both create .venv and install the project on first use. docs/tests.md says more.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# dvc runs each stage's `python` from PATH: put the venv's first.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: repro test lint schema notebook benchmarks install clean

repro: $(VENV)/.installed
	$(BIN)/dvc repro

# The 2018 notebook's own settings (notebook.yaml) as one DVC experiment, `notebook`: one -S per setting.
notebook: $(VENV)/.installed
	$(BIN)/python -c 'import yaml; [print(f"-S experiments.{e}.{k}={v}") for e, s in yaml.safe_load(open("notebook.yaml"))["experiments"].items() for k, v in s.items()]' \
	  | xargs $(BIN)/dvc exp run -n notebook

# The speed measurements (benchmarks/dvc.yaml): as long as a whole pipeline run, and more.
# JAX too: cnn_levers times the JAX backend against TensorFlow.
benchmarks: $(VENV)/.jax
	$(BIN)/dvc repro benchmarks/dvc.yaml

# One test process per core (pytest-xdist). The model and training code is backend-neutral
# Keras 3: its tests run again on JAX.
test: lint $(VENV)/.jax
	$(BIN)/python -m pytest -n auto
	KERAS_BACKEND=jax $(BIN)/python -m pytest -n auto tests/test_models.py tests/test_training.py

# ruff's settings are in pyproject.toml; .pre-commit-config.yaml runs the same on each commit.
lint: $(VENV)/.installed
	$(BIN)/ruff check .

# params.schema.json, the JSON schema editors check params.yaml against, from stages/params.py's models
# (tests/test_params.py checks that it is up to date).
schema: $(VENV)/.installed
	$(BIN)/python -c 'from stages import params, paths; paths.PARAMS_SCHEMA.write_text(params.json_schema())'

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# JAX for the tests and benchmarks only; the stages run on TensorFlow unless KERAS_BACKEND says otherwise.
$(VENV)/.jax: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[jax]'
	touch $@

clean:
	rm -rf $(VENV)
