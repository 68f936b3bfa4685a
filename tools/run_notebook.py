"""Run course notebooks top to bottom in fresh kernels, as a student would, and report what broke.

    python tools/run_notebook.py                               # every numbered notebook in nbs/, in order
    python tools/run_notebook.py nbs/03_initializing.ipynb     # one or more notebooks (or folders)
    python tools/run_notebook.py --device cpu --timeout 600 --jobs 2 --seed 3 --save build

Each notebook runs in a fresh kernel of this Python (sys.executable), from the notebook's own folder,
with EXP_DEVICE (cpu, cuda or mps; default: $EXP_DEVICE, else cuda when torch sees a GPU), EXP_NO_EXPORT=1
(the export cells write nothing: `notebook2script.py --check` guards exp/) and, with --seed N, EXP_SEED=N
in its environment. The committed notebook is never written: an in-memory copy runs. --save DIR writes
each executed copy, failed ones too, to DIR as .ipynb and as an HTML page that works offline, and an
index.html linking them (tools/course_site.py). Exit code: 0 all ran, 1 a notebook failed, 2 a usage mistake.
"""
import multiprocessing, os, re, sys, textwrap, time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError

import cli, common  # tools/ is on sys.path: this script's folder

_ansi = re.compile(r'\x1b\[[0-?]*[ -/]*[@-~]')


DEVICES = ('cpu', 'cuda', 'mps')


class RunError(cli.UsageError):
    "A user mistake (bad path or option): reported as one line, exit code 2, nothing run."


@dataclass
class Result:
    path: Path
    ok: bool
    seconds: float
    error: str = ''  # when not ok: the cell number, its source and the traceback, no colour codes


def read_notebook(path):
    "The notebook at `path` as an nbformat v4 node, or a RunError naming the file."
    try: common.read_notebook(path)  # checked first: nbformat's own errors are neither one line nor ours
    except common.NotebookError as e: raise RunError(str(e)) from None
    return nbformat.read(path, as_version=4)


def find_notebooks(paths=()):
    "Files as given, folders expanded to their numbered notebooks in order; every one checked first."
    found = []
    for p in [Path(str(p)) for p in paths] or [common.NBS]:
        if not p.is_dir(): found.append(p); continue
        inside = common.numbered_notebooks(p)
        if not inside: raise RunError(f"{p}: no numbered notebooks (like 01_matmul.ipynb) in this folder")
        found += inside
    for p in found: read_notebook(p)
    return found


def cuda_available():
    import torch  # slow to import; only picking a device needs it
    return torch.cuda.is_available()


def mps_available():
    import torch
    return torch.backends.mps.is_available()


def pick_device(device=None):
    "The device the notebooks get as EXP_DEVICE: `device`, else $EXP_DEVICE, else cuda when there is one."
    source = '--device'
    if device is None and os.environ.get('EXP_DEVICE'): device, source = os.environ['EXP_DEVICE'], 'EXP_DEVICE'
    if device is None: return 'cuda' if cuda_available() else 'cpu'
    if device not in DEVICES: raise RunError(f"{source} {device!r}: choose cpu, cuda or mps")
    if device == 'cuda' and not cuda_available():
        raise RunError(f"{source} cuda: torch finds no CUDA GPU on this machine; use cpu")
    if device == 'mps' and not mps_available():
        raise RunError(f"{source} mps: torch finds no Apple GPU (MPS) on this machine; use cpu")
    return device


def check_seed(seed):
    "`seed` as the EXP_SEED string, if it is a whole number >= 0 (None stays None)."
    if seed is None: return None
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise RunError(f"--seed {seed!r}: give a whole number >= 0")
    return str(seed)


def this_pythons_kernel():
    "A kernel manager for ipykernel of sys.executable, whatever `python3` kernelspecs are installed."
    return AsyncKernelManager(kernel_name='python3', kernel_spec_manager=KernelSpecManager(kernel_dirs=[]))


def kernel_env(device, threads=None, extra=None):
    "Our environment plus EXP_DEVICE and EXP_NO_EXPORT; this Python first on PATH; then `extra`, which wins."
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get('PATH', '')])
    # EXP_NO_EXPORT: an in-memory copy runs, so its export cells must not rewrite exp/ behind the committed notebook
    env = {**os.environ, 'PATH': path, 'EXP_DEVICE': device, 'EXP_NO_EXPORT': '1'}
    # kernels side by side must share the cores: oversubscribed OpenMP threads make torch many times slower
    if threads and 'OMP_NUM_THREADS' not in os.environ: env['OMP_NUM_THREADS'] = str(threads)
    return {**env, **(extra or {})}


def failure_report(nb, index, err, timeout):
    "Which cell failed, its source and the error with traceback, colour codes stripped."
    if index is None: return _ansi.sub('', f"before the first cell: {type(err).__name__}: {err}")
    cell = nb.cells[index]
    if isinstance(err, CellTimeoutError): what = f"timed out: still running after {timeout} s (--timeout)"
    elif isinstance(err, CellExecutionError):
        tb = [o.get('traceback', []) for o in cell.get('outputs', []) if o.get('output_type') == 'error']
        what = '\n'.join(tb[0]) if tb else f"{err.ename}: {err.evalue}"
    else: what = f"{type(err).__name__}: {err}"
    return _ansi.sub('', f"cell {index}:\n{textwrap.indent(cell.source, '    ')}\n{what}")


def run_one(path, device, timeout, save=None, threads=None, env=None):
    "Execute an in-memory copy of one notebook in a fresh kernel, from the notebook's folder; `env` wins."
    path, current = Path(path), {}
    nb = read_notebook(path)
    print(f"running {path.stem} …", flush=True)  # from the worker under --jobs: says what is under way
    client = NotebookClient(nb, timeout=timeout, kernel_name='python3', km=this_pythons_kernel(),
                            shutdown_kernel='immediate', resources={'metadata': {'path': str(path.parent.resolve())}},
                            extra_arguments=['--IPKernelApp.log_level=ERROR'],  # no start-up warnings on stderr
                            on_cell_start=lambda cell, cell_index: current.update(index=cell_index))
    start, error = time.perf_counter(), ''
    try: client.execute(cleanup_kc=True, env=kernel_env(device, threads, env))
    except Exception as e: error = failure_report(nb, current.get('index'), e, timeout)
    seconds = time.perf_counter() - start
    if save:
        import course_site  # imports nbconvert, slow; only --save needs it
        course_site.save_page(nb, Path(save), path.stem)
    return Result(path, not error, seconds, error)


def run_notebooks(paths=(), device=None, timeout=600, jobs=1, save=None, progress=None, seed=None):
    """Run notebooks (all numbered ones in nbs/ when none given); call `progress` on each result, in order.
    With `save`, also write the executed pages and their index.html there; with `seed`, EXP_SEED=seed."""
    paths = find_notebooks(paths)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise RunError(f"--timeout {timeout!r}: give seconds > 0")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise RunError(f"--jobs {jobs!r}: give a whole number >= 1")
    if save is not None and any(Path(str(save)).resolve() == p.parent.resolve() for p in paths):
        raise RunError(f"--save {save}: that is a notebooks' folder; saving there would overwrite them")
    seed, device, save = check_seed(seed), pick_device(device), save and Path(str(save))
    env = None if seed is None else {'EXP_SEED': seed}
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
    if save:
        import course_site
        course_site.copy_mathjax(save)  # once, before the pages that load it
    args = paths, repeat(device), repeat(timeout), repeat(save), repeat(threads), repeat(env)
    if jobs == 1: results = collect(map(run_one, *args), progress)
    else:
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context('spawn')) as pool:
            results = collect(pool.map(run_one, *args), progress)
    if save: course_site.write_index(save, results, about=f" · device {device}" + (f" · seed {seed}" if env else ''))
    return results


def collect(results, progress=None):
    "The results as a list, passing each one to `progress` as soon as it is there (in notebook order)."
    out = []
    for r in results:
        out.append(r)
        if progress: progress(r)
    return out


def main(*paths, device=None, timeout=600, jobs=1, save=None, seed=None):
    """Run notebooks top to bottom in fresh kernels; print a line as each starts and one with its result.

    Exit code 0 when every notebook ran, 1 when one failed (its cell and traceback are printed), 2 for a
    usage mistake (then nothing runs).

    Args:
        paths: notebooks, or folders meaning their numbered notebooks in order (default: the course, nbs/)
        device: cpu, cuda or mps, given to the notebooks as EXP_DEVICE (default: $EXP_DEVICE, else cuda when
            torch sees a GPU, else cpu)
        timeout: seconds one cell may run before its notebook fails (default 600)
        jobs: how many notebooks run side by side, each in its own kernel, sharing the cores (default 1)
        save: a folder for the executed notebooks (.ipynb, and .html pages that work offline) and an
            index.html linking them
        seed: a whole number N >= 0, given to the notebooks as EXP_SEED: every set_seed(s) seeds s + 1000*N
    """
    start, here = time.perf_counter(), Path.cwd()  # paths shown from here: what the user typed, in short
    show = lambda r: print(f"{common.shown(r.path, here):<44} {'ok' if r.ok else 'FAILED':<6} {r.seconds:7.1f} s", flush=True)
    results = run_notebooks(paths, device=device, timeout=timeout, jobs=jobs, save=save, progress=show, seed=seed)
    failed = [r for r in results if not r.ok]
    for r in failed: print(f"\nFAILED {common.shown(r.path, here)}, {r.error}")
    if save: print(f"\nexecuted notebooks (.ipynb and .html) are in {save}; open {Path(str(save))/'index.html'}")
    n = len(results)
    print(f"\n{n} notebook{'s' * (n != 1)}, {len(failed)} failed, {time.perf_counter() - start:.1f} s")
    return 1 if failed else 0


if __name__ == '__main__': cli.run(main)
