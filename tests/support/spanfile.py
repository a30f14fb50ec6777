"""Test-only span exporter: one JSON line per finished span, one file per process.

A worker subprocess cannot hand spans to the test's in-memory exporter, so with
``SHOP_TEST_SPAN_DIR`` set (config.settings_test) it writes them here and the test reads them.
"""

import json
import os
from pathlib import Path

from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult


def span_record(span) -> dict:
    parent = span.parent
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": format(span.context.trace_id, "032x"),
        "span_id": format(span.context.span_id, "016x"),
        "parent_id": format(parent.span_id, "016x") if parent else None,
        "links": [format(link.context.span_id, "016x") for link in span.links],
        "attributes": {k: v for k, v in (span.attributes or {}).items() if isinstance(v, str | int | float | bool)},
        "pid": os.getpid(),
    }


class JsonLinesExporter(SpanExporter):
    def __init__(self):
        self.directory = Path(os.environ["SHOP_TEST_SPAN_DIR"])

    def export(self, spans) -> SpanExportResult:
        with (self.directory / f"spans-{os.getpid()}.jsonl").open("a") as out:
            for span in spans:
                out.write(json.dumps(span_record(span)) + "\n")
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def read_spans(directory: Path) -> list[dict]:
    spans = []
    for path in sorted(Path(directory).glob("spans-*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                spans.append(json.loads(line))
    return spans
