"""Error signatures: a failed job's MinorStatus and ApplicationStatus with the varying parts taken out.

Two jobs that failed the same way rarely carry the same text: the exit code, the job or run
number, the host, the path, the user differ. ``normalise`` replaces those parts with placeholders
so the same failure reads the same everywhere::

    "Operation not permitted ( 1 : cta-prod-setup-software Exited With Status 1)"
    -> "Operation not permitted ( N : cta-prod-setup-software Exited With Status N)"

Placeholders: ``<path>`` (an LFN, a file path or a URL), ``<host>`` (a dotted host name or an IP
address), ``<user>`` (``user=...``, ``/home/<name>`` as ``~<user>``, a DN), ``<hex>`` (a hex id of 8
digits or more, a UUID), ``<job>`` / ``<run>`` (a number after "job" or "run"), ``N`` (any other
number, with its decimals and sign). Words stay as they are: a site name (``LCG.IN2P3-CC.fr``) is
a word with dots and capitals, not a host, and a software name with digits
(``Step1_ctapipe_process``, ``cta-prod-setup-software``) keeps them.

Pure: no Django, no DIRAC; the engine (site hints, alerts) and the reports (the signature x site
matrix, digests) use the same function.
"""

from __future__ import annotations

import re

# Order matters: the wider patterns first, so a path's digits are not numbers and a URL's host is
# part of its path.
_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # URLs and storage URLs (srm://, root://, https://, file://).
    (re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://\S+"), "<path>"),
    # A distinguished name's common names (a user): /DC=ch/.../CN=jdoe/CN=123 -> <user>.
    # (a common name may hold capitalised words: "CN=Jane Smith").
    (re.compile(r"(?:/[A-Z]{1,2}=[^/\s]+)*/CN=[^\s/,;)]+(?: [A-Z][a-z]+)*(?:/CN=[^\s/,;)]+)*"), "<user>"),
    (re.compile(r"/home/[A-Za-z0-9._-]+"), "~<user>"),
    # Absolute paths and LFNs: two segments or more.
    (re.compile(r"(?<![\w.])/(?:[\w.+@%=-]+/)+[\w.+@%=-]*"), "<path>"),
    # user=jdoe, user: jdoe, owner jdoe
    (re.compile(r"\b(user(?:name)?|owner)(\s*[=:]\s*|\s+)(?!<)[A-Za-z][\w.-]*", re.IGNORECASE), r"\1\2<user>"),
    # UUIDs, then long hex ids (8 digits or more with at least one digit).
    (re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"), "<hex>"),
    (re.compile(r"\b0x[0-9a-fA-F]+\b"), "<hex>"),
    (re.compile(r"\b(?=[0-9a-fA-F]*[0-9])(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}\b"), "<hex>"),
    # IP addresses, then host names: lower-case dotted names of three labels or more, or ending in
    # a common domain (site names such as LCG.CNAF.it have capitals and stay).
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"), "<host>"),
    # (the last label letters only, so a file name such as run001.dl2.h5 is not a host).
    (re.compile(r"\b[a-z0-9-]+(?:\.[a-z0-9-]+)+\.[a-z]{2,24}(?::\d+)?\b(?!\.)"), "<host>"),
    # Job and run numbers: "job 12345", "JobID=12345", "run000123", "run 12".
    (re.compile(r"\b(job\s*(?:id)?\s*[#:=]?\s*)\d+", re.IGNORECASE), r"\1<job>"),
    (re.compile(r"\b(run\s*[#:=]?\s*)\d+", re.IGNORECASE), r"\1<run>"),
    # Dates and times before plain numbers, so "2024-03-01 12:00:05" is one placeholder.
    (re.compile(r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?Z?)?\b"), "<time>"),
    (re.compile(r"\b\d{1,2}:\d{2}:\d{2}\b"), "<time>"),
)
# Any other number standing alone (not glued to letters: Step1, DL2, x86_64 keep theirs).
_NUMBER = re.compile(r"(?<![A-Za-z0-9_.])[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![A-Za-z0-9_])")
_SPACES = re.compile(r"\s+")

# How a missing value is shown (DIRAC reports "" or "Unknown" when a job never reported one).
NONE = "-"
SIGNATURE_MAX = 255


def normalise(text: str | None) -> str:
    """One message with its varying parts replaced by placeholders (see the module's docstring)."""
    if not text:
        return ""
    out = text.strip()
    for pattern, repl in _RULES:
        out = pattern.sub(repl, out)
    out = _NUMBER.sub("N", out)
    return _SPACES.sub(" ", out).strip()


def signature(minor_status: str | None, application_status: str | None) -> str:
    """A failed job's signature: its MinorStatus and ApplicationStatus, normalised, joined by " | ".

    An empty or "Unknown" part is shown as "-", so a job that never reported an application
    status still has a readable signature.
    """
    parts = []
    for value in (minor_status, application_status):
        n = normalise(value)
        parts.append(n if n and n.lower() != "unknown" else NONE)
    return " | ".join(parts)[:SIGNATURE_MAX]
