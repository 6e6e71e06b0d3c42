# Two entry points, each doing its own set-up from a fresh clone:
#   make demo   trains and evaluates the reference Bayesian neural network on MNIST
#   make test   runs the test suite
#   make vae    trains the example VAE (models/vae_mnist.py) on binarised MNIST
#   make docs   builds the documentation site into docs/_build/html
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

.PHONY: demo test test-lowest test-lowest-torch vae lint docs setup clean

setup: $(STAMP)

# Run a script (echoing it); a usage error (exit status 2) gets a reminder of how make passes
# the script's flags on: $(1) the command, $(2) the variable, $(3) the target.
define run_script
@echo "$(1)"
@$(1) || { status=$$?; if [ $$status -eq 2 ]; then echo "make: pass the script's flags in $(2), e.g. make $(3) $(2)=--overwrite to replace an earlier run" >&2; fi; exit $$status; }
endef

$(STAMP): pyproject.toml Makefile
	@echo "Setting up $(VENV): $(TORCH_SPEC), Pyro and the test tools (a few minutes the first time)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --progress-bar off "$(TORCH_SPEC)"
	@echo "Installed $(TORCH_SPEC); installing pyro-logits and its dependencies"
	$(BIN)/python -m pip install --quiet --progress-bar off -e ".[test]" "$(TORCH_SPEC)"
	touch $(STAMP)
	@echo "$(VENV) is ready"

demo: $(STAMP)
	$(call run_script,$(BIN)/python models/bnn_mnist.py $(if $(DATA_DIR),--data-dir $(DATA_DIR)) $(DEMO_ARGS),DEMO_ARGS,demo)

vae: $(STAMP)
	$(call run_script,$(BIN)/python models/vae_mnist.py $(if $(DATA_DIR),--data-dir $(DATA_DIR)) $(VAE_ARGS),VAE_ARGS,vae)

test: $(STAMP)
	$(BIN)/python -m pytest $(TEST_ARGS)

# The core and BNN tests against the lowest Pyro the bounds allow, installed beside .venv's own.
LOWEST_PYRO ?= pyro-ppl==1.9.0
CORE_TESTS := tests/test_likelihoods.py tests/test_observe.py tests/test_checks.py \
	tests/test_messenger.py tests/test_losses.py tests/test_convert.py tests/test_metrics.py \
	tests/test_parametrisations.py tests/test_pyro_examples.py tests/test_compile.py tests/bnn
test-lowest: $(STAMP)
	rm -rf $(VENV)/lowest
	$(BIN)/python -m pip install --quiet --progress-bar off --no-deps --target $(VENV)/lowest "$(LOWEST_PYRO)"
	PYTHONPATH=$(VENV)/lowest $(BIN)/python -c "import pyro; print('testing with Pyro', pyro.__version__)"
	PYTHONPATH=$(VENV)/lowest $(BIN)/python -m pytest -q -p no:cacheprovider -m "not mnist" $(CORE_TESTS)

# The same tests on the lowest torch the bounds allow, with the lowest Pyro, in a venv of their
# own (PyPI's torch wheel of that version, with its CUDA libraries: a large download).
LOWEST_TORCH ?= torch==2.7.1
LOWEST_VENV ?= .venv-lowest
test-lowest-torch:
	test -x $(LOWEST_VENV)/bin/python || $(PYTHON) -m venv $(LOWEST_VENV)
	$(LOWEST_VENV)/bin/python -m pip install --quiet --progress-bar off "$(LOWEST_TORCH)" \
		"$(LOWEST_PYRO)" "numpy<2" pytest tqdm matplotlib
	$(LOWEST_VENV)/bin/python -m pip install --quiet --progress-bar off --no-deps -e . -e lint
	$(LOWEST_VENV)/bin/python -c "import torch, pyro; print('testing with torch', torch.__version__, 'and Pyro', pyro.__version__)"
	$(LOWEST_VENV)/bin/python -m pytest -q -p no:cacheprovider -m "not mnist" $(CORE_TESTS)

lint: $(STAMP)
	$(BIN)/ruff check src lint tests models benchmarks docs
	$(BIN)/ruff format --check src lint tests models benchmarks docs
	$(BIN)/mypy

# The documentation site: the results page from the reference runs' JSON, then Sphinx, warnings
# as errors, offline (docs/_inventories holds what intersphinx links to).
docs: $(STAMP)
	$(BIN)/python docs/build_results.py
	$(BIN)/python -m sphinx -W --keep-going -q -b html docs docs/_build/html
	@echo "docs/_build/html/index.html"

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .ruff_cache .hypothesis
