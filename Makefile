# The course in two commands:  make course  (set up, fetch data, run every notebook)  ·  make test
# In your own environment (conda, say) instead of .venv:  make test PY=python
VENV_PY := .venv/bin/python
PY = $(VENV_PY)
PYTHON3 = python3
STAMP := .venv/.installed
# nbstripout as the course uses it: outputs and counts go, cell ids and notebook metadata stay as committed
NBSTRIPOUT = -m nbstripout --keep-id --unix-newlines
# fails on a Python older than the course's
NEED_311 := import sys; sys.exit(sys.version_info < (3, 11))

.PHONY: course test check lab setup data export clean-nbs hooks bench sweep clean

course: data export
	$(PY) tools/run_notebook.py nbs --save build

test: data
	$(PY) -m pytest

# The quick tests: exp/ in sync, then every test that needs no data and starts no notebook, kernel or torch
# process (offline, under 30 s).
check: setup
	$(PY) tools/notebook2script.py --check
	$(PY) -m pytest -q -m "not course and not data and not kernel and not procs"

# Jupyter Lab at the repository root (nbs/, exp/, tools/, build/ all visible), this Python's folder first on PATH.
# More options for it: make lab LAB_ARGS="--no-browser --port 8890"
lab: setup
	PATH="$$(dirname "$$($(PY) -c 'import sys; print(sys.executable)')"):$$PATH" \
		$(PY) -m jupyter lab --notebook-dir="$(CURDIR)" $(LAB_ARGS)

# A virtual environment with the pinned packages; redone only when the pins change.
$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON3) -c '$(NEED_311)' 2>/dev/null || { echo "make: the course needs Python 3.11 or newer, and $(PYTHON3) is $$($(PYTHON3) --version 2>&1 | head -1); install 3.11 and run: make PYTHON3=python3.11" >&2; exit 1; }
	test -x $(VENV_PY) || $(PYTHON3) -m venv .venv
	@echo "Installing the pinned packages into .venv: a few minutes the first time (torch is large)..."
	$(VENV_PY) -m pip install --disable-pip-version-check -r requirements.txt
	$(VENV_PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

ifeq ($(PY),$(VENV_PY))
setup: $(STAMP)
else
# PY given: use that environment as it is, after checking it can run the course.
setup:
	@$(PY) -c '$(NEED_311)' 2>/dev/null || { echo "make: PY=$(PY) must be Python 3.11 or newer (it is: $$($(PY) --version 2>&1 | head -1))" >&2; exit 1; }
	@$(PY) -c 'import importlib.metadata as m; [m.version(p) for p in ("dl-foundations", "fire", "nbclient", "nbstripout", "torch")]' 2>/dev/null \
		|| { echo "make: PY=$(PY) lacks the course's packages; install them with: $(PY) -m pip install -r requirements.txt && $(PY) -m pip install --no-deps -e ." >&2; exit 1; }
endif

data: setup
	$(PY) tools/fetch_data.py

export: setup
	$(PY) tools/notebook2script.py

# Strip outputs and execution counts from the notebooks (what tests/test_course.py asks before a commit).
clean-nbs: setup
	$(PY) $(NBSTRIPOUT) nbs/*.ipynb

# Opt-in: a git filter that commits notebooks stripped, whatever is in the working copy (nbstripout --uninstall undoes it).
hooks: setup
	$(PY) -m nbstripout --install
	git config filter.nbstripout.clean "\"$$($(PY) -c 'import sys; print(sys.executable)')\" $(NBSTRIPOUT)"
	git config diff.ipynb.textconv "\"$$($(PY) -c 'import sys; print(sys.executable)')\" $(NBSTRIPOUT) -t"

bench: data
	$(PY) tools/bench.py

# The seed sweep behind BENCHMARKS.md: every notebook under seeds 0-19 with 2 torch threads (one kernel at a time),
# then seeds 0-4 with 1 thread (two kernels at a time); about an hour and a half on 2 cores. One notebook:
# make sweep SWEEP_NBS=nbs/09_annealing.ipynb
SWEEP_NBS = nbs
sweep: data
	@mkdir -p build
	$(PY) tools/sweep.py $(SWEEP_NBS) --seeds 20 --threads 2 --jobs 1 --out build/sweep-2threads.json --markdown; a=$$?; \
	$(PY) tools/sweep.py $(SWEEP_NBS) --seeds 5 --threads 1 --jobs 2 --out build/sweep-1thread.json --markdown; b=$$?; \
	exit $$((a || b))

clean:
	rm -rf build .pytest_cache
