"""Checks the SAM template offline: aws-sam-translator turns it into CloudFormation, cfn-lint
finds nothing in either, and the facts the deployment depends on hold in the result.

    python tests/infra/check_sam.py [OUT_DIR]     # writes OUT_DIR/sam.json (default target/infra)

Exits non-zero with every failed check listed.
"""
import json
import os
import pathlib
import subprocess
import sys

from cfnlint.decode import cfn_yaml
from samtranslator.translator.transform import transform

ROOT = pathlib.Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "sam" / "template.yaml"

# The seed's lifecycle rules (section 2.2): prefix -> (days to noncurrent, noncurrent days).
LIFECYCLE = {
    "AS2/files/": (35, 35),
    "AS2/raw-message/": (35, 35),
    "AS2/raw-mdn/": (35, 35),
    "AS2/headers/": (35, 35),
    "AS2/tmp/": (1, 1),
}
NEVER_EXPIRE = ("AS2/send/", "AS2/duplicate/", "AS2/keystore/")
DATA_SERVICES = ("s3:", "dynamodb:", "sqs:", "secretsmanager:", "transfer:")


class NoManagedPolicies:
    """The template names no managed policies, so nothing needs IAM to look them up."""

    def load(self):
        return {}


def plain(value):
    """cfn-lint's YAML nodes as plain dicts, lists and strings."""
    return json.loads(json.dumps(value, default=str))


def translate():
    sam = plain(cfn_yaml.load(str(TEMPLATE)))
    # What `sam package` does: local code directories become uploaded artifacts.
    for name, r in sam["Resources"].items():
        uri = r.get("Properties", {}).get("CodeUri")
        if isinstance(uri, str) and not uri.startswith("s3://"):
            if not uri.startswith("../../target/lambda/"):
                raise SystemExit(f"{name}: CodeUri {uri} is not a cargo lambda build directory")
            r["Properties"]["CodeUri"] = f"s3://mftg-artifacts/{pathlib.PurePath(uri).name}.zip"
    # Offline: the pseudo parameters come from here, not from a session with AWS.
    os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
    return sam, transform(sam, {}, NoManagedPolicies())


def resources(cfn, kind):
    return {k: v for k, v in cfn["Resources"].items() if v["Type"] == kind}


def statements(policy_document):
    s = policy_document.get("Statement", [])
    return s if isinstance(s, list) else [s]


def listify(v):
    return v if isinstance(v, list) else [v]


def check(cfn, fail):
    buckets = resources(cfn, "AWS::S3::Bucket")
    if len(buckets) != 1:
        fail(f"one bucket expected, found {list(buckets)}")
        return
    bucket = next(iter(buckets.values()))["Properties"]
    if bucket.get("BucketName") != {"Fn::Sub": "mftg-${AccountId}"}:
        fail(f"bucket name: {bucket.get('BucketName')}")
    if bucket.get("VersioningConfiguration", {}).get("Status") != "Enabled":
        fail("bucket versioning is not enabled")
    if not bucket.get("BucketEncryption"):
        fail("bucket encryption is not set")
    pab = bucket.get("PublicAccessBlockConfiguration", {})
    if not all(pab.get(k) is True for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")):
        fail(f"public access not blocked: {pab}")

    # Lifecycle: exactly the seed's rules with their day counts; nothing else expires.
    rules = [r for r in bucket["LifecycleConfiguration"]["Rules"] if r.get("Status") == "Enabled"]
    expiring = {r.get("Prefix", ""): (r.get("ExpirationInDays"), r.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays"))
                for r in rules if "ExpirationInDays" in r}
    if expiring != LIFECYCLE:
        fail(f"lifecycle rules: {expiring} != {LIFECYCLE}")
    for kept in NEVER_EXPIRE:
        for r in rules:
            if kept.startswith(r.get("Prefix", "")) and ("ExpirationInDays" in r or "NoncurrentVersionExpiration" in r):
                fail(f"{kept} would expire under rule {r.get('Id')}")
    if not any(r.get("ExpiredObjectDeleteMarker") is True for r in rules):
        fail("expired delete markers are not removed")
    if not any(r.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation") and r.get("Prefix", "") == "" for r in rules):
        fail("incomplete multipart uploads are not aborted bucket-wide")

    # TLS-only bucket policy.
    policies = resources(cfn, "AWS::S3::BucketPolicy")
    tls = [s for p in policies.values() for s in statements(p["Properties"]["PolicyDocument"])
           if s.get("Effect") == "Deny" and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"]
    if not tls:
        fail("no TLS-only bucket policy")

    # Notifications: Put, Post, CompleteMultipartUpload under AS2/send/ to send-trigger; never Copy.
    notes = bucket.get("NotificationConfiguration", {}).get("LambdaConfigurations", [])
    events = sorted(n["Event"] for n in notes)
    if events != ["s3:ObjectCreated:CompleteMultipartUpload", "s3:ObjectCreated:Post", "s3:ObjectCreated:Put"]:
        fail(f"notification events: {events}")
    for n in notes:
        rules_ = n.get("Filter", {}).get("S3Key", {}).get("Rules", [])
        if rules_ != [{"Name": "prefix", "Value": "AS2/send/"}]:
            fail(f"notification filter: {rules_}")
        if n.get("Function") != {"Fn::GetAtt": ["SendTriggerFunction", "Arn"]}:
            fail(f"notification target: {n.get('Function')}")

    # Tables: TTL on the claims, the message indexes.
    tables = resources(cfn, "AWS::DynamoDB::Table")
    claims = tables.get("ClaimsTable", {}).get("Properties", {})
    if claims.get("TimeToLiveSpecification") != {"AttributeName": "expires_at", "Enabled": True}:
        fail(f"claims TTL: {claims.get('TimeToLiveSpecification')}")
    indexes = sorted(i["IndexName"] for i in tables.get("MessagesTable", {}).get("Properties", {}).get("GlobalSecondaryIndexes", []))
    if indexes != ["by_pair", "by_station", "by_time"]:
        fail(f"message indexes: {indexes}")

    # Queue with a dead-letter queue and an alarm on it.
    queues = resources(cfn, "AWS::SQS::Queue")
    send = queues.get("SendQueue", {}).get("Properties", {})
    if send.get("RedrivePolicy", {}).get("deadLetterTargetArn") != {"Fn::GetAtt": ["SendDeadLetterQueue", "Arn"]}:
        fail("the send queue has no dead-letter queue")
    alarms = [a["Properties"] for a in resources(cfn, "AWS::CloudWatch::Alarm").values()]
    if not any(d.get("Value") == {"Fn::GetAtt": ["SendDeadLetterQueue", "QueueName"]} for a in alarms for d in a.get("Dimensions", [])):
        fail("no alarm on the dead-letter queue")

    # Functions: provided.al2023, arm64, JSON logs; the sender's batch failures.
    functions = resources(cfn, "AWS::Lambda::Function")
    names = {"SendTriggerFunction", "As2SenderFunction", "As2ReceiverFunction", "SftpProvisionerFunction", "LifecycleInstallerFunction"}
    if set(functions) != names:
        fail(f"functions: {sorted(functions)}")
    for name, f in functions.items():
        p = f["Properties"]
        if (p.get("Runtime"), p.get("Architectures"), p.get("Handler")) != ("provided.al2023", ["arm64"], "bootstrap"):
            fail(f"{name}: runtime {p.get('Runtime')} {p.get('Architectures')} {p.get('Handler')}")
        if p.get("LoggingConfig", {}).get("LogFormat") != "JSON":
            fail(f"{name}: logs are not JSON")
    mappings = resources(cfn, "AWS::Lambda::EventSourceMapping")
    if not any(m["Properties"].get("FunctionResponseTypes") == ["ReportBatchItemFailures"] for m in mappings.values()):
        fail("as2-sender does not report batch item failures")
    if functions.get("As2SenderFunction", {}).get("Properties", {}).get("ReservedConcurrentExecutions") is None:
        fail("as2-sender has no reserved concurrency")
    urls = resources(cfn, "AWS::Lambda::Url")
    if [u["Properties"]["TargetFunctionArn"] for u in urls.values()] != [{"Ref": "As2ReceiverFunction"}]:
        fail(f"function URLs: {urls}")
    if "As2EndpointUrl" not in cfn.get("Outputs", {}):
        fail("no output with the AS2 endpoint URL")

    # Least privilege: no wildcard actions on data services, no "*" resources for them.
    for name, role in resources(cfn, "AWS::IAM::Role").items():
        for pol in role["Properties"].get("Policies", []):
            for s in statements(pol["PolicyDocument"]):
                if s.get("Effect") != "Allow":
                    continue
                actions = listify(s.get("Action", []))
                for a in actions:
                    if a == "*" or (a.startswith(DATA_SERVICES) and a.endswith("*")):
                        fail(f"{name}: wildcard action {a}")
                if any(a.startswith(DATA_SERVICES) for a in actions) and "*" in listify(s.get("Resource")):
                    fail(f"{name}: {actions} on every resource")

    # Transfer Family: service-managed identities, SFTP only, a named security policy.
    servers = [s["Properties"] for s in resources(cfn, "AWS::Transfer::Server").values()]
    if len(servers) != 1 or servers[0].get("IdentityProviderType") != "SERVICE_MANAGED" or servers[0].get("Protocols") != ["SFTP"]:
        fail(f"SFTP server: {servers}")
    if not servers or not servers[0].get("SecurityPolicyName"):
        fail("the SFTP server has no security policy")


def mutations():
    """Breakages each of which the checks must notice (so they are known to be able to fail)."""
    def bucket(c):
        return next(v for v in c["Resources"].values() if v["Type"] == "AWS::S3::Bucket")["Properties"]

    def copy_event(c):
        n = bucket(c)["NotificationConfiguration"]["LambdaConfigurations"]
        n.append(dict(n[0], Event="s3:ObjectCreated:Copy"))

    def tmp_days(c):
        for r in bucket(c)["LifecycleConfiguration"]["Rules"]:
            if r.get("Prefix") == "AS2/tmp/":
                r["ExpirationInDays"] = 2

    def send_expires(c):
        bucket(c)["LifecycleConfiguration"]["Rules"].append(
            {"Id": "x", "Status": "Enabled", "Prefix": "AS2/send/", "ExpirationInDays": 30})

    def wildcard(c):
        role = next(v for v in c["Resources"].values() if v["Type"] == "AWS::IAM::Role")
        role["Properties"].setdefault("Policies", []).append(
            {"PolicyName": "x", "PolicyDocument": {"Statement": [{"Effect": "Allow", "Action": "dynamodb:*", "Resource": "arn:x"}]}})

    return {
        "Copy notification": copy_event,
        "AS2/tmp/ kept 2 days": tmp_days,
        "AS2/send/ expiring": send_expires,
        "no versioning": lambda c: bucket(c).pop("VersioningConfiguration"),
        "no TTL": lambda c: c["Resources"]["ClaimsTable"]["Properties"].pop("TimeToLiveSpecification"),
        "dynamodb:* allowed": wildcard,
        "x86_64": lambda c: c["Resources"]["As2SenderFunction"]["Properties"].update(Architectures=["x86_64"]),
        "password identities": lambda c: next(v for v in c["Resources"].values() if v["Type"] == "AWS::Transfer::Server")["Properties"].update(IdentityProviderType="API_GATEWAY"),
    }


def main():
    out = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "target" / "infra"
    out.mkdir(parents=True, exist_ok=True)
    _, cfn = translate()
    path = out / "sam.json"
    path.write_text(json.dumps(cfn, indent=1, sort_keys=True))
    failures = []
    check(cfn, failures.append)
    for what, mutate in mutations().items():
        broken = json.loads(json.dumps(cfn))
        mutate(broken)
        found = []
        check(broken, found.append)
        if not found:
            failures.append(f"the checks do not notice: {what}")
    lint = ROOT / ".venv" / "bin" / "cfn-lint"
    for target in (TEMPLATE, path):
        r = subprocess.run([str(lint), "--", str(target)], capture_output=True, text=True)
        if r.returncode != 0:
            failures.append(f"cfn-lint {target.name}:\n{r.stdout}{r.stderr}")
    if failures:
        print("\n".join(f"FAIL {f}" for f in failures))
        sys.exit(1)
    print(f"check_sam: ok ({len(cfn['Resources'])} resources in {path.relative_to(ROOT)})")


if __name__ == "__main__":
    main()
