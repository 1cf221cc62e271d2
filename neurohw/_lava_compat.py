"""Make lava-nc 0.10.0 importable on Python 3.11, and after Numba's parallel code ran.

1. Python 3.11's dataclasses reject a default whose class is unhashable; lava's
   ``compiler/var_model.py`` uses ``ByteEncoder()`` instances (an ``eq=True`` dataclass,
   hence unhashable) as defaults. We load it with ``@dataclass(unsafe_hash=True)`` on
   ``ByteEncoder``: same fields, same behaviour, hashable.
2. lava's message infrastructure calls ``mp.set_start_method('fork')`` at import, which
   raises once anything (Numba's parallel launch does) has fixed the start method, even
   to 'fork'. We let it pass when the method already is 'fork'.

3. lava-dl 0.6.0's ``lava.lib.dl.slayer`` imports ``object_detection`` unconditionally, which
   needs cv2 and torchvision (not installed here, not needed by slayer's blocks or netx). When
   either is missing we serve a stub module in its place; touching any name in it raises an
   ImportError that names the missing packages. (lava-dl needs fix 1 too: it imports lava-nc.)

The hook is a meta-path finder installed when neurohw is imported, before lava is: it
compiles the patched modules from their patched source and serves the stub. site-packages is
never touched.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types

PATCHES = {
    "lava.magma.compiler.var_model": (
        "@dataclass\nclass ByteEncoder:", "@dataclass(unsafe_hash=True)\nclass ByteEncoder:"),
    "lava.magma.runtime.message_infrastructure.multiprocessing": (
        "mp.set_start_method('fork')",
        "mp.set_start_method('fork', force=mp.get_start_method(allow_none=True) == 'fork')"),
}

# module -> the optional packages it imports; stubbed when any of them is missing
STUBS = {"lava.lib.dl.slayer.object_detection": ("cv2", "torchvision")}


class _StubModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        raise ImportError(f"{self.__name__}.{name}: this lava-dl module needs {', '.join(self.__missing__)}, "
                          f"which are not installed (neurohw stubbed the module so that slayer imports)")


class _StubLoader(importlib.abc.Loader):
    def __init__(self, missing):
        self.missing = missing

    def create_module(self, spec):
        mod = _StubModule(spec.name)
        mod.__missing__ = self.missing
        return mod

    def exec_module(self, module):
        pass


def _missing(packages) -> tuple[str, ...]:
    return tuple(p for p in packages if p not in sys.modules and importlib.util.find_spec(p) is None)


class _PatchedLoader(importlib.machinery.SourceFileLoader):
    def get_code(self, fullname):
        # Compile from the patched source; never use a bytecode cache of the unpatched file.
        old, new = PATCHES[fullname]
        source = self.get_data(self.path).decode("utf-8")
        return compile(source.replace(old, new), self.path, "exec", dont_inherit=True)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname in STUBS:
            missing = _missing(STUBS[fullname])
            return importlib.machinery.ModuleSpec(fullname, _StubLoader(missing)) if missing else None
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
