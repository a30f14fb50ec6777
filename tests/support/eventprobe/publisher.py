"""Publish one probe ping from a separate process, optionally dying right after the commit.

    python -m tests.support.eventprobe.publisher [--die-after-commit] [--version N]

Run with ``tests.support.worker.worker_environment()`` so it uses the test databases. Prints
the event id. ``--die-after-commit`` SIGKILLs the process in an on-commit hook registered
before the relay's, i.e. after the row committed and before anything was sent.
"""

import argparse
import os
import signal


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--die-after-commit", action="store_true")
    parser.add_argument("--version", type=int, default=2)
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import transaction

    from shop.events import publish
    from tests.support.eventprobe.events import PINGED

    data = {"note": "from another process"} | ({"tier": 3} if args.version >= 2 else {})
    with transaction.atomic(using="orders"):
        if args.die_after_commit:
            transaction.on_commit(lambda: os.kill(os.getpid(), signal.SIGKILL), using="orders")
        envelope = publish(PINGED, data, aggregate_id="subprocess", using="orders", version=args.version)
        print(envelope.id, flush=True)  # noqa: T201 - the test reads it


if __name__ == "__main__":
    main()
