"""How the compiled loops, written once per structure, run each cell's own math.

A structure's loops (``_gated_loops.py``) are compiled functions in a file of their own, cached on
disk by Numba. What differs from cell to cell is the body of a row: which entries of ``x W`` and
``h U`` a unit reads, its point function, where its results go. That body is *glue*: a few lines
of Python made from the cell's declaration (``glue_source`` shows them, e.g.
``print(glue_source(GRU))``), compiled and inlined where the loop calls it.

The loops learn which glue to call from their first argument, a ``CompiledCell``: Numba types it
as a ``CellType`` whose key is the cell's name and a fingerprint of its code (its point
functions, its declaration, this file and ``_math.py``). So every cell gets its own compiled
loops, cached under that key: a cell whose code has changed is compiled anew, never served
stale machine code, and the loops' own file is what Numba itself checks.
"""

import hashlib
import os

import numpy as np

from numba import types
from numba.extending import NativeValue, models, overload, register_model, typeof_impl, unbox

from ..cells._point import fingerprint
from ._math import ONE, ZERO, compiled_point, pointwise

_GLUE = {}                   # key -> the namespace of a cell's compiled glue and constants


class CompiledCell:
    """A cell as the compiled loops see it: its key, and (in ``_GLUE``) its glue."""

    def __init__(self, key):
        self.key = key

    def __repr__(self):
        return f"CompiledCell({self.key!r})"


class CellType(types.Type):
    """Numba's type of a ``CompiledCell``: one per cell (and version of its code)."""

    def __init__(self, key):
        self._key = key
        super().__init__(name=f"CellType({key})")

    @property
    def key(self):
        return self._key


@typeof_impl.register(CompiledCell)
def _typeof(value, c):
    return CellType(value.key)


register_model(CellType)(models.OpaqueModel)


@unbox(CellType)
def _unbox(typ, obj, c):
    return NativeValue(c.context.get_dummy_value())


def cell_function(name, params=""):
    """A stub that compiled loops call as ``name(cell, *params)``: it resolves, per cell type,
    to the function of that name in the cell's glue, called with ``params`` (inlined)."""
    args = f", {params}" if params else ""
    env = {"CellType": CellType, "_GLUE": _GLUE}
    exec(f"def {name}(cell{args}):\n"
         f"    raise NotImplementedError('{name} runs only inside compiled code')\n"
         f"\n"
         f"def resolve(cell{args}):\n"                # Numba's typing: the glue of this cell
         f"    if isinstance(cell, CellType):\n"
         f"        glue = _GLUE[cell.key]['{name}']\n"
         f"        def impl(cell{args}):\n"
         f"            return glue({params})\n"
         f"        return impl\n", env)
    overload(env[name], inline="always")(env["resolve"])
    return env[name]


_SOURCES = [os.path.join(os.path.dirname(__file__), name)
            for name in ("_glue.py", "_math.py", "_norms.py")]


def compiled_cell(kind, name, source, points):
    """The ``CompiledCell`` of a cell: its glue made from ``source`` (the glue's Python text)
    and compiled, the functions in it inlined where the loops call them. ``points`` maps the
    names the glue calls (``point``, ...) to the cell's point functions."""
    digest = hashlib.sha1(source.encode())
    digest.update(fingerprint(*points.values()).encode())
    for path in _SOURCES:
        with open(path, "rb") as f:
            digest.update(f.read())
    key = f"{kind}:{name}:{digest.hexdigest()[:16]}"
    if key not in _GLUE:
        from ._norms import batch_norm_running, layer_norm_row
        env = {**{k: compiled_point(f) for k, f in points.items()},
               "np": np, "ONE": ONE, "ZERO": ZERO, "layer_norm_row": layer_norm_row,
               "batch_norm_running": batch_norm_running}
        given = set(env)
        exec(compile(source, f"<glue of {name}>", "exec"), env)
        _GLUE[key] = {k: pointwise(f) for k, f in env.items()
                      if k not in given and not k.startswith("__")}
    return CompiledCell(key)


class Entries:
    """The machine code of the compiled loops for the argument types a cell's calls have, found
    once per key (the dtype) and then called directly. Numba's own dispatch by argument types
    runs in Python for a ``CellType`` argument, which at the ``tiny`` size costs a good part of
    rnn's loop. Only for arguments whose types the key decides: C-contiguous, writable
    arrays of that dtype, as the backends' wrappers make them."""

    def __init__(self):
        self._entries = {}

    def __call__(self, kernel, key, *args):
        entry = self._entries.get((kernel, key))
        if entry is None:
            from numba import typeof
            entry = self._entries[(kernel, key)] = kernel.compile(tuple(map(typeof, args)))
        return entry(*args)
