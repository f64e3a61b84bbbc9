"""oscrypto 1.3.0 reads OpenSSL's version with r'\b(\d\.\d\.\d[a-z]*)\b', which cannot match
"3.0.19" (two-digit patch). Widen the patch number to \d+. Idempotent; run after pip install."""
import pathlib
import sys

import importlib.util

spec = importlib.util.find_spec("oscrypto")
if spec is None or spec.origin is None:
    sys.exit("oscrypto is not installed")
root = pathlib.Path(spec.origin).parent / "_openssl"
old = r"'\\b(\\d\\.\\d\\.\\d[a-z]*)\\b'"
new = r"'\\b(\\d\\.\\d\\.\\d+[a-z]*)\\b'"
changed = 0
for name in ("_libcrypto_cffi.py", "_libcrypto_ctypes.py"):
    path = root / name
    text = path.read_text()
    if old in text:
        path.write_text(text.replace(old, new))
        changed += 1
    elif new not in text:
        sys.exit(f"{path}: version regex not found; oscrypto changed, update this fix")
print(f"oscrypto version regex: {changed} file(s) patched")
