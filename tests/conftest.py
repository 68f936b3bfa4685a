"Shared by the tests: the tools in tools/ import as plain modules (`import run_notebook`), and run in-process."
import sys
from pathlib import Path
from types import SimpleNamespace

import nbformat, pytest
from nbformat.v4 import new_code_cell, new_notebook

ROOT = Path(__file__).resolve().parent.parent  # common.ROOT too, once tools/ is on sys.path
if str(ROOT/'tools') not in sys.path: sys.path.insert(0, str(ROOT/'tools'))

import cli


def make_nb(folder, name, *sources):
    "Write a notebook (`from conftest import make_nb`): strings become code cells, cells (new_markdown_cell) are kept."
    cells = [new_code_cell(s) if isinstance(s, str) else s for s in sources]
    path = Path(folder)/name
    nbformat.write(new_notebook(cells=cells), path)
    return path


@pytest.fixture
def in_process(monkeypatch, capsys):
    """`in_process(main, prog, *args)`: a tool's command line run through `cli.run` in this process, as its
    `if __name__ == '__main__':` runs it (without a second interpreter importing everything again).
    Returns what that command printed and its exit code: .returncode, .stdout, .stderr."""
    def run(main, prog, *args):
        capsys.readouterr()  # what came before is not this command's
        monkeypatch.setattr(sys, 'argv', [f'{prog}.py', *map(str, args)])
        with pytest.raises(SystemExit) as e: cli.run(main, prog)
        out, err = capsys.readouterr()
        return SimpleNamespace(returncode=e.value.code, stdout=out, stderr=err)
    return run
