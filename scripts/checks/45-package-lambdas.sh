#!/usr/bin/env bash
# Packages the dispatcher Lambdas (scripts/package-lambdas.sh, arm64 as the
# module's default) and checks each zip holds an executable aarch64 `bootstrap`.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${BATCHFAN_LAMBDA_OUT:-target/lambda}
start=$(date +%s)
bash scripts/package-lambdas.sh --arm64 --out "$out"
echo "packaging took $(( $(date +%s) - start ))s"
python3 - "$out" <<'PY'
import stat, sys, zipfile
out = sys.argv[1]

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
for name in ("trigger", "submit", "alert"):
    path = f"{out}/{name}/bootstrap.zip"
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        if "bootstrap" not in names:
            sys.exit(f"{path} has no bootstrap (it has {names})")
        info = z.getinfo("bootstrap")
        mode = info.external_attr >> 16
        if not mode & stat.S_IXUSR:
            sys.exit(f"{path}: bootstrap is not executable (mode {oct(mode)})")
        data = z.open("bootstrap").read()
        if data[:4] != b"\x7fELF" or int.from_bytes(data[18:20], "little") != 0xB7:
            sys.exit(f"{path}: bootstrap is not an aarch64 ELF executable")
        sections = elf_section_names(data)
        kept = sorted(n for n in sections if n.startswith(".debug") or n == ".symtab")
        if kept:
            sys.exit(f"{path}: bootstrap keeps {', '.join(kept)}: package-lambdas.sh must strip it")
        # Lambda takes zips of up to 50 MB by direct upload, 250 MB unzipped.
        if info.compress_size > 50 * 1000 * 1000 or info.file_size > 250 * 1000 * 1000:
            sys.exit(f"{path}: {info.compress_size} bytes zipped, {info.file_size} unzipped: over Lambda's limits")
        print(f"{path}: bootstrap, {info.file_size} bytes ({info.compress_size} zipped), aarch64, stripped, mode {oct(mode & 0o777)}")
PY
