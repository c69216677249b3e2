# vidra: `make demo` runs the main job on embedded defaults; `make test` runs every test.
# Both create .venv on first use (torch first, pinned, then vidra with its extras).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
EXTRAS ?= decord,torchcodec,postgres,ray,train,dev

.PHONY: setup demo test check bench clean system-run system-test vidra

setup: $(VENV)/.installed system-run

# System packages (apt): FFmpeg's shared libraries for torchcodec; PostgreSQL for the tests.
# Checked on every run (cheap), installed where missing (root or passwordless sudo).
system-run:
	@bash infra/scripts/system_deps.sh run || echo "(continuing: only the torchcodec backend needs FFmpeg's libraries)"

system-test:
	@bash infra/scripts/system_deps.sh test

# torch and its libraries take ~7 GiB: a full disk is said before pip starts, not half-way
$(VENV)/.installed: pyproject.toml
	@ls -d $(VENV)/lib/python*/site-packages/torch >/dev/null 2>&1 || \
		bash infra/scripts/disk_check.sh $(VENV) 8 "installing the environment ($(VENV))"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e '.[$(EXTRAS)]'
	touch $@

demo: setup
	$(BIN)/vidra demo

# any vidra command without activating the environment: make vidra ARGS="jobs --status done"
vidra: setup
	@$(BIN)/vidra $(ARGS)

test: $(VENV)/.installed system-test
	bash infra/scripts/run_tests.sh

check: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: setup
	$(BIN)/python bench/decode.py

clean:
	rm -rf $(VENV) demo_out .pytest_cache .mypy_cache .ruff_cache
