"""A real SMTP receiver for tests/notices.rs, built on aiosmtpd.

Usage: python3 smtp_sink.py OUTFILE [PORT]
Listens on 127.0.0.1 on PORT (default: a free port), prints "PORT <n>" once listening, and
appends one JSON line per accepted message to OUTFILE:
{"mail_from", "rcpt_tos", "subject", "body"} (body: the decoded text part).
"""
import asyncio
import email
import email.policy
import json
import sys

from aiosmtpd.smtp import SMTP


class Sink:
    def __init__(self, path):
        self.path = path

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        part = msg.get_body(preferencelist=("plain",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "subject": str(msg["subject"]),
            "body": part.get_content() if part is not None else "",
        }
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        return "250 OK"


async def main(path, port):
    sink = Sink(path)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(sink), "127.0.0.1", port)
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0))
