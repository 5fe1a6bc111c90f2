"""What evidence the service accepts, judged from its bytes, and how its name is kept.

Victims are told to keep screenshots, videos, voice notes, chat exports and payment receipts:
images, video, audio, PDF and plain text. Everything else is refused, and in particular what a
browser might run or render (HTML, SVG), what hides other files (archives) and programs.
"""

from __future__ import annotations

import unicodedata
from pathlib import PurePosixPath, PureWindowsPath
from urllib.parse import quote

ALLOWED_CONTENT_TYPES = frozenset(
    {
        "image/jpeg",
        "image/png",
        "image/gif",
        "image/webp",
        "image/heic",
        "image/heif",
        "image/bmp",
        "image/tiff",
        "image/avif",
        "video/mp4",
        "video/quicktime",
        "video/webm",
        "video/x-matroska",
        "video/3gpp",
        "video/x-msvideo",
        "video/mpeg",
        "audio/mpeg",
        "audio/mp4",
        "audio/x-m4a",
        "audio/ogg",
        "audio/wav",
        "audio/x-wav",
        "audio/webm",
        "audio/aac",
        "audio/x-hx-aac-adts",
        "audio/flac",
        "audio/x-flac",
        "audio/amr",
        "audio/3gpp",
        "application/pdf",
        "text/plain",
        "text/csv",  # plain text too: how many messaging apps export a chat
    }
)
# Evidence is kept whole: these are worth naming when refused, so the victim knows what to do.
_REFUSAL_ADVICE = {
    "text/html": "Web pages can't be uploaded; take a screenshot of the page instead.",
    "image/svg+xml": "SVG drawings can't be uploaded; take a screenshot instead.",
    "application/zip": "Zip files can't be uploaded; upload the files inside one by one.",
    "application/x-dosexec": "Programs can't be uploaded.",
    "application/x-executable": "Programs can't be uploaded.",
}
MAX_FILENAME_LENGTH = 200


def is_allowed(content_type: str) -> bool:
    return content_type in ALLOWED_CONTENT_TYPES


def refusal_message(content_type: str) -> str:
    advice = _REFUSAL_ADVICE.get(content_type)
    if advice:
        return advice
    return (
        "This kind of file can't be uploaded. Send screenshots or photos, videos, voice recordings, PDFs or plain text."
    )


def attachment_disposition(filename: str) -> str:
    """RFC 6266/5987: a download, never shown inline, with any name spelled safely."""
    return f"attachment; filename*=UTF-8''{quote(filename, safe='')}"


def clean_filename(given: str | None) -> str:
    """The original name, kept only as data: no folders, no control characters, a sane length."""
    name = unicodedata.normalize("NFC", given or "")
    name = PureWindowsPath(PurePosixPath(name.replace("\x00", "")).name).name  # either kind of folder path
    name = "".join(char for char in name if unicodedata.category(char)[0] != "C").strip(" .")
    if len(name) > MAX_FILENAME_LENGTH:
        _, dot, extension = name.rpartition(".")
        keep = extension[:10] if dot and len(extension) <= 10 else ""
        name = name[: MAX_FILENAME_LENGTH - len(keep) - 1].rstrip(" .") + ("." + keep if keep else "")
    return name or "unnamed"
