#!/usr/bin/env python3
"""Checks Lambda zips as Lambda takes them (used by scripts/package-lambdas.sh).

    check-lambda-zips.py ARCH ZIP...     ARCH: arm64 | x86-64

Each zip must hold `bootstrap` at its root (provided.al2023 runs
$LAMBDA_TASK_ROOT/bootstrap), executable, an ELF64 executable of ARCH, without
debug sections or a symbol table, within Lambda's sizes (50 MB zipped by
direct upload, 250 MB unzipped). Prints one line per zip; exits 1 naming the
first zip that fails and why.
"""
import stat
import sys
import zipfile

MACHINES = {"arm64": (0xB7, "aarch64"), "x86-64": (0x3E, "x86_64")}


def elf_section_names(data):
    # ELF64 little-endian: the section headers and their name table.
    u = lambda off, n: int.from_bytes(data[off:off + n], "little")
    shoff, shentsize, shnum, shstrndx = u(0x28, 8), u(0x3A, 2), u(0x3C, 2), u(0x3E, 2)
    header = lambda i: shoff + i * shentsize
    strtab = u(header(shstrndx) + 0x18, 8)
    names = []
    for i in range(shnum):
        start = strtab + u(header(i), 4)
        names.append(data[start:data.index(b"\0", start)].decode())
    return names


def check(path, machine, machine_name):
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        if "bootstrap" not in names:
            return f"{path} has no bootstrap at its root (it has {names})"
        info = z.getinfo("bootstrap")
        mode = info.external_attr >> 16
        if not mode & stat.S_IXUSR:
            return f"{path}: bootstrap is not executable (mode {oct(mode)})"
        data = z.open("bootstrap").read()
        if data[:4] != b"\x7fELF" or data[4] != 2 or int.from_bytes(data[18:20], "little") != machine:
            return f"{path}: bootstrap is not an {machine_name} ELF64 executable"
        kept = sorted(n for n in elf_section_names(data) if n.startswith(".debug") or n == ".symtab")
        if kept:
            return f"{path}: bootstrap keeps {', '.join(kept)}: package-lambdas.sh must strip it"
        if info.compress_size > 50 * 1000 * 1000 or info.file_size > 250 * 1000 * 1000:
            return f"{path}: {info.compress_size} bytes zipped, {info.file_size} unzipped: over Lambda's limits"
        print(f"{path}: bootstrap, {info.file_size} bytes ({info.compress_size} zipped), "
              f"{machine_name}, stripped, mode {oct(mode & 0o777)}")
    return None


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in MACHINES:
        sys.exit(f"usage: {sys.argv[0]} arm64|x86-64 ZIP...")
    machine, machine_name = MACHINES[sys.argv[1]]
    for path in sys.argv[2:]:
        failure = check(path, machine, machine_name)
        if failure:
            sys.exit(failure)


main()
