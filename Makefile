# The README's two commands: `make run` and `make test`. Each sets everything up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test test-full bench tensorboard data clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@

data: $(STAMP)
	$(PY) -m experiments.data

run: data
	$(PY) -m experiments.train --backend both --arch mlp --epochs 3 --run-dir runs/mlp --overwrite
	$(PY) -m experiments.landscape --arch mlp --inits kaiming_normal xavier_uniform --seeds 0 1 --epochs 2 \
		--limit-train 10000 --resolution 21 --eval-samples 2000 --logdir runs/landscape --overwrite

# One BLAS/OpenMP thread for tests: numpy and torch alternate within a test, and their idle threads
# spin against each other on two cores (a full-batch trajectory test: 75 s with two threads each, 8 s with one).
TEST_ENV := OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

test: data
	$(TEST_ENV) $(PY) -m pytest

test-full: data
	$(TEST_ENV) $(PY) -m pytest -m full -rP

BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP)
	$(VENV)/bin/pip install -q -e '.[bench]'
	touch $@

bench: $(BENCH_STAMP)
	$(PY) benchmarks/bench_epoch.py
	$(PY) benchmarks/bench_landscape.py
	$(PY) benchmarks/bench_hvp.py
	$(PY) benchmarks/bench_align.py
	$(PY) benchmarks/bench_sweep.py
	$(PY) benchmarks/bench_gpu.py

# `make tensorboard LOGDIR=runs/mlp PORT=6007`: TensorBoard on http://127.0.0.1:PORT, serving LOGDIR. The link
# it prints sets smoothing to 0: per-epoch charts have a handful of points, which the default 0.6 distorts.
LOGDIR ?= runs
PORT   ?= 6006

tensorboard: $(STAMP)
	@echo "open http://127.0.0.1:$(PORT)/?smoothing=0 (raise Smoothing in Settings for the per-step train/loss)"
	$(VENV)/bin/tensorboard --logdir $(LOGDIR) --port $(PORT) --host 127.0.0.1

clean:
	rm -rf $(VENV) runs

# `make findings`: run each claim whose runs/claims/<claim>/findings.txt is missing (replacing what an interrupted
# run of it left, --overwrite), then write every
# docs/findings/<claim>.md from it (experiments/claims/pages.py). The claims are the intros in docs/findings/.
CLAIMS := $(patsubst docs/findings/%.intro.md,%,$(wildcard docs/findings/*.intro.md))

.PHONY: findings

runs/claims/%/findings.txt: | data
	$(CLAIM_ENV) $(PY) -m experiments.claims.$* --overwrite

# gd_variants times its trainings: one BLAS thread, so that idle threads do not spin against them
runs/claims/gd_variants/findings.txt: CLAIM_ENV := $(TEST_ENV)

findings: $(CLAIMS:%=runs/claims/%/findings.txt)
	$(PY) -m experiments.claims.pages $(CLAIMS)
