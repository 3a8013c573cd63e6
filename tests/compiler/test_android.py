"""Cross-linking for Android: the ELF a phone loads (parsed with pyelftools), linker choice, errors."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile

from edgeprune.base.errors import EdgepruneError
from edgeprune.compiler import android
from edgeprune.compiler.android import TRIPLE, export_library, find_linker, link_shared
from edgeprune.device.opencl_check import split_source
from tests.device.adreno_artifact import user_adreno_artifact


def elf_facts(path: Path) -> dict:
    with open(path, "rb") as f:
        elf = ELFFile(f)
        dynamic = next(s for s in elf.iter_sections() if isinstance(s, DynamicSection))
        return {
            "machine": elf["e_machine"],
            "type": elf["e_type"],
            "class": elf.elfclass,
            "needed": [t.needed for t in dynamic.iter_tags() if t.entry.d_tag == "DT_NEEDED"],
            "load_align": {seg["p_align"] for seg in elf.iter_segments() if seg["p_type"] == "PT_LOAD"},
        }


@pytest.fixture
def no_ndk(monkeypatch):
    monkeypatch.delenv("TVM_NDK_CC", raising=False)
    monkeypatch.delenv("ANDROID_NDK_HOME", raising=False)


@pytest.mark.parametrize("kind", ["clang-lld", "zig"])
def test_links_an_aarch64_shared_object_needing_bionic(tmp_path, no_ndk, monkeypatch, kind):
    source = tmp_path / "f.c"
    source.write_text("#include <stddef.h>\nvoid *memcpy(void *, const void *, size_t);\nfloat expf(float);\n"
                      "float f(float *d, const float *s) { memcpy(d, s, 16); return expf(d[0]); }\n")
    obj = tmp_path / "f.o"
    subprocess.run(["clang", f"--target={TRIPLE}", "-fPIC", "-c", "-o", str(obj), str(source)], check=True)
    if kind == "zig":
        pytest.importorskip("ziglang")
        monkeypatch.setenv("PATH", str(tmp_path))  # no clang: the ziglang wheel links
    linker = link_shared(tmp_path / "libf.so", [str(obj)])
    assert linker.kind == kind and "-nostdlib" in linker.flags
    facts = elf_facts(tmp_path / "libf.so")
    assert facts["machine"] == "EM_AARCH64" and facts["type"] == "ET_DYN" and facts["class"] == 64
    assert facts["needed"] == ["libc.so", "libm.so", "libdl.so"]
    assert facts["load_align"] == {16384}


def test_adreno_artifact_is_a_loadable_android_library_with_every_kernel(tmp_path_factory):
    art = user_adreno_artifact(tmp_path_factory)
    facts = elf_facts(art / "model.so")
    assert facts["machine"] == "EM_AARCH64" and facts["type"] == "ET_DYN"
    assert {"libc.so", "libm.so", "libdl.so"} <= set(facts["needed"])
    meta = json.loads((art / "meta.json").read_text())
    assert meta["linker"]["kind"] in ("clang-lld", "zig", "ndk") and meta["linker"]["version"]
    library = (art / "model.so").read_bytes()
    programs = split_source((art / meta["opencl"]["source"]).read_text())
    launch = json.loads((art / meta["opencl"]["launch"]).read_text())
    kernels = [k["name"] for f in launch["funcs"] for k in f["kernels"]]
    assert kernels and set(kernels) == set(programs)
    for name in kernels:
        body = programs[name]
        assert f"__kernel void {name}(".encode() in library
        assert body.encode() in library, f"{name}: its OpenCL program is not embedded in model.so"


def test_ndk_compiler_is_preferred_when_set(monkeypatch, tmp_path):
    fake = tmp_path / "aarch64-linux-android28-clang++"
    fake.write_text("#!/bin/sh\necho 'Android (1234) clang version 17.0.2'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("TVM_NDK_CC", str(fake))
    linker = find_linker()
    assert (linker.kind, linker.compiler, linker.version) == ("ndk", str(fake), "Android (1234) clang version 17.0.2")
    monkeypatch.delenv("TVM_NDK_CC")
    ndk = tmp_path / "ndk"
    bin_dir = ndk / "toolchains" / "llvm" / "prebuilt" / "linux-x86_64" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / fake.name).symlink_to(fake)
    monkeypatch.setenv("ANDROID_NDK_HOME", str(ndk))
    assert find_linker().compiler == str(bin_dir / fake.name)
    monkeypatch.setenv("ANDROID_NDK_HOME", str(tmp_path / "empty"))
    with pytest.raises(EdgepruneError, match="ANDROID_NDK_HOME=.*no aarch64-linux-android<API>-clang"):
        find_linker()


def test_no_toolchain_and_failed_links_are_one_line_errors(monkeypatch, tmp_path, no_ndk):
    garbage = tmp_path / "garbage.o"
    garbage.write_bytes(b"not an object")
    with pytest.raises(EdgepruneError, match="linking .*libg.so for Android failed") as info:
        link_shared(tmp_path / "libg.so", [str(garbage)])
    assert "\n" not in str(info.value) and not (tmp_path / "libg.so").exists()
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(android.importlib.util, "find_spec", lambda name: None)  # as if ziglang were not installed
    with pytest.raises(EdgepruneError, match="no Android linker: set TVM_NDK_CC .*apt-get install clang lld.*ziglang"):
        export_library(object(), tmp_path / "lib.so")
