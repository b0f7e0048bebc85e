#!/usr/bin/env python3
"""Verifies a Sesame access token with PyJWT, independently of the server's JWT library.

Used by crates/sesame-server/tests/jwt_external.rs. Reads one JSON object on stdin:

    {"jwks": {...}, "token": "...", "issuer": "...", "audience": "...", "match_kid": true}

* `jwks`: the document served at /.well-known/jwks.json;
* `match_kid` (default true): use only the key whose `kid` is the token's; false tries every
  Ed25519 key of the set, so a foreign token fails on its signature rather than its `kid`.

Checks the header (`alg` EdDSA, `typ` at+jwt), builds the key from the JWK with
`jwt.PyJWK` and cross-checks it against `jwt.algorithms.OKPAlgorithm.from_jwk`, verifies the
signature, `iss`, `aud`, `exp` (and `iat`, which PyJWT checks too), and the shape of the
Sesame claims. On success prints `{"header": ..., "claims": ...}` as JSON and exits 0; on a
verification failure prints the reason on stderr and exits 1; exits 3 when PyJWT or
cryptography is missing (see requirements.txt beside this file).
"""

import json
import sys
import time
import uuid

try:
    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from jwt.algorithms import OKPAlgorithm
except ImportError as e:  # pragma: no cover - reported to the Rust side
    print(f"missing dependency: {e} (pip install pyjwt cryptography)", file=sys.stderr)
    sys.exit(3)

MAX_TTL = 15 * 60
REQUIRED = ["exp", "iat", "iss", "aud", "sub"]


class Refused(Exception):
    """The token does not verify."""


def raw_public(key):
    return key.public_bytes(
        encoding=serialization.Encoding.Raw, format=serialization.PublicFormat.Raw
    )


def key_from_jwk(jwk):
    """The Ed25519 public key of one JWK, built two independent ways and compared."""
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise Refused(f"not an Ed25519 OKP key: {jwk}")
    if jwk.get("alg", "EdDSA") != "EdDSA":
        raise Refused(f"key algorithm is not EdDSA: {jwk}")
    if jwk.get("use", "sig") != "sig":
        raise Refused(f"key is not for signatures: {jwk}")
    if "d" in jwk:
        raise Refused("the JWKS publishes a private key")
    via_pyjwk = jwt.PyJWK(jwk, algorithm="EdDSA").key
    via_okp = OKPAlgorithm.from_jwk(json.dumps(jwk))
    if not isinstance(via_pyjwk, Ed25519PublicKey) or not isinstance(via_okp, Ed25519PublicKey):
        raise Refused(f"not an Ed25519 public key: {jwk}")
    if raw_public(via_pyjwk) != raw_public(via_okp):
        raise Refused("PyJWK and OKPAlgorithm.from_jwk disagree on the key")
    return via_pyjwk


def verify(req):
    token = req["token"]
    header = jwt.get_unverified_header(token)
    if header.get("alg") != "EdDSA":
        raise Refused(f"alg is {header.get('alg')!r}, not EdDSA")
    if header.get("typ") != "at+jwt":
        raise Refused(f"typ is {header.get('typ')!r}, not at+jwt")
    jwks = req["jwks"]
    keys = jwks.get("keys") or []
    if req.get("match_kid", True):
        keys = [k for k in keys if k.get("kid") == header.get("kid")]
        if len(keys) != 1:
            raise Refused(f"{len(keys)} keys with kid {header.get('kid')!r} in the JWKS")
    else:
        # Every key of the token's algorithm (the set also holds the ID tokens' RS256 key).
        keys = [k for k in keys if k.get("kty") == "OKP"]
    if not keys:
        raise Refused("the JWKS has no keys")
    errors = []
    for jwk in keys:
        key = key_from_jwk(jwk)
        try:
            decoded = jwt.decode_complete(
                token,
                key,
                algorithms=["EdDSA"],
                audience=req["audience"],
                issuer=req["issuer"],
                options={"require": REQUIRED},
            )
        except jwt.InvalidTokenError as e:
            errors.append(f"{type(e).__name__}: {e}")
            continue
        return decoded["header"], decoded["payload"]
    raise Refused("; ".join(errors))


def check_claims(claims):
    now = time.time()
    if not claims["exp"] > now:
        raise Refused("expired")
    if not 0 < claims["exp"] - claims["iat"] <= MAX_TTL:
        raise Refused(f"lifetime {claims['exp'] - claims['iat']} s is not within 1..{MAX_TTL}")
    for name in ("sub", "sid", "jti"):
        try:
            uuid.UUID(claims[name])
        except (KeyError, TypeError, ValueError):
            raise Refused(f"claim {name} is not a UUID: {claims.get(name)!r}")
    amr = claims.get("amr")
    if not isinstance(amr, list) or not amr or not all(isinstance(m, str) for m in amr):
        raise Refused(f"amr is not a non-empty list of strings: {amr!r}")


def main():
    req = json.load(sys.stdin)
    try:
        header, claims = verify(req)
        check_claims(claims)
    except (Refused, jwt.PyJWTError) as e:
        print(f"REFUSED: {e}", file=sys.stderr)
        return 1
    print(json.dumps({"header": header, "claims": claims, "pyjwt": jwt.__version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
