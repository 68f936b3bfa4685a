"""The bug of issue 13, reproduced: a notebook's last cell exported its module with `!python ...`.

On a fresh clone a student's Jupyter ran notebook 00's old last cell `!python ../tools/notebook2script.py
00_exports.ipynb`. When the first `python` on their PATH was not the course's (no `fire` installed), the cell
printed `ModuleNotFoundError` and still SUCCEEDED, since `!` ignores exit codes: exp/ silently stayed stale.
The fix is `export_notebook(name)` (notebook 00): it runs the converter with the kernel's own interpreter
and raises when the converter fails.

Here a real kernel runs in a temporary copy of the repository (nbs/, exp/ with notebook 00's module, tools/),
started directly with nbclient, not through tools/run_notebook.py (which puts the right Python first on PATH),
with the student's environment: PATH starts with a `python` that has no fire, and EXP_NO_EXPORT is not set.
The notebooks are numbered 91 and 92, modules no real notebook has, and the kernel's `exp` is checked to be the
copy before anything is exported, so the real exp/ cannot be written.
"""
import os, shutil, sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbformat.v4 import new_code_cell, new_notebook

pytestmark = pytest.mark.kernel  # starts one Jupyter kernel (a few seconds)

from common import ROOT

# The student's notebooks: each ends with the cell that exports it.
STUDENT = ['#export\ndef double(x): return 2 * x', 'double(21)', '!python ../tools/notebook2script.py 91_student.ipynb']
# `%time` is fine for IPython, so the cell runs, but it is not Python: the module would not import.
BROKEN = ['#export\n%time y = 1', 'from exp.nb_00 import export_notebook\nexport_notebook("92_broken.ipynb")']


def fresh_clone(root):
    "The repository's layout under `root`: copies of tools/ and of notebook 00's module, and two notebooks."
    for d in ['nbs', 'exp', 'tools', 'bin']: (root/d).mkdir()
    for tool in (ROOT/'tools').glob('*.py'): shutil.copy(tool, root/'tools')
    for name in ['__init__.py', 'nb_00.py']: shutil.copy(ROOT/'exp'/name, root/'exp')
    for name, cells in [('91_student.ipynb', STUDENT), ('92_broken.ipynb', BROKEN)]:
        nbformat.write(new_notebook(cells=[new_code_cell(c) for c in cells]), root/'nbs'/name)


def python_without_fire(folder):
    "A `python` that fails as one without fire does: this interpreter, but without its site-packages (-S)."
    fake = folder/'python'
    fake.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')
    fake.chmod(0o755)


def student_env(root):
    "The kernel's environment: the fake python first on PATH, the copy's exp/ importable, no EXP_NO_EXPORT."
    env = {k: v for k, v in os.environ.items() if k != 'EXP_NO_EXPORT'}
    env['PATH'] = os.pathsep.join([str(root/'bin'), os.environ.get('PATH', '')])
    env['PYTHONPATH'] = os.pathsep.join(p for p in [str(root), os.environ.get('PYTHONPATH')] if p)
    return {**env, 'EXP_DEVICE': 'cpu'}


@pytest.fixture(scope='module')
def clone(tmp_path_factory):
    "The copy, and `run_cell(source)`: runs a cell in one kernel started in its nbs/; the cell's text output."
    root = tmp_path_factory.mktemp('clone').resolve()
    fresh_clone(root)
    python_without_fire(root/'bin')
    nb = new_notebook()
    # a kernel of this interpreter, whatever `python3` kernelspecs the machine has (as a student's Jupyter would)
    km = AsyncKernelManager(kernel_name='python3', kernel_spec_manager=KernelSpecManager(kernel_dirs=[]))
    client = NotebookClient(nb, timeout=120, km=km, resources={'metadata': {'path': str(root/'nbs')}},
                            extra_arguments=['--IPKernelApp.log_level=ERROR'])

    def run_cell(source):
        nb.cells.append(new_code_cell(source))
        cell = client.execute_cell(nb.cells[-1], len(nb.cells) - 1)
        return ''.join(o.get('text', '') for o in cell.outputs)

    with client.setup_kernel(env=student_env(root)):
        where = run_cell('import exp.nb_00\nprint(exp.nb_00.ROOT)').strip()
        if where != str(root): pytest.fail(f"the kernel imports exp from {where}, not the copy: stopping", pytrace=False)
        yield root, run_cell


def student_cells(root, name):
    return [c.source for c in nbformat.read(root/'nbs'/name, as_version=4).cells]


def test_old_bang_cell_succeeds_but_writes_nothing_and_export_notebook_writes(clone):
    root, run_cell = clone
    module = root/'exp'/'nb_91.py'
    *cells, old_last = student_cells(root, '91_student.ipynb')
    for c in cells: run_cell(c)
    out = run_cell(old_last)  # no CellExecutionError: the cell succeeded...
    assert "ModuleNotFoundError: No module named 'fire'" in out
    assert not module.exists()  # ...and exported nothing: the silent failure
    out = run_cell("exp.nb_00.export_notebook('91_student.ipynb')")
    assert out == 'wrote exp/nb_91.py\n'
    assert 'def double(x): return 2 * x' in module.read_text(encoding='utf-8')


def test_export_notebook_fails_the_cell_with_the_converters_message(clone):
    root, run_cell = clone
    first, last = student_cells(root, '92_broken.ipynb')
    run_cell(first)  # IPython runs the magic happily
    with pytest.raises(CellExecutionError) as e: run_cell(last)
    assert e.value.ename == 'RuntimeError'
    message = f"notebook2script: {root/'nbs'/'92_broken.ipynb'}: cell 0 is not valid Python: invalid syntax (line 1)"
    assert e.value.evalue == f"export of 92_broken.ipynb failed: {message}"
    assert not (root/'exp'/'nb_92.py').exists()
