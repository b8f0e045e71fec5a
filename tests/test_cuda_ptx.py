"""Every CUDA kernel compiled for a real GPU (PTX for compute capability 9.0), without one.

Numba's simulator runs the kernels as Python, so it checks none of what the real compiler
insists on: types, no allocation in kernels, constant shapes of shared arrays. Here the cuda
backend's forward, backward and step run "dry": device arrays are NumPy arrays, and each kernel
launch compiles the kernel for the argument types it was given (``numba.cuda.compile_ptx``,
which needs NVVM from the CUDA toolkit but no GPU) instead of running it. The numbers computed
are meaningless; what is checked is that every kernel of every variant and dtype compiles, and
that no float32 kernel does float64 arithmetic.

Runs without the simulator and without a GPU (it is skipped in the simulator's process).
"""

import os
import re
from types import SimpleNamespace

import numpy as np
import pytest

import minigru as mg

if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0"):
    pytest.skip("PTX compilation is checked outside the simulator's process",
                allow_module_level=True)
cuda = pytest.importorskip("numba.cuda", reason="numba-cuda is not installed")
from numba.cuda import dispatcher as cuda_dispatcher  # noqa: E402
from numba.cuda.cudadrv import dummyarray  # noqa: E402

CC = (9, 0)                                           # H100


def _have_nvvm():
    try:
        cuda.compile_ptx(lambda a: None, "void(float32[:])", cc=CC)
    except Exception as e:                            # noqa: BLE001 - any reason means "no NVVM"
        return str(e).splitlines()[0]
    return None


_no_nvvm = _have_nvvm()
pytestmark = pytest.mark.skipif(bool(_no_nvvm), reason=f"no NVVM to compile PTX with "
                                f"(pip install 'minigru[cuda]'): {_no_nvvm}")


class DryDeviceArray(np.ndarray):
    """A NumPy array standing in for a device array: it has their copy methods, and refuses the
    indexing and reshapes a device array refuses (``...``, ``None``, a reshape that would copy),
    by asking Numba's own model of a device array's layout; ``.T`` copies, as on the device."""
    __cuda_ndarray__ = True

    def _layout(self):
        return dummyarray.Array.from_desc(0, self.shape, self.strides, self.itemsize)

    def __getitem__(self, item):
        self._layout().__getitem__(item)               # raises where a device array would
        return super().__getitem__(item)

    def reshape(self, *shape, **kw):
        self._layout().reshape(*shape, **kw)
        return super().reshape(*shape, **kw)

    @property
    def T(self):
        return _dry(np.asarray(self).T)

    def copy_to_device(self, src):
        np.copyto(self, np.asarray(src))

    def copy_to_host(self):
        return np.array(self)

    def is_c_contiguous(self):
        return self.flags.c_contiguous


def _dry(a):
    return np.array(np.asarray(a), order="C").view(DryDeviceArray)


COMPILED = {}     # (kernel, argument types) -> PTX text
LAUNCHES = []     # the kernels launched, in order


def _compile_instead_of_launch(launch, *args):
    kernel = launch.dispatcher
    LAUNCHES.append(kernel.py_func.__name__)
    argtypes = tuple(kernel.typeof_pyval(a) for a in args)
    key = (kernel.py_func, argtypes)
    if key not in COMPILED:
        COMPILED[key] = cuda.compile_ptx(kernel.py_func, argtypes, cc=CC)[0]


@pytest.fixture
def dry_cuda(monkeypatch):
    monkeypatch.setattr(cuda, "is_available", lambda: True)
    monkeypatch.setattr(cuda, "device_array", lambda shape, dtype: _dry(np.zeros(shape, dtype)))
    monkeypatch.setattr(cuda, "to_device", _dry)
    # device functions ask the current device for its compute capability
    monkeypatch.setattr(cuda_dispatcher, "get_current_device",
                        lambda: SimpleNamespace(compute_capability=CC))
    monkeypatch.setattr(cuda_dispatcher._LaunchConfiguration, "__call__",
                        _compile_instead_of_launch)
    # an H100's 132 multiprocessors, and room for every persistent grid
    from minigru.cuda import _blas
    monkeypatch.setattr(_blas, "multiprocessors", lambda: 132)
    monkeypatch.setattr(_blas, "co_resident_blocks", lambda *args: 10 ** 6)
    yield


OPTIONS = {"rru": {"dropout": 0.25, "seed": 0}}


def run_everything(name, dtype):
    """Forward (training and evaluation), backward and step of ``name`` on the dry device."""
    cell = mg.cell(name, backend="cuda", **OPTIONS.get(name, {}))
    rng = np.random.default_rng(0)
    p = cell.init(3, 5, rng=rng, dtype=dtype)
    x = rng.standard_normal((2, 3, 3)).astype(dtype)
    for training in (True, False):
        ys, state, cache = cell.forward(p, x, training=training)
    cell.backward(p, cache, np.ones(ys.shape, dtype))
    cell.step(p, x[0])
    if "scan" in cell.variant.run_options:            # the block-level scan (cuda/_scan.py)
        scan = mg.cell(name, backend="cuda", scan="parallel")
        ys, state, cache = scan.forward(p, x)
        scan.backward(p, cache, np.ones(ys.shape, dtype))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", mg.VARIANTS)
def test_every_kernel_compiles_to_ptx(name, dtype, dry_cuda, monkeypatch):
    before = set(COMPILED)
    LAUNCHES.clear()
    from minigru.cuda import _blas
    for persistent in (True, False):                  # the persistent and per-step kernels
        monkeypatch.setattr(_blas, "PERSISTENT", persistent)
        run_everything(name, np.dtype(dtype))
    assert LAUNCHES, f"{name} {dtype}: no kernel was launched"
    # a kernel compiled by an earlier test for the same argument types is not compiled again
    new = {k: ptx for k, ptx in COMPILED.items() if k not in before}
    for (kernel, argtypes), ptx in new.items():
        assert ".entry" in ptx, f"{name} {dtype}: {kernel.__name__} gave no kernel"
        if dtype == "float32":
            f64 = re.findall(r"^\s*\w+(?:\.\w+)*\.f64\b.*$", ptx, flags=re.M)
            assert not f64, (f"{name} float32: {kernel.__name__}{argtypes} does float64 "
                             f"arithmetic, e.g. {f64[0].strip()!r}")
