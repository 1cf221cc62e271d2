"""Make lava-nc 0.10.0 importable on Python 3.11, and after Numba's parallel code ran.

1. Python 3.11's dataclasses reject a default whose class is unhashable; lava's
   ``compiler/var_model.py`` uses ``ByteEncoder()`` instances (an ``eq=True`` dataclass,
   hence unhashable) as defaults. We load it with ``@dataclass(unsafe_hash=True)`` on
   ``ByteEncoder``: same fields, same behaviour, hashable.
2. lava's message infrastructure calls ``mp.set_start_method('fork')`` at import, which
   raises once anything (Numba's parallel launch does) has fixed the start method, even
   to 'fork'. We let it pass when the method already is 'fork'.

The hook is a meta-path finder installed when neurohw is imported, before lava is: it
compiles those two modules from their patched source. site-packages is never touched.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys

PATCHES = {
    "lava.magma.compiler.var_model": (
        "@dataclass\nclass ByteEncoder:", "@dataclass(unsafe_hash=True)\nclass ByteEncoder:"),
    "lava.magma.runtime.message_infrastructure.multiprocessing": (
        "mp.set_start_method('fork')",
        "mp.set_start_method('fork', force=mp.get_start_method(allow_none=True) == 'fork')"),
}


class _PatchedLoader(importlib.machinery.SourceFileLoader):
    def get_code(self, fullname):
        # Compile from the patched source; never use a bytecode cache of the unpatched file.
        old, new = PATCHES[fullname]
        source = self.get_data(self.path).decode("utf-8")
        return compile(source.replace(old, new), self.path, "exec", dont_inherit=True)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname not in PATCHES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            return spec
        spec.loader = _PatchedLoader(fullname, spec.origin)
        return spec


def install() -> None:
    """Idempotent: one finder at the front of sys.meta_path."""
    if sys.version_info >= (3, 11) and not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
