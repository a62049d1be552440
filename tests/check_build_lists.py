#!/usr/bin/env python3
"""Both builds must list the same C++ sources (STYLE: "neither rots"), and the
plain layer stays plain.

Reads every CMakeLists.txt (paths relative to its folder) and meson.build (paths
relative to the top) and prints the sources that only one of them builds. Then
checks that no file of signaling/common/ (library portier_common: STL and
libcrypto only) includes a GLib, sofia-sip, GStreamer or systemd header; those
belong to signaling/runtime/, sip/ and media/.
"""
import pathlib
import re
import sys

top = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
pattern = re.compile(r"[\w/.-]+\.(?:cpp|cc|c)\b")


def skipped(path):
    """Build trees and other projects' files are not ours to compare."""
    parts = path.relative_to(top).parts
    return len(parts) > 1 and (parts[0].startswith("build") or parts[0].startswith("."))


def sources(build_file):
    """Every existing source named in every `build_file` of the tree."""
    found = set()
    for bf in top.rglob(build_file):
        if skipped(bf):
            continue
        for m in pattern.findall(bf.read_text()):
            p = (bf.parent / m).resolve()
            if p.is_file():
                found.add(str(p.relative_to(top)))
    return found


glue_include = re.compile(
    r'^\s*#\s*include\s*[<"]((?:glib|gio|gst|gobject|sofia-sip|systemd|gtk)[/.-][^>"]*)[>"]',
    re.MULTILINE)


def glue_includes(folder):
    """(file, header) for every include of a glue library's header under `folder`."""
    found = []
    for f in sorted((top / folder).rglob("*")):
        if f.suffix in (".h", ".cpp", ".cc", ".c"):
            for header in glue_include.findall(f.read_text()):
                found.append((str(f.relative_to(top)), header))
    return found


c, m = sources("CMakeLists.txt"), sources("meson.build")
only_c, only_m = sorted(c - m), sorted(m - c)
for s in only_c:
    print(f"only in CMake: {s}")
for s in only_m:
    print(f"only in meson: {s}")
if not c:
    print("no sources found in CMakeLists.txt: wrong top directory?")
    sys.exit(1)
print(f"{len(c & m)} sources in both builds")
glue = glue_includes("signaling/common")
for f, header in glue:
    print(f"{f}: includes <{header}>: signaling/common/ is plain C++")
sys.exit(1 if only_c or only_m or glue else 0)
