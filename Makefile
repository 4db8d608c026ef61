# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test test-fast test-min gpu-check demo lint bench clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# One process per test file on 2 cores (pytest-xdist): about 10 minutes for all 849 on 2 idle cores (2026-12-02;
# fresh-clone CI runs took 9 min 50 s to 14 min 52 s); `--durations` lists the slowest, to keep it so.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=15

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" -n 2 --dist loadfile

# The minimums of setup.cfg, checked: a separate venv ($(MIN_VENV)) holding each requirement at its minimum's
# release series (scripts/min_requirements.py), and a representative part of the suite run in it. Not in CI:
# it downloads torch 2.3 and its CUDA libraries (a few GB) from the package index.
MIN_VENV ?= .venv-min
MIN_TESTS ?= tests/test_settings.py tests/test_train_parts.py tests/test_train.py tests/test_infer.py \
             tests/test_blend.py tests/test_distributed.py tests/test_resume.py tests/test_models.py
test-min:
	test -x $(MIN_VENV)/bin/python || $(PYTHON) -m venv $(MIN_VENV)
	$(MIN_VENV)/bin/python -m pip install -q --upgrade pip packaging
	$(MIN_VENV)/bin/python scripts/min_requirements.py > $(MIN_VENV)/minimums.txt
	$(MIN_VENV)/bin/python -m pip install -q -c $(MIN_VENV)/minimums.txt -e '.[dev]'
	$(MIN_VENV)/bin/python -m pip list --format=freeze | grep -iE '^(torch|torchvision|timm|albumentations|numpy|pandas)=='
	$(MIN_VENV)/bin/python -m pytest -q -m "not slow" -n 2 --dist loadfile -p no:cacheprovider $(MIN_TESTS)

# On a CUDA machine: the suite, the GPU throughput benchmark, fan-out and torchrun; one summary table.
gpu-check: $(STAMP)
	PYTHON=$(abspath $(BIN))/python bash scripts/gpu_check.sh

lint: $(STAMP)
	$(BIN)/ruff check kit tests scripts

demo: $(STAMP)
	PATH=$(abspath $(BIN)):$$PATH bash scripts/demo.sh

bench: $(STAMP)
	$(BIN)/python scripts/bench_foundation.py
	$(BIN)/python scripts/bench_loader.py
	$(BIN)/python scripts/bench_blend.py
	$(BIN)/python scripts/bench_train.py throughput --threads 1

clean:
	rm -rf demo runs folds/*.csv submissions/*.csv submissions/*.json submissions/*.png
