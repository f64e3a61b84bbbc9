"""Four fixes to moto 5.2.5, each making it behave as AWS does. Idempotent; run after pip install.

1. The Transfer mock returns SshPublicKeys[].DateImported as a string ("1795852536.85"), where
   AWS returns a number (epoch seconds); the AWS SDK for Rust then rejects the whole DescribeUser
   reply. Return it as a number.
2. DynamoDB conditional writes are not atomic under moto's threaded server (below).
3. S3 GetBucketVersioning answers with a <GetBucketVersioningResponse> root element where AWS
   answers <VersioningConfiguration>; the AWS SDK for Rust refuses the reply (below).
4. S3 writes to a versioned key are not atomic under moto's threaded server either (below).
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


def serialise(module, cls, methods, marker, done):
    """Appends to moto's `module` (a path under moto/) a lock taken by each of `cls`'s `methods`
    (an RLock: one may call another), once: `marker` tells that it is there."""
    path = pathlib.Path(spec.origin).parent / module
    text = path.read_text()
    if marker in text:
        return
    if f"class {cls}(" not in text:
        sys.exit(f"{path}: {cls} not found; moto changed, update this fix")
    path.write_text(text + f'''

{marker} (tests/interop/fix_moto.py)
import threading as _mftg_threading

_MFTG_LOCK = _mftg_threading.RLock()


def _mftg_atomic(f):
    def wrapped(*args, **kwargs):
        with _MFTG_LOCK:
            return f(*args, **kwargs)

    wrapped.__wrapped__ = f
    return wrapped


for _mftg_name in {methods!r}:
    setattr({cls}, _mftg_name, _mftg_atomic(getattr({cls}, _mftg_name)))
''')
    print(done)


# DynamoDB applies each conditional write atomically; moto's threaded server runs requests on
# several threads with no lock, so two racing conditional PutItems can both succeed (seen: 2 of
# 50 claims accepted). Serialise moto's DynamoDB writes, as the real service behaves per item.
serialise("dynamodb/models/__init__.py", "DynamoDBBackend",
          ("put_item", "update_item", "delete_item", "transact_write_items"),
          "# mftg: atomic DynamoDB writes", "moto dynamodb writes: made atomic")

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

# S3 keeps every version of an object; moto keeps a key's versions in one list, which PutObject
# and DeleteObject (with a VersionId) each read, change and write back with no lock. Two of them
# at once on one key, on two of the server's threads, can lose one's change: a deleted version
# comes back, or a new one is lost (seen: one of fifty uploads of one name left under AS2/send
# after all fifty versions were deleted, ten at a time). Serialise them, as S3 is per version.
serialise("s3/models.py", "S3Backend", ("put_object", "delete_object"),
          "# mftg: atomic S3 version writes", "moto s3 version writes: made atomic")
