"""Small C loops that skct compiles once per machine and loads with ctypes.

:class:`NativeLibrary` builds a C source with the system C compiler (``$CC``, else
``cc``/``gcc``/``clang``; ``-O3 -march=native``, well under a second) into a private cache
directory (``$SKCT_CACHE_DIR``, else ``$XDG_CACHE_HOME/skct``, else ``~/.cache/skct``; used only
if owned by the user and not writable by others, else a fresh private temporary one), keyed
by the source, the compiler, its flags and the CPU, and loads it on first use. Without a
compiler, or on any failure, :meth:`NativeLibrary.get` returns None and the caller uses torch
operations instead (callers also decide whether to ask for it at all, e.g. the fast search
under ``SKCT_COMPILED_SEARCH=aten``). The sources ship inside the package; nothing is
downloaded.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import stat
import subprocess
import tempfile
import threading
from pathlib import Path

__all__ = ["NativeLibrary", "compiler", "private_dir", "float_variants"]

FLAGS = ["-O3", "-march=native", "-fopenmp-simd", "-shared", "-fPIC"]


def compiler():
    """Path of the C compiler skct uses, or None."""
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _cpu_fingerprint():
    flags = ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith(("flags", "model name", "Features")):
                    flags += line
                    if line.startswith(("flags", "Features")):
                        break
    except OSError:
        pass
    return f"{platform.machine()} {platform.processor()} {flags}"


def private_dir():
    """The user's kernel cache directory, or a fresh private temporary one."""
    base = os.environ.get("SKCT_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "skct")
    path = Path(base) / "kernels"
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        info = path.stat()
        shared = info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        safe = info.st_uid == os.getuid() and not shared
    except (OSError, AttributeError):
        safe = False
    return path if safe else Path(tempfile.mkdtemp(prefix="skct-kernels-"))


def float_variants(template, functions, undefine=()):
    """A C source with ``template`` once for float32 and once for float64.

    Around each copy ``REAL`` is ``float``/``double``, ``NAME(f)`` is ``f_f32``/``f_f64``
    and each macro of ``functions`` (name -> (float version, double version), e.g.
    ``{"EXP": ("expf", "exp")}``) is defined; after it those macros and the names in
    ``undefine`` (macros the template defines itself) are undefined.

    Examples
    --------
    >>> src = float_variants("REAL NAME(twice)(REAL x) { return 2 * x; }",
    ...                      {"EXP": ("expf", "exp")})
    >>> for line in src.splitlines():
    ...     if line.startswith("#define"):
    ...         print(line)
    #define REAL float
    #define EXP expf
    #define NAME(f) f##_f32
    #define REAL double
    #define EXP exp
    #define NAME(f) f##_f64
    """
    parts = ["#include <math.h>\n#include <stdint.h>\n"]
    for i, (suffix, real) in enumerate((("f32", "float"), ("f64", "double"))):
        defines = "".join(f"#define {k} {v[i]}\n" for k, v in functions.items())
        undefines = "".join(f"#undef {k}\n" for k in (*undefine, "REAL", *functions, "NAME"))
        parts.append(f"#define REAL {real}\n{defines}#define NAME(f) f##_{suffix}\n"
                     f"{template}\n{undefines}")
    return "".join(parts)


def _build(name, source, declare):
    cc = compiler()
    if cc is None or os.name != "posix":
        return None, "no C compiler"
    digest = hashlib.sha256("\0".join([source, cc, " ".join(FLAGS), _cpu_fingerprint()])
                            .encode()).hexdigest()[:20]
    folder = private_dir()
    target = folder / f"{name}_{digest}.so"
    if not target.exists():
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            src = Path(tmp) / "kernels.c"
            src.write_text(source)
            out = Path(tmp) / target.name
            proc = subprocess.run([cc, *FLAGS, "-o", str(out), str(src), "-lm"],
                                  capture_output=True, text=True, timeout=120)
            if proc.returncode != 0:
                return None, f"compilation failed: {proc.stderr.strip()[:500]}"
            os.replace(out, target)  # atomic: concurrent builds never load a partial file
    lib = ctypes.CDLL(str(target))
    declare(lib)
    return lib, f"loaded {target}"


class NativeLibrary:
    """One C source, built and loaded on the first :meth:`get` (thread-safe, tried once).

    Parameters
    ----------
    name : str
        File name stem of the built library.
    source : callable
        Returns the C source (called once, at the build).
    declare : callable
        Sets the ctypes ``argtypes``/``restype`` of the loaded library's functions.
    """

    def __init__(self, name, source, declare):
        self.name, self._source, self._declare = name, source, declare
        self._lock = threading.Lock()
        self.reset()

    def reset(self):
        """Forget the library (the next :meth:`get` builds or loads it again)."""
        self._lib, self._tried, self._status = None, False, "not built"

    def get(self):
        """The loaded library, or None where it cannot be built (see :attr:`status`)."""
        if not self._tried:
            with self._lock:
                if not self._tried:
                    try:
                        self._lib, self._status = _build(self.name, self._source(),
                                                         self._declare)
                    except (OSError, subprocess.SubprocessError) as exc:
                        self._lib, self._status = None, f"{type(exc).__name__}: {exc}"
                    self._tried = True
        return self._lib

    @property
    def status(self):
        """How the library was obtained ("loaded <path>") or why not (a short sentence)."""
        return self._status
