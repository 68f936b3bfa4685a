"""What the tools share, each in one place: where the repository is, which notebooks are the course's,
reading a notebook, showing a path in a message, writing a file atomically, and min / median / max.

    from common import ROOT, read_notebook, write_atomic   # tools/ is on sys.path: the tools' own folder
"""
import json, math, os, re, statistics, tempfile
from pathlib import Path

from cli import UsageError

ROOT = Path(__file__).resolve().parent.parent  # the repository: nbs/, exp/, tools/, data/
NBS = ROOT/'nbs'
_numbered = re.compile(r'^\d+[a-z]?_.*\.ipynb$')  # 01_matmul.ipynb, 02a_why_sqrt5.ipynb; not scratch.ipynb


class NotebookError(UsageError):
    "A path that is not a readable nbformat 4 notebook; the message is one line and names the file."


def is_numbered(path): return _numbered.match(Path(path).name) is not None


def numbered_notebooks(folder=NBS):
    "The numbered notebooks in `folder` (the course's, like 01_matmul.ipynb), in order."
    return sorted(p for p in Path(folder).glob('*.ipynb') if is_numbered(p))


def read_notebook(path):
    "The notebook at `path` as parsed JSON, checked to be nbformat 4 with a list of cells; else a NotebookError."
    path = Path(path)
    if not path.is_file(): raise NotebookError(f"{path}: no such notebook")
    try: nb = json.loads(path.read_text(encoding='utf-8'))
    except (json.JSONDecodeError, UnicodeDecodeError) as e: raise NotebookError(f"{path}: not valid JSON ({e})")
    if not isinstance(nb, dict) or not isinstance(nb.get('cells'), list) or nb.get('nbformat') != 4:
        raise NotebookError(f"{path}: not a Jupyter notebook (nbformat 4 JSON with a list of cells)")
    return nb


def shown(path, base=ROOT):
    "A path as a reader would type it: relative to `base` (default: the repository) when inside it, else absolute."
    path, base = Path(path).resolve(), Path(base).resolve()
    return path.relative_to(base).as_posix() if path.is_relative_to(base) else path.as_posix()


# The library exports the same helper (exp.nb_00.write_atomic); the tools keep their own so that the converter, which
# writes exp/, still works when a module in exp/ is broken or missing.
def write_atomic(path, data):
    "Write `data` (str, as UTF-8 with its line endings kept; or bytes) to a temp file in the same folder, then rename."
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.', suffix='.tmp')  # a name of its own
    try:
        with os.fdopen(fd, 'wb') as f: f.write(data.encode('utf-8') if isinstance(data, str) else data)
        os.chmod(tmp, 0o644)  # mkstemp makes the file private; what we write is an ordinary readable file
        os.replace(tmp, path)  # readers see the old file or the new one, never half of one
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def spread(values):
    "(min, median, max) of the values that are numbers (NaN left out); None when there are none."
    xs = [v for v in values if not math.isnan(v)]
    return (min(xs), statistics.median(xs), max(xs)) if xs else None
