"""Test-only Sentry transport: each event as one JSON line in ``SHOP_TEST_SENTRY_FILE``.

Used in a worker subprocess (config.settings_test) and in-process; nothing leaves the machine.
"""

import json
import os
from pathlib import Path

from sentry_sdk.transport import Transport


class FileTransport(Transport):
    def capture_envelope(self, envelope) -> None:
        event = envelope.get_event()
        if event is None:
            return
        path = Path(os.environ["SHOP_TEST_SENTRY_FILE"])
        with path.open("a") as out:
            out.write(json.dumps(event, default=str) + "\n")

    def flush(self, timeout, callback=None) -> None:
        pass

    def kill(self) -> None:
        pass


def read_events(path: Path) -> list[dict]:
    if not Path(path).exists():
        return []
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
