"""Run inside `unshare --mount --net` by tests/test_dkim.py: OpenDKIM's `opendkim-testmsg` verifies against the
test's key records instead of the real DNS.

    python tests/opendkim_dns.py ZONE.json MESSAGE.eml...

Answers TXT queries for the zone's names (name -> record text) on 127.0.0.1:53, bind-mounts a resolv.conf naming
127.0.0.1 over this namespace's /etc/resolv.conf (the host's is not touched: the mount namespace is private), runs
opendkim-testmsg on each message and prints the verdicts as a JSON list: "" for a signature that verifies, else
the tool's error line ("dkim_eom(): Bad signature", "dkim_eom(): Key retrieval failed").
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

OPENDKIM = "/usr/sbin/opendkim-testmsg"


def serve(sock: socket.socket, published: dict[str, str]) -> None:
    while True:
        data, peer = sock.recvfrom(4096)
        query = dns.message.from_wire(data)
        reply = dns.message.make_response(query)
        question = query.question[0]
        text = published.get(question.name.to_text().rstrip(".").lower())
        if text is not None and question.rdtype == dns.rdatatype.TXT:
            strings = " ".join(f'"{text[i:i + 255]}"' for i in range(0, len(text), 255))  # 255 bytes a string
            reply.answer.append(dns.rrset.from_text(question.name, 60, "IN", "TXT", strings))
        else:
            reply.set_rcode(dns.rcode.NXDOMAIN)
        sock.sendto(reply.to_wire(), peer)


def main(zone: Path, messages: list[Path]) -> None:
    published = {name.lower(): text for name, text in json.loads(zone.read_text()).items()}
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 53))
    threading.Thread(target=serve, args=(sock, published), daemon=True).start()
    resolv = zone.with_name("resolv.conf")
    resolv.write_text("nameserver 127.0.0.1\noptions timeout:2 attempts:1\n")
    subprocess.run(["mount", "--bind", str(resolv), "/etc/resolv.conf"], check=True)
    verdicts = []
    for path in messages:
        with path.open("rb") as stdin:
            done = subprocess.run([OPENDKIM], stdin=stdin, capture_output=True, text=True, timeout=60, check=False)
        verdicts.append("" if done.returncode == 0 else done.stderr.strip() or f"exit {done.returncode}")
    print(json.dumps(verdicts))


if __name__ == "__main__":
    main(Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]])
