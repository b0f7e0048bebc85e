#!/usr/bin/env python3
"""libsodium sealed boxes (crypto_box_seal) through PyNaCl, for tests/envelope.rs.

An implementation independent of the server's (libsodium itself, under PyNaCl) drives the
sealed-envelope API. Keys and ciphertexts are standard base64 with padding.

    sealed_box.py keypair              prints {"sk": …, "pk": …}
    sealed_box.py seal <server_pk>     stdin: plaintext; prints the base64 ciphertext
    sealed_box.py open <client_sk>     stdin: base64 ciphertext; prints the plaintext

Exit status 0 on success, 1 when a ciphertext does not open, 2 on bad usage.
"""

import base64
import json
import sys

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text.strip(), validate=True)


def main(argv: list) -> int:
    if argv[1:2] == ["keypair"] and len(argv) == 2:
        sk = PrivateKey.generate()
        print(json.dumps({"sk": b64(bytes(sk)), "pk": b64(bytes(sk.public_key))}))
        return 0
    if argv[1:2] == ["seal"] and len(argv) == 3:
        box = SealedBox(PublicKey(unb64(argv[2])))
        sys.stdout.write(b64(box.encrypt(sys.stdin.buffer.read())))
        return 0
    if argv[1:2] == ["open"] and len(argv) == 3:
        box = SealedBox(PrivateKey(unb64(argv[2])))
        try:
            plain = box.decrypt(unb64(sys.stdin.read()))
        except CryptoError as e:
            print(f"does not open: {e}", file=sys.stderr)
            return 1
        sys.stdout.buffer.write(plain)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
