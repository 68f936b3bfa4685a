# The course in two commands:  make course  (set up, fetch data, run every notebook)  ·  make test
PY := .venv/bin/python
STAMP := .venv/.installed

.PHONY: course test lab setup data export bench clean

course: data export
	$(PY) tools/run_notebook.py nbs --save build

test: data
	$(PY) -m pytest

lab: setup
	.venv/bin/jupyter lab nbs

# A virtual environment with the pinned packages; redone only when the pins change.
$(STAMP): requirements.txt pyproject.toml
	python3 -m venv .venv
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

setup: $(STAMP)

data: setup
	$(PY) tools/fetch_data.py

export: setup
	$(PY) tools/notebook2script.py

bench: data
	$(PY) tools/bench.py

clean:
	rm -rf build .pytest_cache
