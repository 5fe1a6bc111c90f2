"""Evidence rules: which kinds are kept, how a refusal is worded, and how a file's name is kept as data."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.domain.evidence import attachment_disposition, clean_filename, is_allowed, refusal_message


@pytest.mark.parametrize(
    ("given_name", "kept"),
    [
        (None, "unnamed"),
        ("", "unnamed"),
        ("screenshot.png", "screenshot.png"),
        ("../../etc/victim name.png", "victim name.png"),  # a path is never a folder of ours
        ("/var/log/x.txt", "x.txt"),
        ("C:\\Users\\victim\\Desktop\\chat.txt", "chat.txt"),
        ("folder\\..\\receipt.pdf", "receipt.pdf"),
        ("a\x00b.png", "ab.png"),
        ("line\nbreak\r\t.txt", "linebreak.txt"),
        ("name\u202egnp.exe", "namegnp.exe"),  # a right-to-left override would disguise the extension
        ("  .hidden. ", "hidden"),
        ("..", "unnamed"),
        ("/", "unnamed"),
        ("e\u0301.png", "\u00e9.png"),  # one spelling (NFC) for the same name
        ("скриншот-é-🙂.png", "скриншот-é-🙂.png"),
        ("a" * 300 + ".jpeg", "a" * 195 + ".jpeg"),  # shortened, its extension kept
        ("a" * 300 + "." + "x" * 20, "a" * 199),  # an "extension" that long is not one
        ("a" * 198 + ".." + "b" * 20, "a" * 198),  # shortened names end as cleanly as any other
        ("a" * 194 + "  " + "b" * 20 + ".png", "a" * 194 + ".png"),
    ],
)
def test_clean_filename_keeps_the_name_and_nothing_else(given_name, kept):
    assert clean_filename(given_name) == kept


@given(st.one_of(st.none(), st.text(max_size=400)))
def test_a_cleaned_name_is_never_empty_long_a_path_or_hidden(given_name):
    name = clean_filename(given_name)
    assert 1 <= len(name) <= 200
    assert "/" not in name and "\\" not in name
    assert not any(unicodedata.category(char).startswith("C") for char in name)
    assert name == name.strip(" .")
    assert name == unicodedata.normalize("NFC", name)


@given(st.one_of(st.none(), st.text(max_size=400)))
def test_cleaning_a_clean_name_changes_nothing(given_name):
    once = clean_filename(given_name)
    assert clean_filename(once) == once


@pytest.mark.parametrize(
    ("content_type", "allowed"),
    [
        ("image/png", True),
        ("image/jpeg", True),
        ("video/mp4", True),
        ("audio/ogg", True),
        ("application/pdf", True),
        ("text/plain", True),
        ("text/csv", True),
        ("text/html", False),
        ("image/svg+xml", False),
        ("application/zip", False),
        ("application/x-dosexec", False),
        ("application/octet-stream", False),
        ("IMAGE/PNG", False),  # types come from libmagic, already lower case; nothing is guessed
        ("", False),
    ],
)
def test_only_what_victims_are_told_to_keep_is_allowed(content_type, allowed):
    assert is_allowed(content_type) is allowed


@pytest.mark.parametrize(
    ("content_type", "message"),
    [
        ("text/html", "Web pages can't be uploaded; take a screenshot of the page instead."),
        ("image/svg+xml", "SVG drawings can't be uploaded; take a screenshot instead."),
        ("application/zip", "Zip files can't be uploaded; upload the files inside one by one."),
        ("application/x-executable", "Programs can't be uploaded."),
        (
            "application/x-sqlite3",
            "This kind of file can't be uploaded. Send screenshots or photos, videos, voice recordings, PDFs or "
            "plain text.",
        ),
    ],
)
def test_a_refusal_says_what_to_do_instead(content_type, message):
    assert refusal_message(content_type) == message


@pytest.mark.parametrize(
    ("filename", "header"),
    [
        ("chat.txt", "attachment; filename*=UTF-8''chat.txt"),
        ("victim name.png", "attachment; filename*=UTF-8''victim%20name.png"),
        ('a"b;c.txt', "attachment; filename*=UTF-8''a%22b%3Bc.txt"),
        ("é.png", "attachment; filename*=UTF-8''%C3%A9.png"),
    ],
)
def test_a_download_is_always_an_attachment_with_its_name_escaped(filename, header):
    assert attachment_disposition(filename) == header


@given(st.text(max_size=100))
def test_no_name_can_break_out_of_the_disposition_header(filename):
    header = attachment_disposition(filename)
    assert header.startswith("attachment; filename*=UTF-8''")
    assert header.isascii() and not any(char in header[29:] for char in ' ";\r\n,')
