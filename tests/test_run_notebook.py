"""tools/run_notebook.py: runs tiny notebooks built in a temporary folder, through its function and its CLI.

Each run starts a real kernel (a second or two), so every test runs as few notebooks as it can. Command lines
that run no notebook go through `cli.run` in this process (the `in_process` fixture of conftest.py): a second
interpreter would spend seconds importing Jupyter again. Those that run one use the tool's own process.
"""
import os, subprocess, sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_markdown_cell

import cli, run_notebook
from common import ROOT
from conftest import make_nb

TOOL = Path(run_notebook.__file__)


def run_cli(*args, cwd, env=None):
    "The tool as a student runs it; `env` adds to (or, with None values, removes from) our environment."
    full = {k: v for k, v in {**os.environ, **(env or {})}.items() if v is not None}
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          env=full)


@pytest.fixture
def run_here(in_process, monkeypatch):
    "`run_here(folder, *args)`: the command line in-process, from `folder`: .returncode, .stdout, .stderr."
    def run(folder, *args):
        monkeypatch.chdir(folder)
        return in_process(run_notebook.main, 'run_notebook', *args)
    return run


def assert_usage_error(r, *words):
    "Exit 2, nothing on stdout, one line on stderr naming `words`, no traceback."
    assert r.returncode == 2 and r.stdout == '', r.stdout + r.stderr
    assert r.stderr.startswith('run_notebook: ') and r.stderr.count('\n') == 1, r.stderr
    assert all(w in r.stderr for w in words) and 'Traceback' not in r.stderr, r.stderr


@pytest.mark.kernel
def test_passing_notebook_cli(tmp_path):
    nb = make_nb(tmp_path, '01_ok.ipynb', new_markdown_cell('# A title'), 'x = 6 * 7', 'assert x == 42\nprint(x)')
    before = nb.read_bytes()
    r = run_cli(nb.name, '--device', 'cpu', cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == 'running 01_ok …', "each notebook is announced as it starts"
    line = next(l for l in lines if l.startswith('01_ok.ipynb'))
    assert line.split()[1] == 'ok' and line.endswith(' s')
    assert '1 notebook, 0 failed' in r.stdout
    assert nb.read_bytes() == before, "running must not write the committed notebook"
    assert sorted(p.name for p in tmp_path.iterdir()) == ['01_ok.ipynb'], "nothing written next to it"


@pytest.mark.kernel
def test_failing_notebook_cli_reports_cell_source_and_traceback(tmp_path):
    make_nb(tmp_path, '02_bad.ipynb', 'x = 1', new_markdown_cell('Now divide'), 'def f(y):\n    return y / 0\nf(x)', 'print("never")')
    r = run_cli('02_bad.ipynb', '--device', 'cpu', cwd=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert '02_bad.ipynb' in r.stdout and 'FAILED' in r.stdout
    assert 'cell 2' in r.stdout
    assert '    def f(y):\n        return y / 0\n    f(x)' in r.stdout
    assert 'ZeroDivisionError' in r.stdout and 'Traceback' in r.stdout
    assert '\x1b[' not in r.stdout + r.stderr
    assert '1 notebook, 1 failed' in r.stdout


@pytest.mark.kernel
def test_function_returns_results_with_error_text(tmp_path):
    ok = make_nb(tmp_path, '01_ok.ipynb', 'pass')
    bad = make_nb(tmp_path, '02_bad.ipynb', 'raise ValueError("broken on purpose")')
    results = run_notebook.run_notebooks([ok, bad], device='cpu')
    assert [(r.path, r.ok) for r in results] == [(ok, True), (bad, False)]
    assert results[0].error == '' and results[0].seconds > 0
    assert results[1].error.startswith('cell 0:') and 'ValueError: broken on purpose' in results[1].error
    assert '\x1b[' not in results[1].error


@pytest.mark.kernel
def test_cell_timeout_fails_quickly(tmp_path):
    nb = make_nb(tmp_path, '01_slow.ipynb', 'x = 1', 'import time; time.sleep(60)')
    [r] = run_notebook.run_notebooks([nb], device='cpu', timeout=2)
    assert not r.ok and r.seconds < 40  # kernel start-up included: slow on a busy machine
    assert r.error.startswith('cell 1:') and 'timed out' in r.error and 'time.sleep(60)' in r.error


def meet(me, other):
    "A cell that notes when it starts, waits (30 s at most) until `other` has started too, then notes its end."
    return (f'import time\nfrom pathlib import Path\nPath("{me}.start").write_text(repr(time.time()))\n'
            f'deadline = time.time() + 30\n'
            f'while not Path("{other}.start").exists() and time.time() < deadline: time.sleep(0.05)\n'
            f'Path("{me}.end").write_text(repr(time.time()))')


@pytest.mark.kernel
def test_jobs_run_in_parallel_and_report_in_notebook_order(tmp_path):
    threads = os.environ.get('OMP_NUM_THREADS') or str(max(1, (os.cpu_count() or 1) // 2))
    share = f'import os; assert os.environ["OMP_NUM_THREADS"] == "{threads}"'  # two kernels share the cores
    make_nb(tmp_path, '01_a.ipynb', share, meet('a', 'b'))
    make_nb(tmp_path, '02_b.ipynb', share, meet('b', 'a'))
    make_nb(tmp_path, 'scratch.ipynb', 'raise SystemExit("not numbered: never run from a folder")')
    r = run_cli('.', '--jobs', '2', '--device', 'cpu', cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = [l.split() for l in r.stdout.splitlines() if '.ipynb' in l]
    assert [(l[0], l[1]) for l in lines] == [('01_a.ipynb', 'ok'), ('02_b.ipynb', 'ok')]
    assert sorted(l for l in r.stdout.splitlines() if l.startswith('running')) == ['running 01_a …', 'running 02_b …']
    # run one after the other, the first would wait 30 s in vain and end before the second began
    t = {f.name: float(f.read_text()) for f in tmp_path.glob('[ab].*')}
    assert t['a.start'] < t['b.end'] and t['b.start'] < t['a.end'], f"the two kernels did not overlap: {t}"


@pytest.mark.skipif(run_notebook.cuda_available(), reason="this machine has CUDA")
def test_device_cuda_without_cuda_is_a_usage_error(tmp_path, capsys):
    nb = make_nb(tmp_path, '01_mark.ipynb', 'open("ran.txt", "w").write("ran")')
    with pytest.raises(run_notebook.RunError, match='cuda'): run_notebook.main(str(nb), device='cuda')
    assert capsys.readouterr().out == '' and not (tmp_path/'ran.txt').exists()


@pytest.mark.skipif(run_notebook.mps_available(), reason="this machine has an Apple GPU")
def test_device_mps_without_mps_is_a_usage_error():
    with pytest.raises(run_notebook.RunError, match='mps'): run_notebook.pick_device('mps')


def test_usage_errors_are_user_mistakes_for_the_cli():
    assert issubclass(run_notebook.RunError, cli.UsageError)


def test_unknown_device_is_a_usage_error(tmp_path):
    make_nb(tmp_path, '01_x.ipynb', 'pass')
    with pytest.raises(run_notebook.RunError, match='tpu'): run_notebook.run_notebooks([tmp_path/'01_x.ipynb'], device='tpu')


@pytest.mark.parametrize('gpu', [True, False], ids=['gpu', 'no-gpu'])
def test_default_device_follows_EXP_DEVICE_else_cuda_when_torch_sees_it(monkeypatch, gpu):
    monkeypatch.setattr(run_notebook, 'cuda_available', lambda: gpu)  # as torch.cuda.is_available() would say
    monkeypatch.setenv('EXP_DEVICE', 'cpu')
    assert run_notebook.pick_device() == 'cpu'
    monkeypatch.setenv('EXP_DEVICE', 'tpu')
    with pytest.raises(run_notebook.RunError, match="EXP_DEVICE 'tpu'"): run_notebook.pick_device()
    assert run_notebook.pick_device('cpu') == 'cpu', "--device wins over EXP_DEVICE"
    monkeypatch.delenv('EXP_DEVICE')
    assert run_notebook.pick_device() == ('cuda' if gpu else 'cpu')
    if gpu: assert run_notebook.pick_device('cuda') == 'cuda'
    else:
        with pytest.raises(run_notebook.RunError, match='no CUDA GPU'): run_notebook.pick_device('cuda')


def test_bad_EXP_DEVICE_cli_is_one_line_exit_2_before_running_anything(tmp_path, monkeypatch, run_here):
    make_nb(tmp_path, '01_mark.ipynb', 'open("ran.txt", "w").write("ran")')
    monkeypatch.setenv('EXP_DEVICE', 'tpu')
    r = run_here(tmp_path, '01_mark.ipynb')
    assert_usage_error(r, 'EXP_DEVICE', 'tpu')
    assert not (tmp_path/'ran.txt').exists()


MISTAKES = {'device typo': ['--devcie', 'cuda'], 'seed typo': ['--sed', '3'], 'save without value': ['--save'],
            'timeout without value': ['--timeout'], 'seed without value': ['--seed'],
            'negative seed': ['--seed', '-1'], 'fractional seed': ['--seed', '1.5'], 'word seed': ['--seed', 'abc'],
            'boolean seed': ['--seed', 'True'], 'zero jobs': ['--jobs', '0']}


@pytest.mark.parametrize('mistake', MISTAKES)
def test_cli_mistake_is_one_line_exit_2_before_running_anything(tmp_path, run_here, mistake):
    make_nb(tmp_path, '01_mark.ipynb', 'open("ran.txt", "w").write("ran")')
    args = MISTAKES[mistake]
    r = run_here(tmp_path, '01_mark.ipynb', '--device', 'cpu', *args)
    assert_usage_error(r, args[0])
    assert not (tmp_path/'ran.txt').exists()


def test_help_lists_every_option(tmp_path, run_here):
    r = run_here(tmp_path, '--help')
    assert r.returncode == 0 and r.stderr == ''
    for option in ['--device', '--timeout', '--jobs', '--save', '--seed']: assert option in r.stdout, option
    assert cli.undocumented(run_notebook.main) == [], "every option is explained in main's Args:"


@pytest.mark.kernel
def test_seed_and_default_device_reach_the_kernel_and_exports_are_off(tmp_path):
    nb = make_nb(tmp_path, '01_env.ipynb', 'import os',
                 'assert os.environ["EXP_SEED"] == "7", os.environ.get("EXP_SEED")',
                 'assert os.environ["EXP_DEVICE"] == "cpu", os.environ.get("EXP_DEVICE")',
                 'assert os.environ["EXP_NO_EXPORT"] == "1", os.environ.get("EXP_NO_EXPORT")')
    r = run_cli(nb.name, '--seed', '7', cwd=tmp_path, env={'EXP_DEVICE': 'cpu', 'EXP_SEED': None, 'EXP_NO_EXPORT': None})
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.kernel
def test_run_one_extra_env_wins(tmp_path):
    record = tmp_path/'x.jsonl'
    nb = make_nb(tmp_path, '01_env.ipynb', 'import os',
                 'assert os.environ["OMP_NUM_THREADS"] == "3", os.environ.get("OMP_NUM_THREADS")',
                 'assert os.environ["EXP_DEVICE"] == "cpu" and os.environ["EXP_SEED"] == "3"',
                 'assert os.environ["EXP_NO_EXPORT"] == "0"',
                 'open(os.environ["EXP_RECORD"], "a").write("{}\\n")')
    env = {'EXP_SEED': '3', 'EXP_RECORD': str(record), 'OMP_NUM_THREADS': '3', 'EXP_NO_EXPORT': '0'}
    r = run_notebook.run_one(nb, 'cpu', 60, save=None, threads=2, env=env)
    assert (r.path, r.ok, r.error) == (nb, True, ''), r.error
    assert r.seconds > 0 and record.read_text() == '{}\n'


def test_seed_is_passed_on_and_no_path_means_the_course(monkeypatch):
    calls = []
    fake = lambda path, device, timeout, save=None, threads=None, env=None: (
        calls.append((path.name, env)) or run_notebook.Result(path, True, 0.0))
    monkeypatch.setattr(run_notebook, 'run_one', fake)
    results = run_notebook.run_notebooks(device='cpu', seed=2)
    course = sorted(p.name for p in (ROOT/'nbs').glob('[0-9]*.ipynb'))
    assert len(course) >= 10 and course[0] == '00_exports.ipynb'
    assert calls == [(name, {'EXP_SEED': '2'}) for name in course]
    assert [r.path.name for r in results] == course
    assert run_notebook.run_notebooks(device='cpu') and calls[-1][1] is None, "no --seed: EXP_SEED is left alone"
    with pytest.raises(run_notebook.RunError, match='seed'): run_notebook.run_notebooks(device='cpu', seed=-1)


@pytest.mark.kernel
def test_kernel_sees_device_folder_and_this_python(tmp_path):
    (tmp_path/'data.txt').write_text('beside the notebook')
    nb = make_nb(tmp_path, '01_env.ipynb',
                 'import os\nassert os.environ["EXP_DEVICE"] == "cpu", os.environ.get("EXP_DEVICE")',
                 'from pathlib import Path\nassert Path("data.txt").read_text() == "beside the notebook", os.getcwd()',
                 f'import sys\nassert sys.executable == {sys.executable!r}, sys.executable',
                 f'out = !python -c "import sys; print(sys.executable)"\nassert out == [{sys.executable!r}], out')
    [r] = run_notebook.run_notebooks([nb], device='cpu')
    assert r.ok, r.error


@pytest.mark.kernel
def test_save_writes_ipynb_and_html_also_for_failures(tmp_path):
    nbs, out = tmp_path/'nbs', tmp_path/'runs'
    nbs.mkdir()
    nb = make_nb(nbs, '01_plot.ipynb', 'print("hello from the kernel")', '1/0', 'print("not reached")')
    before = nb.read_bytes()
    r = run_cli('nbs', '--save', 'runs', '--device', 'cpu', cwd=tmp_path)
    assert r.returncode == 1
    assert sorted(p.name for p in out.iterdir()) == ['01_plot.html', '01_plot.ipynb', 'index.html', 'mathjax']
    saved = nbformat.read(out/'01_plot.ipynb', as_version=4)
    assert saved.cells[0].outputs[0].text == 'hello from the kernel\n'
    assert saved.cells[1].outputs[0].ename == 'ZeroDivisionError'
    assert saved.cells[2].outputs == []
    html = (out/'01_plot.html').read_text(encoding='utf-8')
    assert 'hello from the kernel' in html and 'ZeroDivisionError' in html
    assert nb.read_bytes() == before and sorted(p.name for p in nbs.iterdir()) == ['01_plot.ipynb']


def test_paths_are_shown_from_the_current_folder_else_absolute(tmp_path, monkeypatch, run_here):
    "As sweep and notebook2script show theirs: relative where that is short and exact, absolute outside."
    (tmp_path/'here'/'nbs').mkdir(parents=True); (tmp_path/'there').mkdir()
    make_nb(tmp_path/'here'/'nbs', '01_in.ipynb', 'pass')
    outside = make_nb(tmp_path/'there', '02_out.ipynb', 'pass').resolve().as_posix()
    failed = lambda path, *args: run_notebook.Result(path, False, 0.0, 'cell 0:\n    pass\nboom')  # no kernel
    monkeypatch.setattr(run_notebook, 'run_one', failed)
    r = run_here(tmp_path/'here', 'nbs/01_in.ipynb', '../there/02_out.ipynb', '--device', 'cpu')
    assert r.returncode == 1
    assert [l.split()[:2] for l in r.stdout.splitlines() if 'FAILED' in l.split()[1:2]] == [
        ['nbs/01_in.ipynb', 'FAILED'], [outside, 'FAILED']]
    assert f'\nFAILED nbs/01_in.ipynb, cell 0:' in r.stdout and f'\nFAILED {outside}, cell 0:' in r.stdout


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
    with pytest.raises(run_notebook.RunError, match='02_bad.ipynb') as e: run_notebook.main(str(good), str(bad), device='cpu')
    assert '\n' not in str(e.value) and capsys.readouterr().out == ''
    assert not (tmp_path/'ran.txt').exists()


def test_bad_path_cli(tmp_path):
    make_nb(tmp_path, '01_mark.ipynb', 'open("ran.txt", "w").write("ran")')
    r = run_cli('01_mark.ipynb', 'missing.ipynb', cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == ''
    assert r.stderr == 'run_notebook: missing.ipynb: no such notebook\n'
    assert not (tmp_path/'ran.txt').exists()


def test_folder_without_numbered_notebooks_is_a_usage_error(tmp_path):
    make_nb(tmp_path, 'scratch.ipynb', 'pass')
    with pytest.raises(run_notebook.RunError, match='no numbered notebooks'): run_notebook.find_notebooks([tmp_path])


def test_folder_expands_to_numbered_notebooks_in_order(tmp_path):
    for name in ['10_z.ipynb', '02a_b.ipynb', '02_a.ipynb', 'notes.ipynb', '01_x.txt']: make_nb(tmp_path, name, 'pass')
    assert [p.name for p in run_notebook.find_notebooks([tmp_path])] == ['02_a.ipynb', '02a_b.ipynb', '10_z.ipynb']


def test_no_argument_means_the_course_notebooks():
    found = run_notebook.find_notebooks()
    assert found and all(p.parent == ROOT/'nbs' and p.name[:2].isdigit() for p in found)
    assert [p.name for p in found] == sorted(p.name for p in found) and found[0].name == '00_exports.ipynb'
