"""Cross-linking for Android: an aarch64 ELF shared library a phone's TVM runtime can dlopen.

TVM generates aarch64 object files (the host code, and ``devc.o`` with the OpenCL source
packed in); this module links them. With the Android NDK (``TVM_NDK_CC`` naming its clang, or
``ANDROID_NDK_HOME``) its clang links as TVM's own ``tvm.contrib.ndk`` does. Without an NDK,
Debian's clang + lld link for ``aarch64-linux-android`` with ``-nostdlib`` (or, where no clang
is installed, Zig's bundled clang from the ``ziglang`` wheel on PyPI); libc, libm and libdl
then come from tiny stub libraries generated here, which carry only the soname, so that the
library records ``NEEDED libc.so/libm.so/libdl.so`` and Bionic's loader resolves ``memcpy``,
``expf`` and friends at load time, as it would for an NDK-linked library. The TVM runtime's own
symbols (``TVMBackend*``, ``TVMFFI*``) stay undefined, as with the NDK: the process that loads
the library (``tvm_rpc``, an app) already has the runtime loaded.

16 KiB pages (``-z max-page-size=16384``) keep the library loadable on Android 15 devices
with 16 KiB pages as well as on 4 KiB ones.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeprune.base.errors import EdgepruneError

TRIPLE = "aarch64-linux-android"
NDK_API = 28
PAGE_FLAGS = ["-Wl,-z,max-page-size=16384"]
RUNTIME_LIBS = ("c", "m", "dl")


@dataclass(frozen=True)
class Linker:
    """How an Android library is linked: ``ndk``, ``clang-lld`` (Debian clang + lld) or ``zig`` (PyPI's ziglang)."""

    kind: str
    compiler: str
    version: str
    flags: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "compiler": self.compiler, "version": self.version, "flags": self.flags}


def _version(compiler: str) -> str:
    try:
        out = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=60, check=False).stdout
    except OSError as exc:
        raise EdgepruneError(f"{compiler}: cannot run the Android linker ({exc})") from exc
    return out.strip().splitlines()[0] if out.strip() else "unknown"


def _ndk_clang(ndk_home: str) -> str:
    """The aarch64 clang of an NDK: API ``NDK_API`` if present, else the lowest one it has."""
    bins = sorted(glob.glob(os.path.join(ndk_home, "toolchains", "llvm", "prebuilt", "*", "bin")))
    for folder in bins:
        preferred = os.path.join(folder, f"{TRIPLE}{NDK_API}-clang++")
        if os.path.exists(preferred):
            return preferred
        found = sorted(glob.glob(os.path.join(folder, f"{TRIPLE}[0-9]*-clang++")),
                       key=lambda p: int(os.path.basename(p)[len(TRIPLE):].split("-")[0]))
        if found:
            return found[0]
    raise EdgepruneError(f"ANDROID_NDK_HOME={ndk_home}: no {TRIPLE}<API>-clang++ under toolchains/llvm/prebuilt/*/bin")


def find_linker() -> Linker:
    """The NDK's clang if the user has one (``TVM_NDK_CC``, ``ANDROID_NDK_HOME``), else clang + lld."""
    ndk_cc = os.environ.get("TVM_NDK_CC")
    if ndk_cc:
        return Linker("ndk", ndk_cc, _version(ndk_cc), ["-shared", "-fPIC", *PAGE_FLAGS])
    ndk_home = os.environ.get("ANDROID_NDK_HOME")
    if ndk_home:
        clang = _ndk_clang(ndk_home)
        return Linker("ndk", clang, _version(clang), ["-shared", "-fPIC", *PAGE_FLAGS])
    clang, lld = shutil.which("clang"), shutil.which("ld.lld")
    if clang is not None and lld is not None:
        flags = [f"--target={TRIPLE}", "-shared", "-nostdlib", "-fuse-ld=lld", *PAGE_FLAGS]
        return Linker("clang-lld", clang, _version(clang), flags)
    if importlib.util.find_spec("ziglang") is not None:
        version = subprocess.run([sys.executable, "-m", "ziglang", "version"], capture_output=True, text=True,
                                 timeout=60, check=False).stdout.strip()
        flags = ["-m", "ziglang", "cc", "-target", TRIPLE, "-shared", "-nostdlib", *PAGE_FLAGS]
        return Linker("zig", sys.executable, f"zig {version or 'unknown'}", flags)
    raise EdgepruneError(
        "no Android linker: set TVM_NDK_CC (the NDK's aarch64 clang) or ANDROID_NDK_HOME, "
        "install clang and lld (apt-get install clang lld), or pip install ziglang"
    )


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise EdgepruneError(f"{what} failed ({' '.join(cmd[:3])} ...): {detail[0] if detail else proc.returncode}")


def _stub_libs(linker: Linker, folder: Path) -> list[str]:
    """``lib{c,m,dl}.so`` holding only their sonames, and the arguments that make them NEEDED."""
    source = folder / "stub.c"
    source.write_text("/* soname-only stub: the phone's Bionic provides the symbols */\n")
    for lib in RUNTIME_LIBS:
        name = f"lib{lib}.so"
        _run([linker.compiler, *linker.flags, f"-Wl,-soname,{name}", "-o", str(folder / name), str(source)],
             f"building the {name} stub")
    # Named by path, not -lc: zig's driver takes -lc as "provide a libc", which it cannot for Android.
    return ["-Wl,--no-as-needed", *(str(folder / f"lib{lib}.so") for lib in RUNTIME_LIBS)]


def link_shared(output: str | os.PathLike[str], objects: Sequence[str], linker: Linker | None = None) -> Linker:
    """Link ``objects`` (aarch64 objects or C sources) into the shared library ``output``."""
    linker = linker or find_linker()
    with tempfile.TemporaryDirectory(prefix="edgeprune-android-") as tmp:
        libs = _stub_libs(linker, Path(tmp)) if linker.kind != "ndk" else [f"-l{lib}" for lib in RUNTIME_LIBS]
        _run([linker.compiler, *linker.flags, "-o", str(output), *objects, *libs], f"linking {output} for Android")
    return linker


def export_library(executable: Any, output: str | os.PathLike[str], linker: Linker | None = None) -> Linker:
    """``executable.export_library`` for Android: TVM writes aarch64 objects, this links them."""
    linker = linker or find_linker()

    def fcompile(file_name: str, files: list[str], **_: Any) -> None:
        link_shared(file_name, files, linker)

    fcompile.output_format = "so"  # type: ignore[attr-defined]
    executable.export_library(str(output), fcompile=fcompile)
    return linker
