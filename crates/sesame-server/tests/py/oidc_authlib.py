"""Authlib as a confidential OpenID Connect client of Sesame: the code flow with PKCE, the
browser's part driven with plain HTTP and a cookie session, client_secret_basic or
client_secret_post, the ID token verified against the JWKS (RS256 or EdDSA), userinfo,
introspection, and a tampered ID token refused. Prints the verified claims as JSON.

usage: oidc_authlib.py ISSUER CLIENT_ID CLIENT_SECRET COOKIE REDIRECT_URI AUTH_METHOD ALG
"""
import base64
import json
import sys

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey, jwt
from authlib.jose.errors import BadSignatureError
from authlib.oidc.core import CodeIDToken

issuer, cid, secret, cookie, redirect, method, alg = sys.argv[1:]
meta = requests.get(issuer + "/.well-known/openid-configuration", timeout=10).json()
assert meta["issuer"] == issuer, meta["issuer"]
assert method in meta["token_endpoint_auth_methods_supported"]

client = OAuth2Session(
    cid, secret, scope="openid profile email", redirect_uri=redirect,
    token_endpoint_auth_method=method, code_challenge_method="S256",
)
verifier = generate_token(48)
nonce = generate_token(16)
url, state = client.create_authorization_url(
    meta["authorization_endpoint"], nonce=nonce, code_verifier=verifier)

# The browser's part: the authorization endpoint reads the session cookie.
answer = requests.get(url, headers={"cookie": cookie}, allow_redirects=False, timeout=10)
assert answer.status_code == 302, answer.status_code
back = answer.headers["location"]
assert back.startswith(redirect), back

token = client.fetch_token(
    meta["token_endpoint"], authorization_response=back, code_verifier=verifier)

keys = JsonWebKey.import_key_set(requests.get(meta["jwks_uri"], timeout=10).json())
options = {"iss": {"essential": True, "value": issuer}, "aud": {"essential": True, "value": cid}}
header = json.loads(base64.urlsafe_b64decode(token["id_token"].split(".")[0] + "=="))
assert header["alg"] == alg, header
claims = jwt.decode(token["id_token"], keys, claims_cls=CodeIDToken,
                    claims_options=options, claims_params={"nonce": nonce})
claims.validate()

# A tampered ID token does not verify.
h, p, s = token["id_token"].split(".")
payload = json.loads(base64.urlsafe_b64decode(p + "=="))
payload["sub"] = "someone-else"
forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
try:
    jwt.decode(f"{h}.{forged}.{s}", keys)
    raise SystemExit("a tampered ID token verified")
except BadSignatureError:
    pass

info = client.get(meta["userinfo_endpoint"], timeout=10).json()
assert info["sub"] == claims["sub"], info

auth = (cid, secret)
live = requests.post(meta["introspection_endpoint"], data={"token": token["access_token"]},
                     auth=auth, timeout=10).json()
assert live["active"] is True and live["client_id"] == cid, live
requests.post(meta["revocation_endpoint"], data={"token": token["refresh_token"]},
              auth=auth, timeout=10).raise_for_status()
dead = requests.post(meta["introspection_endpoint"], data={"token": token["access_token"]},
                     auth=auth, timeout=10).json()
assert dead["active"] is False, dead

print(json.dumps({"claims": dict(claims), "userinfo": info}))
