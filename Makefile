# Two entry points, each doing its own set-up from a fresh clone:
#   make demo   trains and evaluates the reference Bayesian neural network on MNIST
#   make test   runs the test suite
#   make vae    trains the example VAE (models/vae_mnist.py) on binarised MNIST
# Override TORCH_SPEC to pick another torch build, e.g. make test TORCH_SPEC='torch==2.5.1'.

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
DEMO_ARGS ?=
VAE_ARGS ?=
DATA_DIR ?=
TEST_ARGS ?=

BIN := $(VENV)/bin
STAMP := $(VENV)/.pyro-logits-installed

.PHONY: demo test vae lint setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[test]" "$(TORCH_SPEC)"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python models/bnn_mnist.py $(if $(DATA_DIR),--data-dir $(DATA_DIR)) $(DEMO_ARGS)

vae: $(STAMP)
	$(BIN)/python models/vae_mnist.py $(if $(DATA_DIR),--data-dir $(DATA_DIR)) $(VAE_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(TEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests models benchmarks
	$(BIN)/ruff format --check src tests models benchmarks

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .ruff_cache .hypothesis
