"""tools/run_notebook.py: runs tiny notebooks built in a temporary folder, through its function and its CLI.

Each run starts a real kernel (a second or two), so every test runs as few notebooks as it can.
"""
import os, subprocess, sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

import run_notebook

TOOL = Path(run_notebook.__file__)


def make_nb(folder, name, *sources):
    "Write a notebook: strings become code cells, cells (e.g. new_markdown_cell) are kept."
    cells = [new_code_cell(s) if isinstance(s, str) else s for s in sources]
    path = Path(folder)/name
    nbformat.write(new_notebook(cells=cells), path)
    return path


def cli(*args, cwd):
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)], cwd=cwd, capture_output=True, text=True)


def test_passing_notebook_cli(tmp_path):
    nb = make_nb(tmp_path, '01_ok.ipynb', new_markdown_cell('# A title'), 'x = 6 * 7', 'assert x == 42\nprint(x)')
    before = nb.read_bytes()
    r = cli(nb.name, '--device', 'cpu', cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    line = next(l for l in r.stdout.splitlines() if l.startswith('01_ok.ipynb'))
    assert line.split()[1] == 'ok' and line.endswith(' s')
    assert '1 notebook, 0 failed' in r.stdout
    assert nb.read_bytes() == before, "running must not write the committed notebook"
    assert sorted(p.name for p in tmp_path.iterdir()) == ['01_ok.ipynb'], "nothing written next to it"


def test_failing_notebook_cli_reports_cell_source_and_traceback(tmp_path):
    make_nb(tmp_path, '02_bad.ipynb', 'x = 1', new_markdown_cell('Now divide'), 'def f(y):\n    return y / 0\nf(x)', 'print("never")')
    r = cli('02_bad.ipynb', '--device', 'cpu', cwd=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert '02_bad.ipynb' in r.stdout and 'FAILED' in r.stdout
    assert 'cell 2' in r.stdout
    assert '    def f(y):\n        return y / 0\n    f(x)' in r.stdout
    assert 'ZeroDivisionError' in r.stdout and 'Traceback' in r.stdout
    assert '\x1b[' not in r.stdout + r.stderr
    assert '1 notebook, 1 failed' in r.stdout


def test_function_returns_results_with_error_text(tmp_path):
    ok = make_nb(tmp_path, '01_ok.ipynb', 'pass')
    bad = make_nb(tmp_path, '02_bad.ipynb', 'raise ValueError("broken on purpose")')
    results = run_notebook.run_notebooks([ok, bad], device='cpu')
    assert [(r.path, r.ok) for r in results] == [(ok, True), (bad, False)]
    assert results[0].error == '' and results[0].seconds > 0
    assert results[1].error.startswith('cell 0:') and 'ValueError: broken on purpose' in results[1].error
    assert '\x1b[' not in results[1].error


def test_cell_timeout_fails_quickly(tmp_path):
    nb = make_nb(tmp_path, '01_slow.ipynb', 'x = 1', 'import time; time.sleep(60)')
    [r] = run_notebook.run_notebooks([nb], device='cpu', timeout=2)
    assert not r.ok and r.seconds < 40  # kernel start-up included: slow on a busy machine
    assert r.error.startswith('cell 1:') and 'timed out' in r.error and 'time.sleep(60)' in r.error


def test_jobs_run_in_parallel_and_report_in_notebook_order(tmp_path):
    threads = os.environ.get('OMP_NUM_THREADS') or str(max(1, (os.cpu_count() or 1) // 2))
    share = f'import os; assert os.environ["OMP_NUM_THREADS"] == "{threads}"'  # two kernels share the cores
    make_nb(tmp_path, '01_a.ipynb', 'x = 1', share)
    make_nb(tmp_path, '02_b.ipynb', 'x = 2', share)
    make_nb(tmp_path, 'scratch.ipynb', 'raise SystemExit("not numbered: never run from a folder")')
    r = cli('.', '--jobs', '2', '--device', 'cpu', cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = [l.split() for l in r.stdout.splitlines() if '.ipynb' in l]
    assert [(l[0], l[1]) for l in lines] == [('01_a.ipynb', 'ok'), ('02_b.ipynb', 'ok')]


@pytest.mark.skipif(run_notebook.cuda_available(), reason="this machine has CUDA")
def test_device_cuda_without_cuda_is_a_usage_error(tmp_path, capsys):
    nb = make_nb(tmp_path, '01_mark.ipynb', 'open("ran.txt", "w").write("ran")')
    with pytest.raises(SystemExit) as e: run_notebook.main(str(nb), device='cuda')
    out, err = capsys.readouterr()
    assert e.value.code == 2 and out == ''
    assert err.count('\n') == 1 and 'cuda' in err and 'Traceback' not in err
    assert not (tmp_path/'ran.txt').exists()


def test_unknown_device_is_a_usage_error(tmp_path):
    make_nb(tmp_path, '01_x.ipynb', 'pass')
    with pytest.raises(run_notebook.RunError, match='tpu'): run_notebook.run_notebooks([tmp_path/'01_x.ipynb'], device='tpu')


def test_default_device_follows_torch():
    assert run_notebook.pick_device() == ('cuda' if run_notebook.cuda_available() else 'cpu')


def test_kernel_sees_device_folder_and_this_python(tmp_path):
    (tmp_path/'data.txt').write_text('beside the notebook')
    nb = make_nb(tmp_path, '01_env.ipynb',
                 'import os\nassert os.environ["EXP_DEVICE"] == "cpu", os.environ.get("EXP_DEVICE")',
                 'from pathlib import Path\nassert Path("data.txt").read_text() == "beside the notebook", os.getcwd()',
                 f'import sys\nassert sys.executable == {sys.executable!r}, sys.executable',
                 f'out = !python -c "import sys; print(sys.executable)"\nassert out == [{sys.executable!r}], out')
    [r] = run_notebook.run_notebooks([nb], device='cpu')
    assert r.ok, r.error


def test_save_writes_ipynb_and_html_also_for_failures(tmp_path):
    nbs, out = tmp_path/'nbs', tmp_path/'runs'
    nbs.mkdir()
    nb = make_nb(nbs, '01_plot.ipynb', 'print("hello from the kernel")', '1/0', 'print("not reached")')
    before = nb.read_bytes()
    r = cli('nbs', '--save', 'runs', '--device', 'cpu', cwd=tmp_path)
    assert r.returncode == 1
    assert sorted(p.name for p in out.iterdir()) == ['01_plot.html', '01_plot.ipynb']
    saved = nbformat.read(out/'01_plot.ipynb', as_version=4)
    assert saved.cells[0].outputs[0].text == 'hello from the kernel\n'
    assert saved.cells[1].outputs[0].ename == 'ZeroDivisionError'
    assert saved.cells[2].outputs == []
    html = (out/'01_plot.html').read_text(encoding='utf-8')
    assert 'hello from the kernel' in html and 'ZeroDivisionError' in html
    assert nb.read_bytes() == before and sorted(p.name for p in nbs.iterdir()) == ['01_plot.ipynb']


def test_save_into_the_notebooks_folder_is_refused(tmp_path):
    nb = make_nb(tmp_path, '01_x.ipynb', 'pass')
    with pytest.raises(run_notebook.RunError, match='overwrite'):
        run_notebook.run_notebooks([nb], device='cpu', save=tmp_path)


BAD = {'missing': None, 'not_json': '{"cells": [', 'not_a_notebook': '{"cells": 3}', 'a_list': '[1, 2]'}


@pytest.mark.parametrize('kind', BAD)
def test_bad_path_is_one_line_exit_2_before_running_anything(tmp_path, capsys, kind):
    good = make_nb(tmp_path, '01_mark.ipynb', 'open("ran.txt", "w").write("ran")')
    bad = tmp_path/'02_bad.ipynb'
    if BAD[kind] is not None: bad.write_text(BAD[kind])
    with pytest.raises(SystemExit) as e: run_notebook.main(str(good), str(bad), device='cpu')
    out, err = capsys.readouterr()
    assert e.value.code == 2 and out == ''
    assert err.count('\n') == 1 and '02_bad.ipynb' in err and 'Traceback' not in err
    assert not (tmp_path/'ran.txt').exists()


def test_bad_path_cli(tmp_path):
    make_nb(tmp_path, '01_mark.ipynb', 'open("ran.txt", "w").write("ran")')
    r = cli('01_mark.ipynb', 'missing.ipynb', cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == ''
    assert r.stderr == 'run_notebook: missing.ipynb: no such notebook\n'
    assert not (tmp_path/'ran.txt').exists()


def test_folder_without_numbered_notebooks_is_a_usage_error(tmp_path):
    make_nb(tmp_path, 'scratch.ipynb', 'pass')
    with pytest.raises(run_notebook.RunError, match='no numbered notebooks'): run_notebook.find_notebooks([tmp_path])


def test_folder_expands_to_numbered_notebooks_in_order(tmp_path):
    for name in ['10_z.ipynb', '02a_b.ipynb', '02_a.ipynb', 'notes.ipynb', '01_x.txt']: make_nb(tmp_path, name, 'pass')
    assert [p.name for p in run_notebook.find_notebooks([tmp_path])] == ['02_a.ipynb', '02a_b.ipynb', '10_z.ipynb']


def test_no_argument_means_the_course_folder():
    assert run_notebook.NBS == Path(run_notebook.__file__).resolve().parent.parent/'nbs'
