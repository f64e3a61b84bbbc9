"""Checks what `make package` wrote: for each function, target/lambda/<name>/bootstrap.zip holds
one executable `bootstrap`, an arm64 (aarch64) ELF without symbols or debug information, that
needs nothing from the provided.al2023 image but glibc (OpenSSL is built in) and no glibc newer
than the image's 2.34.

    python tests/infra/check_package.py NAME...   # the functions `make package` built

Exits non-zero with every failed check listed; prints each zip's size.
"""
import pathlib
import re
import struct
import subprocess
import sys
import tempfile
import zipfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
GLIBC_LIBS = {"libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1", "libgcc_s.so.1",
              "ld-linux-aarch64.so.1"}
AL2023_GLIBC = (2, 34)
EM_AARCH64 = 183


def readelf(args, path):
    return subprocess.run(["readelf", "-W", *args, str(path)], capture_output=True, text=True, check=True).stdout


def check(name, fail):
    zpath = ROOT / "target" / "lambda" / name / "bootstrap.zip"
    if not zpath.exists():
        fail(f"{name}: {zpath.relative_to(ROOT)} is missing (run make package)")
        return
    with zipfile.ZipFile(zpath) as z:
        entries = z.infolist()
        if [e.filename for e in entries] != ["bootstrap"]:
            fail(f"{name}: the zip holds {[e.filename for e in entries]}, not just bootstrap")
            return
        if not (entries[0].external_attr >> 16) & 0o111:
            fail(f"{name}: bootstrap is not executable in the zip")
        data = z.read("bootstrap")
    if data[:4] != b"\x7fELF" or struct.unpack_from("<H", data, 18)[0] != EM_AARCH64:
        fail(f"{name}: bootstrap is not an aarch64 ELF")
        return
    with tempfile.NamedTemporaryFile() as f:
        f.write(data)
        f.flush()
        sections = readelf(["-S"], f.name)
        for unwanted in (".symtab", ".debug_info", ".debug_line"):
            if re.search(rf"\s{re.escape(unwanted)}\s", sections):
                fail(f"{name}: bootstrap has {unwanted} (not stripped)")
        needed = set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", readelf(["-d"], f.name)))
        if needed - GLIBC_LIBS:
            fail(f"{name}: bootstrap needs {sorted(needed - GLIBC_LIBS)} from the image")
        versions = {tuple(map(int, v.split("."))) for v in re.findall(r"GLIBC_(\d+(?:\.\d+)+)", readelf(["--dyn-syms"], f.name))}
        newest = max(versions, default=(0,))
        if newest > AL2023_GLIBC:
            fail(f"{name}: bootstrap needs glibc {'.'.join(map(str, newest))}")
    print(f"{name}: {zpath.stat().st_size / 1e6:.1f} MB zipped, {len(data) / 1e6:.1f} MB bootstrap, "
          f"glibc {'.'.join(map(str, newest))} at most, needs {', '.join(sorted(needed))}")


def main():
    names = sys.argv[1:]
    if not names:
        raise SystemExit(__doc__)
    failures = []
    for name in names:
        check(name, failures.append)
    if failures:
        print("\n".join(f"FAIL {f}" for f in failures))
        sys.exit(1)
    print("check_package: ok")


if __name__ == "__main__":
    main()
