"Shared by the tests: the tools in tools/ import as plain modules (`import run_notebook`)."
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT/'tools') not in sys.path: sys.path.insert(0, str(ROOT/'tools'))
