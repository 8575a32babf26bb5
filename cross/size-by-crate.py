#!/usr/bin/env python3
"""Bytes of the aarch64 bunkerd per crate, from the linker map cross/build.sh writes.

    cross/size-by-crate.py [MAP] [N]

MAP defaults to ~/.cache/bunker/target-aarch64/bunkerd.map; N (default 25)
rows are printed, the rest summed as "others". Why a map and not the symbol
table: the shipped binary is stripped, but every function still enters the
link as its own input section (.text.<mangled name>), and ld's map lists each
one kept with its size. Rust code is attributed to the crate that names the
function (the impl's type for `<T as Trait>::f`, the dropped type for
`drop_in_place<T>`); after LTO, inlined callees count for their caller. C and
assembly code is attributed to its static library (ring, aws-lc, sqlite...).
Anonymous constants (.rodata..L*, .rodata.cst*) form their own row, as do
.eh_frame and .gcc_except_table (unwind tables: panic = "unwind").
"""
import collections
import os
import re
import shutil
import subprocess
import sys

KINDS = (".text", ".rodata", ".data.rel.ro", ".data", ".gcc_except_table", ".tdata")


def input_sections(path):
    """Yields (section name, size, object file) for every input section kept in the output."""
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("Linker script and memory map"):
                break
        pending = None
        for line in f:
            if pending is not None:
                m = re.match(r"\s+0x[0-9a-f]+\s+0x([0-9a-f]+)\s+(\S.*)$", line)
                if m:
                    yield pending, int(m.group(1), 16), m.group(2)
                pending = None
                continue
            if not line.startswith(" ") or line.startswith(" *"):
                continue
            m = re.match(r" (\.\S+)(?:\s+0x[0-9a-f]+\s+0x([0-9a-f]+)\s+(\S.*))?$", line)
            if not m:
                continue
            if m.group(2) is None:
                pending = m.group(1)  # long name: address and size on the next line
            else:
                yield m.group(1), int(m.group(2), 16), m.group(3)


def demangle(names):
    tool = shutil.which("aarch64-linux-gnu-c++filt") or shutil.which("c++filt")
    if tool is None:
        return list(names)
    out = subprocess.run([tool], input="\n".join(names), capture_output=True, text=True, check=True).stdout
    return out.split("\n")[: len(names)]


def rust_crate(name):
    name = re.sub(r"\[[0-9a-f]+\]", "", name)  # v0 mangling's crate hashes
    m = re.match(r"core::ptr::drop_in_place<(.*)>$", name)
    if m:
        name = m.group(1)
    if name.startswith("OUTLINED_FUNCTION_"):
        return "(machine outliner: shared code of -Os functions)"
    m = re.match(r"<([^:<>]*) as ([A-Za-z_][A-Za-z0-9_]*)::", name)
    if m:
        return m.group(2)  # a primitive type's impl: the trait's crate
    name = re.sub(r"^[<&*(\[]+", "", name).replace("mut ", "").replace("dyn ", "").replace("const ", "")
    m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)::", name)
    if m:
        return m.group(1)
    return "(unattributed)"


def library(obj):
    m = re.search(r"/lib([^/()]+?)(?:-[0-9a-f]{16})?\.(?:a|rlib)\(", obj)
    if m:
        return "C: " + m.group(1)
    base = os.path.basename(obj)
    if ".rcgu.o" in base or "bunkerd" in base:
        return None  # Rust code of the LTO module
    return "C/other: " + re.sub(r"\(.*", "", base)


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.expanduser("~/.cache/bunker/target-aarch64/bunkerd.map")
    rows = int(sys.argv[2]) if len(sys.argv) > 2 else 25
    by = collections.Counter()
    kind_total = collections.Counter()
    rust = []
    for sec, size, obj in input_sections(path):
        kind = next((k for k in KINDS if sec == k or sec.startswith(k + ".")), None)
        if kind is None:
            if sec in (".eh_frame", ".eh_frame_hdr"):
                by["(unwind tables: .eh_frame)"] += size
                kind_total[".eh_frame"] += size
            continue
        kind_total[kind] += size
        if kind == ".gcc_except_table":
            by["(unwind tables: .gcc_except_table)"] += size
            continue
        lib = library(obj)
        sym = re.sub(r"^(unlikely|hot|startup|exit|split)\.", "", sec[len(kind) + 1 :])
        if lib is not None:
            by[lib] += size
        elif sym.startswith("_ZN") or sym.startswith("_R"):
            rust.append((sym, size))
        else:
            by["(anonymous constants and other)"] += size
    for (sym, size), name in zip(rust, demangle([s for s, _ in rust])):
        by[rust_crate(name)] += size
    total = sum(by.values())
    print(f"{'crate or library':40} {'bytes':>12} {'share':>7}")
    for name, size in by.most_common(rows):
        print(f"{name:40} {size:12,} {100 * size / total:6.1f}%")
    rest = sum(s for _, s in by.most_common()[rows:])
    print(f"{'others':40} {rest:12,} {100 * rest / total:6.1f}%")
    print(f"{'total (mapped input sections)':40} {total:12,}")
    print("by section kind: " + ", ".join(f"{k} {v:,}" for k, v in kind_total.most_common()))


if __name__ == "__main__":
    main()
