"""The course itself: the committed notebooks and the exp/ package they export.

Quick checks first (exp/ in sync, modules import and chain, notebooks clean and valid), then every numbered
notebook executed top to bottom in numeric order, each in a fresh kernel (marked `course`: slow;
`pytest -m "not course"` skips them). Executing a notebook may regenerate exp/ from the committed notebooks.
"""
import subprocess, sys
from pathlib import Path

import nbformat
import pytest

import notebook2script, run_notebook

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = notebook2script.numbered_notebooks(ROOT/'nbs')
MODULES = sorted((ROOT/'exp').glob('nb_*.py'), key=lambda p: p.stem)


def by_name(paths): return pytest.mark.parametrize('path', paths, ids=[p.name for p in paths])


def test_exp_is_in_sync_with_the_notebooks():
    r = subprocess.run([sys.executable, 'tools/notebook2script.py', '--check'], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, f"run `python tools/notebook2script.py`:\n{r.stdout}{r.stderr}"


@pytest.mark.parametrize('path', MODULES, ids=[p.stem for p in MODULES])
def test_module_imports_in_a_fresh_interpreter(path):
    r = subprocess.run([sys.executable, '-c', f'import exp.{path.stem}'], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, f"import exp.{path.stem} failed:\n{r.stderr}"


def first_code_line(path):
    "The first line after the header that is neither blank nor a comment."
    lines = path.read_text(encoding='utf-8').split('\n')[1:]
    return next((l for l in lines if l.strip() and not l.lstrip().startswith('#')), '')


@pytest.mark.parametrize('prev,path', list(zip(MODULES, MODULES[1:])), ids=[p.stem for p in MODULES[1:]])
def test_module_starts_by_importing_the_previous_one(prev, path):
    assert first_code_line(path) == f'from exp.{prev.stem} import *', \
        f"exp/{path.name} should begin (in its first export cell) with `from exp.{prev.stem} import *`"


@by_name(NOTEBOOKS)
def test_committed_notebook_has_no_outputs(path):
    cells = nbformat.read(path, as_version=4).cells
    dirty = [i for i, c in enumerate(cells) if c.cell_type == 'code' and (c.outputs or c.execution_count is not None)]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs or execution counts; clear them before committing"


@by_name(NOTEBOOKS)
def test_notebook_is_valid_nbformat(path):
    nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    try: nbformat.validate(nb)
    except nbformat.ValidationError as e: pytest.fail(f"{path.name} is not a valid notebook: {e.message}", pytrace=False)


@pytest.mark.course
@by_name(NOTEBOOKS)
def test_notebook_runs(path):
    [r] = run_notebook.run_notebooks([path])  # device: cuda where torch sees one, else cpu
    if not r.ok: pytest.fail(f"{path.name} failed ({r.seconds:.0f} s) at {r.error}", pytrace=False)
