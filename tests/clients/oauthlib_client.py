"""A partner's OAuth2 client written with requests-oauthlib, used by
tests/oauth_conformance.rs: fetches a token (client_secret_basic or
tls_client_auth) over mTLS, then calls the data API with it.

usage: oauthlib_client.py METHOD BASE_URL CA CERT KEY CLIENT_ID [SECRET]
prints one JSON object: the token response and the data call's answer.
"""
import json
import sys
import uuid

from oauthlib.oauth2 import BackendApplicationClient
from requests_oauthlib import OAuth2Session


def main():
    method, base, ca, cert, key, client_id = sys.argv[1:7]
    secret = sys.argv[7] if len(sys.argv) > 7 else None
    session = OAuth2Session(client=BackendApplicationClient(client_id=client_id))
    # verify= is passed on every call: requests lets REQUESTS_CA_BUNDLE
    # override a session-level verify.
    tls = {"cert": (cert, key), "verify": ca}
    if method == "client_secret_basic":
        token = session.fetch_token(
            f"{base}/token", client_id=client_id, client_secret=secret, **tls
        )
    elif method == "tls_client_auth":
        token = session.fetch_token(
            f"{base}/token", client_id=client_id, include_client_id=True, **tls
        )
    else:
        raise SystemExit(f"unknown method {method}")
    answer = session.get(
        f"{base}/opale/v1/entreprises/732829320/declarations",
        params={"annee": "2024"},
        headers={"X-Correlation-ID": str(uuid.uuid4())},
        **tls,
    )
    print(json.dumps({"token": dict(token), "status": answer.status_code, "body": answer.json()}))


if __name__ == "__main__":
    main()
