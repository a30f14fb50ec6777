"""Free-text cleaning: plain text in, no markup or control characters out, data not mangled."""

import pytest
from rest_framework import serializers

from shop.api.sanitize import CleanCharField, clean_text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("<b>Ann</b> Lee", "Ann Lee"),
        ("<script>alert(1)</script>Ann", "Ann"),
        ('<img src=x onerror="alert(1)">Ann', "Ann"),
        ("<style>body{}</style>Ann", "Ann"),
        ("Ann<!-- hidden -->", "Ann"),
        ("&lt;script&gt;alert(1)&lt;/script&gt;Ann", "Ann"),  # entity-encoded markup goes too
        ("&amp;lt;b&amp;gt;Ann", "Ann"),  # doubly encoded
        ("Ann\x00 Lee", "Ann Lee"),
        ("Ann\x07\x1b Lee", "Ann Lee"),
        ("Ann&#27; Lee", "Ann Lee"),  # an encoded control character decodes to nothing
        ("  Ann Lee  ", "Ann Lee"),
        ("Ann\nLee\tJr", "Ann Lee Jr"),
        # Legitimate text is stored as typed, not HTML-escaped.
        ("Tom & Jerry", "Tom & Jerry"),
        ("1 < 2 > 0", "1 < 2 > 0"),
        ('O\'Brien "The Boss"', 'O\'Brien "The Boss"'),
        ("Zoë 中文 😀", "Zoë 中文 😀"),
        ("Robert'); DROP TABLE users;--", "Robert'); DROP TABLE users;--"),  # SQL is bound, not escaped
    ],
)
def test_clean_text_single_line(raw, expected):
    assert clean_text(raw) == expected


def test_an_encoded_nul_never_survives():
    assert "\x00" not in clean_text("Ann&#0;&#x0; Lee")


def test_clean_text_multiline_keeps_line_breaks_but_not_markup():
    assert clean_text("line one\r\n<b>line</b> two\n", multiline=True) == "line one\nline two"


def test_clean_text_normalizes_unicode_and_truncates():
    assert clean_text("Zoe\u0308") == "Zoë"
    assert clean_text("<i>abcdef</i>", max_length=3) == "abc"


class Review(serializers.Serializer):
    title = CleanCharField(max_length=10)
    body = CleanCharField(max_length=50, multiline=True, required=False)


def test_clean_char_field_cleans_then_caps_the_stored_length():
    ok = Review(data={"title": "<b>" + "x" * 10 + "</b>", "body": "a\nb<script>x</script>"})
    assert ok.is_valid(), ok.errors
    assert ok.validated_data == {"title": "x" * 10, "body": "a\nb"}

    too_long = Review(data={"title": "x" * 11})
    assert not too_long.is_valid()
    assert "title" in too_long.errors


def test_clean_char_field_rejects_input_that_is_only_markup():
    review = Review(data={"title": "<script>alert(1)</script>"})
    assert not review.is_valid()
    assert review.errors["title"][0].code == "blank"


def test_clean_char_field_requires_a_max_length():
    with pytest.raises(TypeError):
        CleanCharField()
