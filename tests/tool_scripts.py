"""Import a script under tools/ as a module, for tests that call its ``main`` or helpers.

Importable from every test module: pytest puts this folder (the suite-wide conftest's, which is
not a package) on sys.path.
"""
import importlib.util
from pathlib import Path

TOOLS = Path(__file__).resolve().parents[1] / 'tools'


def load_tool(relative_path):
    """The script ``tools/<relative_path>`` (e.g. 'analysis/benchmark.py'), freshly executed."""
    path = TOOLS / relative_path
    spec = importlib.util.spec_from_file_location(path.stem + '_tool', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
