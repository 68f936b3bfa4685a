"The set-up: pins agree everywhere, data fetching is safe, bad devices are refused clearly."
import os, re, shlex, shutil, subprocess, sys, tomllib, zipfile
from importlib import metadata
from pathlib import Path

import pytest

import exp.nb_01 as nb01
from common import ROOT  # tools/ is on sys.path (conftest.py)
from exp.nb_01 import FetchError, fetch_from_pypi, sha256


def pins(text):
    return sorted(re.findall(r'^\s*(?:-\s+)?([A-Za-z0-9_.\-]+==[^\s#]+)', text, re.M))


def requirement_lines():
    "requirements.txt without comments and blank lines."
    lines = [l.split('#')[0].strip() for l in (ROOT/'requirements.txt').read_text().splitlines()]
    return [l for l in lines if l]


def test_environment_yml_matches_requirements():
    req = pins((ROOT/'requirements.txt').read_text())
    env = pins((ROOT/'environment.yml').read_text())
    assert req and req == env


def test_every_requirement_is_pinned_and_installed_at_its_pin():
    "A loose line would let pip pick another torch (a multi-GB CUDA build); this environment must be the pinned one."
    lines = requirement_lines()
    assert lines and sorted(lines) == pins('\n'.join(lines)), "every line of requirements.txt is `name==version`"
    wrong = []
    for line in lines:
        name, pinned = line.split('==')
        try: installed = metadata.version(name)
        except metadata.PackageNotFoundError: installed = 'not installed'
        if installed.split('+')[0] != pinned: wrong.append(f"{name}: {installed}, pinned {pinned}")  # 2.13.0+cpu is 2.13.0
    assert not wrong, f"this environment differs from requirements.txt ({'; '.join(wrong)}): pip install -r requirements.txt"


def test_package_dependencies_are_the_requirements():
    "What pip installs with `pip install -e .` (pyproject's dependencies, expanded as setuptools does) is requirements.txt."
    config = tomllib.loads((ROOT/'pyproject.toml').read_text())
    assert 'dependencies' not in config['project'], "dependencies come from requirements.txt only (one list, not two)"
    from setuptools.config.pyprojecttoml import read_configuration
    expanded = read_configuration(ROOT/'pyproject.toml')['project']
    assert expanded['dependencies'] == requirement_lines()


def test_build_backend_can_make_an_editable_install():
    "setuptools learned PEP 660 editable installs (`pip install -e .` from pyproject alone) in 64."
    config = tomllib.loads((ROOT/'pyproject.toml').read_text())
    [req] = [r for r in config['build-system']['requires'] if r.startswith('setuptools')]
    floor = re.fullmatch(r'setuptools>=(\d+)(\.\d+)*', req)
    assert floor and int(floor.group(1)) >= 64, req


def readme_section(title):
    "The text of one `## title` section of the README."
    return (ROOT/'README.md').read_text().split(f'## {title}\n', 1)[1].split('\n## ', 1)[0]


def shell_commands(text):
    "Each command line of a shell script or code block as its words, as the shell splits them; comments dropped."
    return [words for words in map(lambda l: shlex.split(l, comments=True), text.splitlines()) if words]


def readme_commands(title):
    "The commands of the code block in the README's `## title` section."
    return shell_commands(readme_section(title).split('```')[1])


def test_two_commands_are_two_and_the_readmes_make_targets_exist():
    assert readme_commands('Two commands') == [['make', 'course'], ['make', 'test']]
    targets = sorted(set(re.findall(r'`make ([a-z][\w-]*)', (ROOT/'README.md').read_text())))
    assert {'lab', 'export', 'check', 'clean-nbs', 'hooks'} <= set(targets)
    if shutil.which('make') is None: pytest.skip('no make here')
    for t in targets:  # -n: print what would run, run nothing; fails on a target the Makefile lacks
        r = subprocess.run(['make', '-n', t], cwd=ROOT, capture_output=True, text=True)
        assert r.returncode == 0, f"`make {t}` (README): {r.stderr.strip()}"


def test_make_refuses_an_old_python_in_one_line(tmp_path):
    "A `python3` older than 3.11 is named in one clear line before any venv is made."
    if shutil.which('make') is None: pytest.skip('no make here')
    fake = tmp_path/'python3'
    fake.write_text('#!/bin/sh\ncase "$1" in --version) echo "Python 3.8.10";; *) exit 1;; esac\n')
    fake.chmod(0o755)
    for name in ['requirements.txt', 'pyproject.toml']: (tmp_path/name).write_text('')  # the venv's prerequisites
    r = subprocess.run(['make', '-f', str(ROOT/'Makefile'), '-C', str(tmp_path), 'setup', f'PYTHON3={fake}'],
                       capture_output=True, text=True, env={**os.environ, 'MAKEFLAGS': ''})
    assert r.returncode != 0 and not (tmp_path/'.venv').exists()
    lines = [l for l in r.stderr.splitlines() if not re.match(r'make(\[\d+\])?: \*\*\*', l)]  # make's own "Error 1"
    assert len(lines) == 1 and '3.11' in lines[0] and 'Python 3.8.10' in lines[0]


def test_ci_runs_the_readme_test_command_and_nothing_else():
    *setup, last = shell_commands((ROOT/'.ci/run').read_text())
    assert last == readme_commands('Two commands')[-1], "CI's command is the README's test command"
    assert all(words[0] in ('set', 'cd') for words in setup), f"CI runs only the README's command: {setup}"


def make_check_selection():
    "The `-m` expression of the pytest command in the Makefile's `check` recipe."
    recipe = (ROOT/'Makefile').read_text().split('\ncheck:', 1)[1].split('\n\n', 1)[0]
    [words] = [w for w in shell_commands(recipe) if 'pytest' in w]
    args = words[words.index('pytest') + 1:]
    return args[args.index('-m') + 1]


def test_make_check_leaves_out_every_marked_kind_and_the_readme_says_the_same():
    "Each marker names a kind of slow or data-hungry test: `make check` (quick, offline) leaves them all out."
    selection = make_check_selection()
    registered = {m.split(':')[0] for m in tomllib.loads((ROOT/'pyproject.toml').read_text())['tool']['pytest']
                  ['ini_options']['markers']}
    assert re.fullmatch(r'not \w+( and not \w+)*', selection), selection
    assert set(re.findall(r'not (\w+)', selection)) == registered, selection
    [line] = [l for l in readme_section('More').split('\n- ') if l.startswith('`make check`')]
    [command] = re.findall(r'`(pytest [^`]*)`', line.replace('\n  ', ' '))
    assert shlex.split(command) == ['pytest', '-m', selection], "the README shows the Makefile's selection"


@pytest.fixture
def fake_pip(monkeypatch):
    "Replace `pip download` with one that writes a wheel holding `payload` (or fails when payload is None)."
    calls = []
    def run(cmd, **kw):
        calls.append(cmd)
        if fake_pip.payload is None: return subprocess.CompletedProcess(cmd, 1)
        with zipfile.ZipFile(Path(cmd[cmd.index('-d') + 1])/'pkg-1.0-py3-none-any.whl', 'w') as z:
            z.writestr('pkg/data.bin', fake_pip.payload)
        return subprocess.CompletedProcess(cmd, 0)
    monkeypatch.setattr(nb01.subprocess, 'run', run)
    fake_pip.calls = calls
    return fake_pip


def test_fetch_writes_checked_file(tmp_path, fake_pip):
    fake_pip.payload = b'some data'
    (tmp_path/'ref').write_bytes(b'some data')
    dest = fetch_from_pypi(tmp_path/'sub'/'data.bin', 'pkg==1.0', 'pkg/data.bin', sha256(tmp_path/'ref'))
    assert dest.read_bytes() == b'some data'
    assert sorted(p.name for p in dest.parent.iterdir()) == ['data.bin']   # no temporary files left
    fetch_from_pypi(dest, 'pkg==1.0', 'pkg/data.bin', 'unused')          # present: not fetched again
    assert len(fake_pip.calls) == 1


def test_fetch_refuses_wrong_checksum(tmp_path, fake_pip):
    fake_pip.payload = b'tampered'
    dest = tmp_path/'data.bin'
    with pytest.raises(FetchError, match='SHA-256.*by hand'): fetch_from_pypi(dest, 'pkg==1.0', 'pkg/data.bin', '0' * 64)
    assert list(tmp_path.iterdir()) == []


def test_fetch_failure_says_where_to_put_the_file(tmp_path, fake_pip):
    fake_pip.payload = None
    dest = tmp_path/'data.bin'
    with pytest.raises(FetchError) as e: fetch_from_pypi(dest, 'pkg==1.0', 'pkg/data.bin', '0' * 64)
    msg = str(e.value)
    assert '\n' not in msg and str(dest) in msg and 'by hand' in msg
    assert list(tmp_path.iterdir()) == []


def test_fetch_data_rejects_unknown_dataset(capsys, monkeypatch):
    "Through `cli.run`, in-process: a second interpreter would spend seconds importing torch again."
    import cli, fetch_data
    monkeypatch.setattr(sys, 'argv', ['fetch_data.py', 'nosuchdata'])
    with pytest.raises(SystemExit) as e: cli.run(fetch_data.main)  # as `run(main)` (or fire) runs it
    out, err = capsys.readouterr()
    assert e.value.code == 2 and out == '' and len(err.strip().splitlines()) == 1 and 'nosuchdata' in err


def test_cuda_without_gpu_is_a_clear_error(monkeypatch):
    "What `get_device` (called where a device is used, as by DeviceCallback) says with EXP_DEVICE=cuda and no GPU."
    import torch
    if torch.cuda.is_available(): pytest.skip('this machine has CUDA')
    monkeypatch.setenv('EXP_DEVICE', 'cuda')
    with pytest.raises(RuntimeError, match='no CUDA GPU'): nb01.get_device()
