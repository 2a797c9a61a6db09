"""Schemathesis hooks of scripts/contract.sh (loaded through SCHEMATHESIS_HOOKS).

`POST /.well-known/est/simplereenroll` takes `application/pkcs10`: base64
text (RFC 7030 §4.2.1), a media type schemathesis has no serializer for.
The generated string is sent as its UTF-8 bytes, as a partner's
`openssl … | base64 | curl --data-binary @-` would.
"""
import schemathesis


@schemathesis.serializer("application/pkcs10")
def pkcs10(ctx, value):
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")
