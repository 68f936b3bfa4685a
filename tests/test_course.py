"""The course itself: the committed notebooks and the exp/ package they export.

Quick checks first (exp/ in sync, modules import and chain, notebooks clean and valid), then every numbered
notebook executed top to bottom in numeric order, each in a fresh kernel (marked `course`: slow;
`pytest -m "not course"` skips them). The runner executes in-memory copies with EXP_NO_EXPORT set, so running
the notebooks never rewrites exp/: the sync check above is the one guard.
"""
import subprocess, sys
from pathlib import Path

import nbformat
import pytest

import notebook2script, run_notebook
from common import ROOT
NOTEBOOKS = notebook2script.numbered_notebooks(ROOT/'nbs')
MODULES = sorted((ROOT/'exp').glob('nb_*.py'), key=lambda p: p.stem)


def by_name(paths): return pytest.mark.parametrize('path', paths, ids=[p.name for p in paths])


def test_exp_is_in_sync_with_the_notebooks():
    r = subprocess.run([sys.executable, 'tools/notebook2script.py', '--check'], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, f"run `python tools/notebook2script.py`:\n{r.stdout}{r.stderr}"


@pytest.mark.procs
def test_modules_import_in_order_in_a_fresh_interpreter():
    "One interpreter (torch loads once) imports nb_00, nb_01, ... in turn: as each starts by importing the one"
    " before it (checked below), each one meets exactly what importing it alone would."
    names = [f'exp.{p.stem}' for p in MODULES]
    script = 'import importlib\nfor name in %r:\n    print(name, flush=True)\n    importlib.import_module(name)' % names
    r = subprocess.run([sys.executable, '-c', script], cwd=ROOT, capture_output=True, text=True)
    failed = r.stdout.split()[-1] if r.stdout.split() else names[0]
    assert r.returncode == 0, f"import {failed} failed:\n{r.stderr}"


def first_code_line(path):
    "The first line after the header that is neither blank nor a comment."
    lines = path.read_text(encoding='utf-8').split('\n')[1:]
    return next((l for l in lines if l.strip() and not l.lstrip().startswith('#')), '')


@pytest.mark.parametrize('prev,path', list(zip(MODULES, MODULES[1:])), ids=[p.stem for p in MODULES[1:]])
def test_module_starts_by_importing_the_previous_one(prev, path):
    assert first_code_line(path) == f'from exp.{prev.stem} import *', \
        f"exp/{path.name} should begin (in its first export cell) with `from exp.{prev.stem} import *`"


def committed(path):
    "The notebook's text as git has it staged (the index): what a commit takes. The file itself outside git."
    try: r = subprocess.run(['git', 'show', f':{path.relative_to(ROOT).as_posix()}'], cwd=ROOT, capture_output=True)
    except FileNotFoundError: r = None  # no git at all
    # not a checkout (a zip of the course) or a notebook not yet added: the file is what will be committed
    return r.stdout.decode('utf-8') if r and r.returncode == 0 else path.read_text(encoding='utf-8')


def dirty_cells(text):
    "Indices of code cells that carry outputs or execution counts."
    cells = nbformat.reads(text, as_version=4).cells
    return [i for i, c in enumerate(cells) if c.cell_type == 'code' and (c.outputs or c.execution_count is not None)]


@by_name(NOTEBOOKS)
def test_committed_notebook_has_no_outputs(path):
    "Checks the staged notebook, not the working copy: outputs from running it in Jupyter are fine until committed."
    dirty = dirty_cells(committed(path))
    assert not dirty, (f"{path.name}: cells {dirty} carry outputs or execution counts in what git would commit; "
                       f"run `make clean-nbs` and `git add` the notebook (`make hooks` does this at every commit)")


def test_cleanliness_check_sees_the_index_not_the_working_copy(tmp_path, monkeypatch):
    "In a scratch repository: outputs in the working copy pass, staged outputs fail, no git falls back to the file."
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('1 + 1')])
    path = tmp_path/'nbs'/'01_a.ipynb'
    path.parent.mkdir()
    nbformat.write(nb, path)
    monkeypatch.setattr(sys.modules[__name__], 'ROOT', tmp_path)
    assert dirty_cells(committed(path)) == []                 # no git repository here: the file itself
    git = lambda *args: subprocess.run(['git', '-C', str(tmp_path), *args], check=True, capture_output=True)
    try: git('init', '-q'); git('add', 'nbs/01_a.ipynb')
    except (FileNotFoundError, subprocess.CalledProcessError): pytest.skip('git is not usable here')
    nb.cells[0].outputs, nb.cells[0].execution_count = [nbformat.v4.new_output('execute_result', {'text/plain': '2'})], 1
    nbformat.write(nb, path)
    assert dirty_cells(path.read_text(encoding='utf-8')) == [0] and dirty_cells(committed(path)) == []
    git('add', 'nbs/01_a.ipynb')
    assert dirty_cells(committed(path)) == [0]


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
