"""pyas2lib doing what `pipeline` does, one operation per process (for tests/bench/run.py).

    pyas2_bench.py build <payload> <out> <signer.crt> <signer.key> <recipient.crt>
    pyas2_bench.py open  <message> <out> <recipient.crt> <recipient.key> <signer.crt>
"""
import logging
import pathlib
import sys

from pyas2lib import Message, Organization, Partner

logging.disable(logging.CRITICAL)


def read(p):
    return pathlib.Path(p).read_bytes()


def main():
    op, src, out, cert, key, other = sys.argv[1:7]
    me = Organization(as2_name="ALPHA" if op == "build" else "BETA", sign_key=read(cert) + read(key), decrypt_key=read(cert) + read(key))
    them = Partner(
        as2_name="BETA" if op == "build" else "ALPHA",
        verify_cert=read(other),
        encrypt_cert=read(other),
        sign=True,
        encrypt=True,
        enc_alg="aes_256_cbc",
        compress=True,
        digest_alg="sha256",
    )
    if op == "build":
        msg = Message(me, them)
        msg.build(read(src), filename="bench.edi")
        pathlib.Path(out).write_bytes(msg.headers_str + b"\r\n" + msg.content)
    else:
        msg = Message()
        status, (exc, _), _ = msg.parse(read(src), find_org_cb=lambda _i: me, find_partner_cb=lambda _i: them)
        if status != "processed":
            sys.exit(f"pyas2lib: {status}: {exc}")
        pathlib.Path(out).write_bytes(msg.content)


main()
