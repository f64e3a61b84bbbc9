"""moto 5.2.5's Transfer mock returns SshPublicKeys[].DateImported as a string ("1795852536.85"),
where AWS returns a number (epoch seconds); the AWS SDK for Rust then rejects the whole
DescribeUser reply. Return it as a number. Idempotent; run after pip install."""
import importlib.util
import pathlib
import sys

spec = importlib.util.find_spec("moto")
if spec is None or spec.origin is None:
    sys.exit("moto is not installed")
path = pathlib.Path(spec.origin).parent / "transfer" / "types.py"
old = '"DateImported": key.get("date_imported"),'
new = '"DateImported": float(key.get("date_imported")),'
text = path.read_text()
if old in text:
    path.write_text(text.replace(old, new))
    print("moto transfer DateImported: patched")
elif new not in text:
    sys.exit(f"{path}: DateImported line not found; moto changed, update this fix")
