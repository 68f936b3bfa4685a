"""Fetch the course's datasets into data/ (each is also fetched on first use by the notebooks).

    python tools/fetch_data.py              # MNIST and MovieLens
    python tools/fetch_data.py mnist        # just one

Exit code: 0 fetched (or already there), 2 an unknown name or a failed fetch (one line on stderr that says
where to put the file by hand).
"""
import cli  # tools/ is on sys.path: this script's folder
from exp.nb_01 import FetchError, fetch_mnist


def unavailable(name, err):
    "A fetcher that explains why `name` cannot be fetched here (its module failed to import)."
    def _fetch(): raise FetchError(f"{name} needs the Python package {err.name!r} ({err}); run `pip install -r requirements.txt`")
    return _fetch


def fetchers():
    "Name -> fetch function; MovieLens comes from notebook 08's module (which needs pandas)."
    out = {'mnist': fetch_mnist}
    try: from exp.nb_08 import fetch_movielens
    except ImportError as e: out['movielens'] = unavailable('movielens', e)
    else: out['movielens'] = fetch_movielens
    return out


def main(*names):
    """Fetch datasets into data/ (or $EXP_DATA), checked against their SHA-256; print where each one is.

    Args:
      names: the datasets to fetch, mnist and/or movielens (default: both)
    """
    available = fetchers()
    unknown = [n for n in map(str, names) if n not in available]
    if unknown: raise cli.UsageError(f"unknown dataset {unknown[0]!r} (choose from {', '.join(available)})")
    for name in names or available:
        try: print(f"{name}: {available[name]()}")
        except FetchError as e: raise cli.UsageError(str(e))
    return 0


if __name__ == '__main__': cli.run(main, 'fetch_data')
