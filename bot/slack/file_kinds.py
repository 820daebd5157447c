"""What a Slack file is, from what Slack says about it, and what Claude can make of its bytes.

No network here: `bot.slack.files` downloads and calls these. Every problem with a file is a
`FileProblem` whose message is the refusal a user reads, so it names the file and the limit.
"""

from __future__ import annotations

import io
import posixpath
import warnings
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["image", "document", "text"]

IMAGE_NAMES = "PNG, JPEG, GIF and WebP"
_IMAGE_OR = "PNG, JPEG, GIF or WebP"
_IMAGES = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg"}
_IMAGES |= {"gif": "image/gif", "webp": "image/webp"}
_IMAGE_MIMETYPES = set(_IMAGES.values()) | {"image/jpg", "image/pjpeg"}
# Pillow's names. A phone's JPEG may open as MPO (a JPEG with a second picture in it), which
# Pillow reaches through its JPEG opener, so MPO is no format to ask for.
_OPEN_AS = ["PNG", "JPEG", "GIF", "WEBP"]
_PIL_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "MPO": "image/jpeg"}
_PIL_FORMATS |= {"GIF": "image/gif", "WEBP": "image/webp"}
_TEXT_MIMETYPES = {
    "application/json", "application/ld+json", "application/xml", "application/yaml",
    "application/x-yaml", "application/toml", "application/javascript", "application/x-sh",
    "application/x-javascript", "application/typescript", "application/x-shellscript",
    "application/sql", "application/graphql", "application/x-httpd-php", "application/csv",
}  # fmt: skip
# Slack's `filetype` values for text and code (its snippet languages).
_TEXT_FILETYPES = {
    "text", "markdown", "python", "javascript", "typescript", "go", "rust", "java", "c",
    "cpp", "csharp", "shell", "powershell", "sql", "json", "yaml", "xml", "csv", "tsv", "html",
    "css", "scss", "ruby", "php", "kotlin", "swift", "scala", "perl", "r", "lua", "haskell",
    "clojure", "erlang", "elixir", "dart", "dockerfile", "diff", "groovy", "ocaml", "objc",
    "matlab", "vb", "vbscript", "verilog", "vhdl", "toml", "latex", "apex", "coffeescript",
    "d", "elm", "fortran", "fsharp", "julia", "lisp", "pascal", "puppet", "scheme", "smalltalk",
}  # fmt: skip
_TEXT_EXTENSIONS = {
    "txt", "text", "md", "markdown", "rst", "log", "py", "pyi", "js", "mjs", "cjs", "jsx", "ts",
    "tsx", "go", "rs", "java", "kt", "kts", "swift", "c", "h", "cc", "cpp", "cxx", "hpp", "hh",
    "cs", "sh", "bash", "zsh", "fish", "ps1", "sql", "json", "jsonl", "ndjson", "yaml", "yml",
    "toml", "ini", "cfg", "conf", "xml", "csv", "tsv", "html", "htm", "css", "scss", "less",
    "rb", "php", "pl", "lua", "r", "scala", "hs", "clj", "ex", "exs", "erl", "dart", "diff",
    "patch", "tex", "graphql", "proto", "tf", "hcl", "vue", "svelte", "gradle", "properties",
}  # fmt: skip
_GENERIC_MIMETYPES = {"", "application/octet-stream", "binary/octet-stream"}
_GENERIC_FILETYPES = {"", "binary"}
_UNSUPPORTED = {
    "Word documents": {"doc", "docx", "dot", "dotx", "gdoc"},
    "Excel spreadsheets": {"xls", "xlsx", "xlsm", "gsheet"},
    "presentations": {"ppt", "pptx", "key", "gpres", "odp"},
    "OpenDocument files": {"odt", "ods"},
    "Apple Pages and Numbers files": {"pages", "numbers"},
    "archives": {"zip", "gz", "gzip", "tar", "tgz", "rar", "7z", "bz2", "xz"},
    "videos": {"mp4", "mov", "webm", "avi", "mkv", "m4v", "mpg"},
    "audio files": {"mp3", "wav", "m4a", "ogg", "flac", "aac"},
    "canvases": {"quip", "canvas", "space"},
    "emails": {"email", "eml", "msg"},
}
_OTHER_IMAGES = {"heic", "heif", "tif", "tiff", "bmp", "svg", "ico", "psd", "avif", "raw"}


class FileProblem(Exception):
    """A file Claude cannot be sent; the message is the refusal, in plain words."""


@dataclass(frozen=True)
class FileKind:
    kind: Kind
    media_type: str  # as declared; an image's is replaced by what its bytes turn out to be


def file_name(file: dict[str, Any]) -> str:
    return str(file.get("name") or file.get("title") or file.get("id") or "a file")


def _extension(name: str) -> str:
    return posixpath.splitext(name)[1].lstrip(".").lower()


def skipped(name: str, reason: str) -> str:
    return f"I can't read `{name}` ({reason}); I'll answer without it."


def classify(file: dict[str, Any]) -> FileKind | str:
    """The kind of a Slack file, or the note to show for a file that is skipped."""
    name = file_name(file)
    mode = str(file.get("mode") or "hosted")
    filetype = str(file.get("filetype") or "").lower()
    if mode == "external" or file.get("is_external"):
        where = file.get("external_type")
        return skipped(name, f"it is stored outside Slack{f', in {where}' if where else ''}")
    if mode == "tombstone":
        return skipped(name, "it was deleted")
    if mode == "hidden_by_limit":
        return skipped(name, "Slack hides it on this workspace's plan")
    if mode not in ("hosted", "snippet"):
        return skipped(name, f"{_what(filetype) or 'this kind of Slack file'} is not supported")
    found = FileKind("text", "text/plain") if mode == "snippet" else _kind_of(file, name)
    if found is None:
        return skipped(name, _why_unsupported(file, name))
    if not (file.get("url_private_download") or file.get("url_private")):
        return skipped(name, "Slack didn't share its contents with me")
    return found


def _kind_of(file: dict[str, Any], name: str) -> FileKind | None:
    mimetype = str(file.get("mimetype") or "").lower().split(";")[0].strip()
    filetype = str(file.get("filetype") or "").lower()
    if mimetype in _IMAGE_MIMETYPES:
        return FileKind("image", _IMAGES.get(mimetype.removeprefix("image/"), "image/jpeg"))
    if mimetype == "application/pdf":
        return FileKind("document", "application/pdf")
    if mimetype.startswith("text/") or mimetype in _TEXT_MIMETYPES:
        return FileKind("text", mimetype)
    if mimetype.startswith(("image/", "video/", "audio/")):
        return None  # a media type we can name, and cannot send
    # Then Slack's filetype, and the name only when Slack labelled the file vaguely.
    labels = [filetype]
    if mimetype in _GENERIC_MIMETYPES and filetype in _GENERIC_FILETYPES:
        labels.append(_extension(name))
    for label in labels:
        if label in _IMAGES:
            return FileKind("image", _IMAGES[label])
        if label == "pdf":
            return FileKind("document", "application/pdf")
        if label in _TEXT_FILETYPES or label in _TEXT_EXTENSIONS:
            return FileKind("text", "text/plain")
    return None


def _what(label: str) -> str | None:
    for what, labels in _UNSUPPORTED.items():
        if label in labels:
            return what
    return None


def _why_unsupported(file: dict[str, Any], name: str) -> str:
    mimetype = str(file.get("mimetype") or "").lower()
    labels = [str(file.get("filetype") or "").lower(), _extension(name)]
    if mimetype.startswith("image/") or any(label in _OTHER_IMAGES for label in labels):
        return f"only {IMAGE_NAMES} images are supported"
    what = next(filter(None, map(_what, labels)), None)
    if what is None and mimetype.startswith(("video/", "audio/")):
        what = "videos" if mimetype.startswith("video/") else "audio files"
    if what is not None:
        return f"{what} are not supported"
    pretty = file.get("pretty_type") or (labels[1] or labels[0]).upper()
    return f"{pretty} files are not supported" if pretty else "this type of file is not supported"


def image_media_type(name: str, data: bytes, max_side: int) -> str:
    """The image's real media type, after checking it decodes and fits Claude's pixel limit."""
    from PIL import Image  # imported when an image comes: start-up stays quick

    too_large = f"I can't read `{name}`: images can be at most {max_side:,} pixels on a side"
    try:
        # Pillow warns (an error under pytest) about very large images before we can measure.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            # Only the header is read here: the pixels stay compressed.
            with Image.open(io.BytesIO(data), formats=_OPEN_AS) as image:
                found, (width, height) = str(image.format), image.size
    except Image.DecompressionBombError:
        raise FileProblem(f"{too_large}, and it is far larger.") from None
    except Exception:  # untrusted bytes may break a decoder in any way
        raise FileProblem(f"I can't read `{name}`: it is not a valid {_IMAGE_OR} image.") from None
    if max(width, height) > max_side:
        raise FileProblem(f"{too_large}, and it is {width:,}×{height:,}.")
    return _PIL_FORMATS[found]


def check_pdf(name: str, data: bytes, max_pages: int) -> int:
    """Refuse a PDF Claude cannot read: unreadable, password-protected, empty or too long;
    else its number of pages (a PDF's tokens grow with them)."""
    from pypdf import PdfReader  # imported when a PDF comes: start-up stays quick

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        encrypted = reader.is_encrypted
        pages = 0 if encrypted else len(reader.pages)
    except Exception:  # untrusted bytes may break the parser in any way
        raise FileProblem(f"I can't read `{name}`: it is not a valid PDF.") from None
    if encrypted:
        raise FileProblem(
            f"I can't read `{name}`: it is password-protected. Please send an unprotected copy."
        )
    if pages == 0:
        raise FileProblem(f"I can't read `{name}`: it has no pages.")
    if pages > max_pages:
        raise FileProblem(
            f"I can't read `{name}`: it has {pages:,} pages, and a PDF can have at most "
            f"{max_pages:,}."
        )
    return pages


def text_piece(name: str, data: bytes) -> str:
    """A text file as Claude reads it: its name, then its content fenced as code."""
    content = data.decode("utf-8-sig", errors="replace").rstrip("\n")
    longest = run = 0
    for char in content:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    fence = "`" * max(3, longest + 1)
    return f"📄 {name}\n{fence}\n{content}\n{fence}"


def looks_like_html(data: bytes) -> bool:
    """Slack's sign-in page, served instead of the file when it refuses the token."""
    start = data[:512].lstrip().lower()
    return start.startswith((b"<!doctype html", b"<html"))
