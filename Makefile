# One task runner for people and CI.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.torchbolt-installed

.PHONY: setup demo test test-python test-extension vsix e2e lint bench clean

$(STAMP): pyproject.toml requirements-ci.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-ci.txt
	$(BIN)/python -m pip install -q -c requirements-ci.txt -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

## The main job: train the bundled example with the full default Trainer.
demo: setup
	$(BIN)/torchbolt fit examples/mnist_like.py::DigitClassifier --data examples/mnist_like.py::DigitsDataModule --trainer.max_epochs 3

## Every test: Python (runtime + language server), then the VS Code extension.
test: test-python test-extension

test-python: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

test-extension: setup
	$(MAKE) -C editor-extension ci PYTHON=$(abspath $(BIN)/python)

## The VS Code extension as editor-extension/torchbolt.vsix (Node.js 20 + npm; works offline after `npm ci`).
vsix:
	$(MAKE) -C editor-extension deps build package
	@echo "built editor-extension/torchbolt.vsix: code --install-extension editor-extension/torchbolt.vsix"

lint: setup
	$(BIN)/ruff check runtime lsp tests bench examples

bench: setup
	$(BIN)/python bench/overhead.py
	$(BIN)/python bench/lsp_latency.py

clean:
	rm -rf $(VENV) build *.egg-info
