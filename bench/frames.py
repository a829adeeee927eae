#!/usr/bin/env python3
"""The async frame size of every async function in a binary, largest first.

Swift allocates an async function's frame (everything it keeps across suspension points, and
what it inlines) from its task's allocator, and a task keeps the slabs of the deepest frames it
ever ran until it ends: a held stream keeps its connection's. Each async function pointer
(symbols ending in `Tu`) records that frame's size beside the function's offset.

usage: frames.py BINARY [SUBSTRING]  ->  "size name" lines, names demangled (swift demangle)
"""
import struct
import subprocess
import sys


def main():
    binary = sys.argv[1]
    pattern = sys.argv[2] if len(sys.argv) > 2 else ""
    symbols = []
    for line in subprocess.run(["nm", "--defined-only", binary], capture_output=True, text=True, check=True).stdout.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[2].endswith("Tu"):
            symbols.append((int(parts[0], 16), parts[2]))
    segments = []
    for line in subprocess.run(["readelf", "-lW", binary], capture_output=True, text=True, check=True).stdout.splitlines():
        p = line.split()
        if p and p[0] == "LOAD":
            segments.append((int(p[2], 16), int(p[1], 16), int(p[4], 16)))
    with open(binary, "rb") as f:
        data = f.read()
    sizes = []
    for address, name in symbols:
        for start, offset, length in segments:
            if start <= address < start + length:
                at = address - start + offset
                _, size = struct.unpack("<iI", data[at:at + 8])
                sizes.append((size, name))
                break
    sizes.sort(reverse=True)
    names = subprocess.run(["swift", "demangle", "--simplified"], input="\n".join(n for _, n in sizes),
                           capture_output=True, text=True, check=True).stdout.splitlines()
    for (size, _), name in zip(sizes, names):
        name = name.removeprefix("async function pointer to ")
        if pattern in name:
            print(size, name)


if __name__ == "__main__":
    try:
        main()
    except BrokenPipeError:
        pass
