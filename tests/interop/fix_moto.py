"""Three fixes to moto 5.2.5, each making it behave as AWS does. Idempotent; run after pip install.

1. The Transfer mock returns SshPublicKeys[].DateImported as a string ("1795852536.85"), where
   AWS returns a number (epoch seconds); the AWS SDK for Rust then rejects the whole DescribeUser
   reply. Return it as a number.
2. DynamoDB conditional writes are not atomic under moto's threaded server (below).
3. S3 GetBucketVersioning answers with a <GetBucketVersioningResponse> root element where AWS
   answers <VersioningConfiguration>; the AWS SDK for Rust refuses the reply (below).
"""
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

# DynamoDB applies each conditional write atomically; moto's threaded server runs requests on
# several threads with no lock, so two racing conditional PutItems can both succeed (seen: 2 of
# 50 claims accepted). Serialise moto's DynamoDB writes, as the real service behaves per item.
models = pathlib.Path(spec.origin).parent / "dynamodb" / "models" / "__init__.py"
marker = "# mftg: atomic DynamoDB writes"
patch = f'''

{marker} (tests/interop/fix_moto.py)
import threading as _mftg_threading

_MFTG_WRITE_LOCK = _mftg_threading.RLock()


def _mftg_atomic(f):
    def wrapped(*args, **kwargs):
        with _MFTG_WRITE_LOCK:
            return f(*args, **kwargs)

    wrapped.__wrapped__ = f
    return wrapped


for _mftg_name in ("put_item", "update_item", "delete_item", "transact_write_items"):
    setattr(DynamoDBBackend, _mftg_name, _mftg_atomic(getattr(DynamoDBBackend, _mftg_name)))
'''
text = models.read_text()
if marker not in text:
    if "class DynamoDBBackend(" not in text:
        sys.exit(f"{models}: DynamoDBBackend not found; moto changed, update this fix")
    models.write_text(text + patch)
    print("moto dynamodb writes: made atomic")

# S3's GetBucketVersioning reply is <VersioningConfiguration><Status>Enabled</Status>...
# (no Status when versioning was never set); moto's serializer names the root after the action.
responses = pathlib.Path(spec.origin).parent / "s3" / "responses.py"
old = """        result = {"Status": versioning}
        self.data["Action"] = "GetBucketVersioning"
        return self.serialized(ActionResult(result))"""
new = """        # mftg: the root element AWS sends (tests/interop/fix_moto.py)
        status = f"<Status>{versioning}</Status>" if versioning else ""
        return 200, {}, (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"{status}</VersioningConfiguration>"
        )"""
text = responses.read_text()
if old in text:
    responses.write_text(text.replace(old, new))
    print("moto s3 GetBucketVersioning: patched")
elif new not in text:
    sys.exit(f"{responses}: get_bucket_versioning not found; moto changed, update this fix")
