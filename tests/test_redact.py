"""Redaction: what becomes a placeholder, what must not (the near-misses), tables and snippets."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tavus_analytics.frames import STR
from tavus_analytics.redact import (
    KEY_COLUMNS,
    PLACEHOLDERS,
    luhn_valid,
    redact_frame,
    redact_snippet,
    redact_text,
    redact_value,
)

FOUND = {
    "[EMAIL]": [
        "jane.doe@example.com",
        "j.o'neil+tavus@mail.example.co.uk",
        "Zoë.Müller@beispiel.de",
        "support-team_2@sub-domain.example.io",
    ],
    "[PHONE]": [
        "+1 415 555 2671",
        "+14155552671",
        "+1 (415) 555-2671",
        "(415) 555-2671",
        "415-555-2671",
        "415.555.2671",
        "1-800-555-0199",
        "+44 20 7946 0958",
        "+44 (0)20 7946 0958",
        "0044 20 7946 0958",
        "020 7946 0958",
        "07700 900123",
        "+49 30 1234567",
        "030 1234567",
        "030/1234567",
        "(030) 1234567",
        "0171 1234567",
        "+33 1 23 45 67 89",
        "06 12 34 56 78",
        "06-12345678",
        "+34 612 34 56 78",
    ],
    "[CARD]": [
        "4242424242424242",
        "4242 4242 4242 4242",
        "4242-4242-4242-4242",
        "5555 5555 5555 4444",
        "3782 822463 10005",  # American Express, 4-6-5
        "3056 930902 5904",  # Diners Club, 4-6-4
        "6011111111111117",
        "4222222222222",  # 13 digits
        "4000 0566 5566 5556",
    ],
    "[IP]": [
        "192.168.1.20",
        "10.0.0.1",
        "8.8.8.8",
        "2001:db8::8a2e:370:7334",
        "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
        "fe80::1%eth0",
        "::1",
        "::ffff:192.0.2.128",
    ],
    "[URL_WITH_CREDENTIALS]": [
        "https://jane:s3cret@example.com/private",
        "postgresql://tavus:secret@db.internal:5432/tavus",
        "ftp://user@files.example.org",
        "https://token123@github.com/org/repo.git",
    ],
}

NEAR_MISSES = [
    "2026-06-09",
    "on 2026-06-09 12 people came",
    "09.06.2026",
    "09/06/2026",
    "06.09.2026 10:30",
    "2026/06/09",
    "10:30",
    "10:30:45",
    "2026-06-09T10:30:00Z",
    "2025-07-11T06:48:37.564961Z",
    "order 12345",
    "order #123456",
    "in 1999 and 2026",
    "1999-2026",
    "123e4567-e89b-12d3-a456-426614174000",
    "4242 4242 4242 4241",  # Luhn fails
    "4242424242424241",
    "1752216517",  # a Unix time
    "1752216517123",  # a Unix time in milliseconds (passes Luhn; starts with 1)
    "version 1.2.3.4.5",
    "v2.3.1",
    "3.14159265358979",
    "$1,234.56",
    "1,234,567",
    "978-3-16-148410-0",  # an ISBN
    "4155552671",  # bare digits: an order number as much as a phone number
    "pages 100-2000",
    "std::vector and a :: b",
    "user@localhost",
    "https://example.com/@jane",
    "+5 points",
    "c123456 r79e1c033f",
]


@pytest.mark.parametrize(
    ("placeholder", "text"), [(p, t) for p, texts in FOUND.items() for t in texts]
)
def test_personal_data_becomes_its_placeholder(placeholder, text):
    assert redact_text(text) == placeholder
    assert redact_text(f"Hi, it is {text}. Thanks!") == f"Hi, it is {placeholder}. Thanks!"
    assert redact_text(f"({text})") == f"({placeholder})"


@pytest.mark.parametrize("text", NEAR_MISSES)
def test_near_misses_are_left_alone(text):
    assert redact_text(text) == text
    assert redact_text(f"See {text}, then.") == f"See {text}, then."


def test_the_placeholders_are_the_documented_ones():
    assert set(PLACEHOLDERS.values()) == set(FOUND)


def test_several_kinds_in_one_text():
    text = (
        "Jane (jane.doe@example.com, +1 415 555 2671) paid with 4242 4242 4242 4242 from "
        "192.168.1.20 on 2026-06-09 at 10:30, order 12345; db https://u:p@db.example.com/x."
    )
    assert redact_text(text) == (
        "Jane ([EMAIL], [PHONE]) paid with [CARD] from [IP] on 2026-06-09 at 10:30, "
        "order 12345; db [URL_WITH_CREDENTIALS]."
    )


def test_a_url_with_credentials_is_one_placeholder_not_an_email():
    assert redact_text("https://jane@example.com:8080/x") == "[URL_WITH_CREDENTIALS]"
    assert redact_text("mailto:jane@example.com") == "mailto:[EMAIL]"


def test_luhn():
    assert luhn_valid("4242424242424242") and luhn_valid("79927398713")
    assert not luhn_valid("4242424242424241") and not luhn_valid("42x2")


def test_json_text_stays_valid_json():
    inner = json.dumps(
        {"url": "https://u:p@h.example/x", "m": "hi\njane@x.com\n+1 415 555 2671\t4242424242424242"}
    )
    text = json.dumps({"arguments": inner})
    redacted = redact_text(text)
    back = json.loads(json.loads(redacted)["arguments"])
    assert back == {"url": "[URL_WITH_CREDENTIALS]", "m": "hi\n[EMAIL]\n[PHONE]\t[CARD]"}


def test_long_adversarial_texts_are_quick():
    import time

    start = time.perf_counter()
    for text in [("+1" + "2" * 40 + " ") * 200, "a@" + "b" * 20000, ("4242 " * 20) * 100]:
        redact_text(text)
    assert time.perf_counter() - start < 5  # was minutes with a backtracking phone pattern


def _luhn_complete(body: str) -> str:
    for last in "0123456789":
        if luhn_valid(body + last):
            return body + last
    raise AssertionError


emails = st.builds(
    "{}@{}.{}".format,
    st.from_regex(r"[a-z][a-z0-9._]{0,10}[a-z0-9]", fullmatch=True),
    st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True),
    st.sampled_from(["com", "org", "io", "de", "co.uk"]),
)
cards = st.builds(
    lambda body, sep: sep.join(re.findall(".{1,4}", _luhn_complete(body))),
    st.from_regex(r"[3-6][0-9]{14}", fullmatch=True),
    st.sampled_from(["", " ", "-"]),
)
phones = st.builds(
    "+{} {} {} {}".format,
    st.integers(1, 99),
    st.integers(20, 999),
    st.integers(100, 9999),
    st.integers(1000, 9999),
)
words = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)


@settings(max_examples=200, deadline=None)
@given(words, st.one_of(emails, cards, phones), words)
@example(before="", secret="3000 1000 0000 0002", after="0")  # a fifth group that is not
def test_planted_data_never_survives_and_redaction_is_stable(before, secret, after):
    text = f"{before} {secret} {after}"
    redacted = redact_text(text)
    assert secret not in redacted
    assert redact_text(redacted) == redacted


@settings(max_examples=200, deadline=None)
@given(words)
def test_any_text_redacts_without_error_and_placeholders_stay(text):
    redacted = redact_text(text)
    assert redact_text(redacted) == redacted
    for placeholder in PLACEHOLDERS.values():
        assert redact_text(placeholder) == placeholder


# -- values and tables --------------------------------------------------------------------------
def test_nested_values_are_redacted_inside():
    value = {
        "email": "jane@example.com",
        "cards": [4242424242424242, "4242 4242 4242 4242", 12345],
        "ok": True,
        "n": 1.5,
        ("jane@example.com",): None,
    }
    assert redact_value(value) == {
        "email": "[EMAIL]",
        "cards": ["[CARD]", "[CARD]", 12345],
        "ok": True,
        "n": 1.5,
        ("[EMAIL]",): None,
    }
    assert redact_value(None) is None and redact_value(4242424242424241) == 4242424242424241


def test_redact_frame_keeps_columns_dtypes_keys_and_the_original():
    frame = pd.DataFrame(
        {
            "conversation_id": pd.array(["jane@example.com", "c2"], dtype=STR),
            "content": pd.array(["mail jane@example.com", None], dtype=STR),
            "prompt": pd.Categorical(["call 415-555-2671", "call 415-555-0000"]),
            "properties": [{"ip": "10.0.0.1"}, None],
            "n": [1, 2],
        },
        index=[5, 7],
    )
    out = redact_frame(frame)
    assert list(out.columns) == list(frame.columns) and list(out.index) == [5, 7]
    for name in ("conversation_id", "content", "properties", "n"):
        assert out[name].dtype == frame[name].dtype, name
    assert list(out["conversation_id"]) == ["jane@example.com", "c2"]  # a key: kept
    assert out["content"][5] == "mail [EMAIL]" and pd.isna(out["content"][7])
    # Two categories that differ only in the phone number are one now.
    assert list(out["prompt"]) == ["call [PHONE]", "call [PHONE]"]
    assert list(out["prompt"].cat.categories) == ["call [PHONE]"]
    assert out["properties"][5] == {"ip": "[IP]"} and out["properties"][7] is None
    assert frame["content"][5] == "mail jane@example.com"  # the input is untouched
    # Columns named: keys too, when asked.
    named = redact_frame(frame, ["conversation_id"])
    assert named["conversation_id"][5] == "[EMAIL]" and named["content"][5] == frame["content"][5]
    with pytest.raises(KeyError, match="'nope'"):
        redact_frame(frame, ["nope"])
    assert "conversation_id" in KEY_COLUMNS and "content" not in KEY_COLUMNS


# -- search snippets ----------------------------------------------------------------------------
CONTENT = "Sure, my card is 4242 4242 4242 4242 and you can mail jane.doe@example.com today."


def test_a_snippet_cut_inside_a_card_number_shows_none_of_it():
    snippet = "…my [card] is 4242 4242 4242…"
    assert redact_snippet(snippet, CONTENT) == "…my [card] is [CARD]…"


def test_marks_inside_an_address_move_to_its_edges():
    snippet = "…can mail jane.doe@[example].com today."
    assert redact_snippet(snippet, CONTENT) == "…can mail [[EMAIL]] today."
    bold, plain = "\x1b[1m", "\x1b[22m"
    snippet = f"…mail jane.{bold}doe{plain}@example.com today."
    assert redact_snippet(snippet, CONTENT, bold, plain) == f"…mail {bold}[EMAIL]{plain} today."


def test_a_snippet_without_personal_data_is_unchanged_and_an_unknown_one_is_the_content():
    content = "I would like a refund for my order."
    snippet = "I would like a [refund] for my order."
    assert redact_snippet(snippet, content) == snippet
    assert redact_snippet("…something [else]…", CONTENT) == redact_text(CONTENT)
    assert redact_snippet("", CONTENT) == redact_text(CONTENT)
