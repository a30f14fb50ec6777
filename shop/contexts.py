"""The bounded contexts, named once.

Everything that lists the contexts (database aliases, worker queues, installed apps, the
router, test and benchmark databases, scripts) reads this module. Pure Python, no Django, so
the Makefile and shell scripts can ask it too: ``python -m shop.contexts`` prints the contexts
one per line, ``python -m shop.contexts --queues`` the worker's ``-Q`` value. Files that cannot
run Python (``pyproject.toml``'s import-linter contract, ``docker/postgres-init.sql``) are
checked against it by ``tests/unit/test_contexts_said_once.py``.
"""

import sys

CONTEXTS = ("accounts", "catalog", "inventory", "orders", "payments")

# Each context's events and saga steps run on its own queue; everything else on Celery's default.
DEFAULT_QUEUE = "celery"
WORKER_QUEUES = (*CONTEXTS, DEFAULT_QUEUE)


def database_url_variable(context: str) -> str:
    """The environment variable holding a context's database URL."""
    return f"{context.upper()}_DATABASE_URL"


def main(argv: list[str]) -> int:
    if argv == ["--queues"]:
        sys.stdout.write(",".join(WORKER_QUEUES) + "\n")
    elif not argv:
        sys.stdout.write("\n".join(CONTEXTS) + "\n")
    else:
        sys.stderr.write("usage: python -m shop.contexts [--queues]\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
