"""Every kind of mail Gazette sends, scored by SpamAssassin's local rules (`spamassassin -L -t`), must stay below
2.0, and verify with its DKIM signature.

The mails are made by the real paths: a digest edition, the subscribe form's confirmation, the new-link page's
"manage" mail, and "email this article". Needs Debian's spamassassin (`make test` installs it as root).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import timedelta

import dkim
import httpx
import pytest

from tests.conftest import NOW, ServerThread
from tests.test_delivery import DKIM_ENV, dns, make_services
from tests.test_digest import seed
from tests.test_subscribers import form_of

SPAMASSASSIN = shutil.which("spamassassin")
pytestmark = pytest.mark.skipif(SPAMASSASSIN is None,
                                reason="spamassassin is not installed (apt-get install spamassassin; make test does it as root)")
LIMIT = 2.0


def score(message: bytes) -> tuple[float, str]:
    result = subprocess.run([SPAMASSASSIN or "spamassassin", "-L", "-t"], input=message, capture_output=True,
                            timeout=120)
    report = result.stdout.decode("utf-8", "replace")
    found = re.search(r"X-Spam-Status: \w+, score=(-?[\d.]+)", report)
    assert found, report[-2000:]
    return float(found[1]), report[report.find("Content analysis details"):]


@pytest.fixture(scope="module")
def mails(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    import service
    from tests.conftest import Clock

    folder = tmp_path_factory.mktemp("spam")
    clock = Clock(NOW)
    services = make_services(folder, clock, f"maildir://{folder / 'out'}", DKIM_ENV)
    seed(services, clock)
    out: dict[str, bytes] = {}

    def newest() -> bytes:
        files = sorted((folder / "out" / "new").iterdir(), key=lambda p: p.stat().st_mtime_ns)
        return files[-1].read_bytes().replace(b"\n", b"\r\n")

    services.send("daily", NOW, everyone=True)
    out["digest"] = newest()
    with ServerThread(service.create_app(services)) as server, httpx.Client(base_url=server.url) as client:
        client.post("/subscribe", data={**form_of(client, "/subscribe"), "email": "new@example.com",
                                        "categories": ["economy"]})
        out["confirmation"] = newest()
        client.post("/link", data={**form_of(client, "/link"), "email": "kim@example.com"})
        out["manage link"] = newest()
        article = services.store.articles(limit=1)[0]
        client.post(f"/articles/{article.id}/share", data={"sender_name": "홍길동", "recipient": "friend@example.com",
                                                           "note": "이 기사 꼭 읽어 보세요."})
        out["shared article"] = newest()
    clock.now = NOW + timedelta(days=1)
    services.close()
    return out


@pytest.mark.parametrize("kind", ["digest", "confirmation", "manage link", "shared article"])
def test_mail_scores_low_and_is_signed(mails: dict[str, bytes], kind: str) -> None:
    message = mails[kind]
    assert dkim.verify(message, dnsfunc=dns), f"{kind}: DKIM signature does not verify"
    points, details = score(message)
    assert points < LIMIT, f"{kind} scored {points}:\n{details}"
