"""Settings of ``bench/reads.py``: the production settings with the bench's own URLconf."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.reads_urls"
