"""Reading the agent's options from a DIRAC configuration file (diraccfg syntax).

The ``TransformationFailoverAgent`` section is found at any depth (normally
/Systems/Transformation/Agents/TransformationFailoverAgent). A file with only the options, or
the tree drawing of the seed's slide pasted as it is, is taken as a bare section.
Options are cast as DIRAC casts them (reference section 9): lists split on commas with empty
items dropped, so a present-but-empty option is an empty list and does not fall back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from failover.errors import ConfigurationError

SECTION = "TransformationFailoverAgent"

LIST_OPTIONS = {
    "TransformationStatus": "transformation_statuses",
    "TransformationTypes": "transformation_types",
    "Report": "report_types",
    "Complete": "complete_types",
    "Flush": "flush_types",
    "Reassign": "reassign_types",
    "MailTo": "mail_to",
}
INT_OPTIONS = {"MaxReassign": "max_reassign", "MaxFlush": "max_flush", "PollingTime": "polling_time"}
STR_OPTIONS = {"MailFrom": "mail_from"}
# Options of the DIRAC agent framework, or of the agent that have no meaning here: accepted and
# reported as ignored, so a real CS section imports without editing.
IGNORED_OPTIONS = {
    "maxThreadsInPool": "this product scales with worker processes instead",
    "htmlReport": "the report is a web page; digests are HTML and text",
    "TypesToReport": "the agent never reads it either",
    "MaxCycles": "agent framework option",
    "Status": "agent framework option",
    "WatchdogTime": "agent framework option",
    "shifterProxy": "agent framework option",
    "LogLevel": "agent framework option",
    "LogBackends": "agent framework option",
    "Module": "agent framework option",
    "EnableFlag": "agent framework option",
}


@dataclass
class ImportedPolicy:
    values: dict = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    path: str = ""


_TREE = re.compile(r"^[\s│|]*[├└`+\\][─-]+\s*")


def _untree(text: str) -> str:
    """Turn the seed's tree drawing (``├── PollingTime = 600``) into cfg lines.

    Line numbers are kept (the root line opens its section on the same line, blank lines stay),
    so a message about line N means line N of the user's file.
    """
    # Only lines that start with a branch make a drawing: a "└" in a comment of a real cfg does not.
    if not any(_TREE.match(line) for line in text.splitlines() if "├" in line or "└" in line):
        return text
    lines = []
    opened = False
    for line in text.splitlines():
        stripped = _TREE.sub("", line).strip()
        if stripped and "=" not in stripped and not any(lines):
            lines.append(f"{stripped} {{")
            opened = True
            continue
        lines.append(stripped)
    if opened:
        lines.append("}")
    return "\n".join(lines) + "\n"


def _repeated_options(text: str, origin: str) -> None:
    """Refuse an option set twice in the agent's section (or in a bare file of options).

    diraccfg keeps the last value silently, so a stale line left above a new one would win or
    lose unnoticed. ``Name += value`` appends, as in DIRAC, and is not a repetition. The scan
    follows diraccfg's own reading of braces, options and comments line by line.
    """
    stack: list[str] = []
    pending = ""
    seen: dict[tuple[tuple[str, ...], str], int] = {}
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        for index, char in enumerate(line):
            if char == "{":
                stack.append(pending.strip())
                pending = ""
            elif char == "}":
                if stack:
                    stack.pop()
                pending = ""
            elif char == "=" or line[index : index + 2] == "+=":
                name = line[:index].strip()
                pending = ""
                if char == "=" and (not stack or stack[-1] == SECTION):
                    key = (tuple(stack), name)
                    if key in seen:
                        where = "/".join(stack) or "the file"
                        raise ConfigurationError(
                            f"{origin}: line {number}: {name} is set again in {where} (first at line "
                            f"{seen[key]}); DIRAC would silently keep the last value, keep one"
                        )
                    seen[key] = number
                break
            else:
                pending += char


def _find(cfg_dict: dict, path: str = "") -> list[tuple[str, dict]]:
    found = []
    for key, value in cfg_dict.items():
        if isinstance(value, dict):
            here = f"{path}/{key}"
            if key == SECTION:
                found.append((here, value))
            found.extend(_find(value, here))
    return found


def parse_text(text: str, origin: str = "configuration") -> ImportedPolicy:
    from diraccfg import CFG

    cfg = CFG()
    text = _untree(text)
    try:
        cfg.loadFromBuffer(text)
    except Exception as exc:  # diraccfg raises ValueError and others for bad syntax
        raise ConfigurationError(f"{origin}: not a DIRAC configuration ({exc})") from None
    _repeated_options(text, origin)
    tree = cfg.getAsDict()
    sections = _find(tree)
    if len(sections) > 1:
        where = ", ".join(p for p, _ in sections)
        raise ConfigurationError(f"{origin}: {SECTION} appears {len(sections)} times ({where}); keep one")
    if sections:
        path, options = sections[0]
    elif tree and not any(isinstance(v, dict) for v in tree.values()):
        path, options = "(bare section)", tree
    else:
        raise ConfigurationError(f"{origin}: no {SECTION} section found")
    result = ImportedPolicy(path=path)
    for name, raw in options.items():
        if isinstance(raw, dict):
            raise ConfigurationError(f"{origin}: {path}/{name} is a section; expected an option")
        if name in LIST_OPTIONS:
            result.values[LIST_OPTIONS[name]] = [item.strip() for item in raw.split(",") if item.strip()]
        elif name in INT_OPTIONS:
            try:
                number = int(raw.strip())
            except ValueError:
                raise ConfigurationError(f"{origin}: {name} = {raw!r} is not a whole number") from None
            if number < 0 or (name == "PollingTime" and number < 1):
                raise ConfigurationError(f"{origin}: {name} = {raw!r} must be positive")
            result.values[INT_OPTIONS[name]] = number
        elif name in STR_OPTIONS:
            result.values[STR_OPTIONS[name]] = raw.strip()
        elif name in IGNORED_OPTIONS:
            result.ignored.append(f"{name} ({IGNORED_OPTIONS[name]})")
        else:
            known = ", ".join(sorted([*LIST_OPTIONS, *INT_OPTIONS, *STR_OPTIONS]))
            raise ConfigurationError(f"{origin}: unknown option {name!r} in {path} (known: {known})")
    # As in the agent: Report defaults to the value of TransformationTypes when absent.
    if "report_types" not in result.values and "transformation_types" in result.values:
        result.values["report_types"] = list(result.values["transformation_types"])
    return result


def parse_path(path: str | Path) -> ImportedPolicy:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigurationError(f"{path}: not a text file") from None
    result = parse_text(text, str(path))
    result.path = f"{path}:{result.path}"
    return result


# Option name of each Policy field, for messages in the user's words.
_OPTION_OF = {field: option for option, field in {**LIST_OPTIONS, **INT_OPTIONS, **STR_OPTIONS}.items()}


def check_against_model(values: dict, name: str, origin: str = "configuration") -> None:
    """Refuse what the Policy table cannot hold, before anything is stored.

    Whole numbers are held to the range of their column on every database we support (32 bits
    for PositiveIntegerField, as on PostgreSQL; SQLite would store more, MySQL/PostgreSQL fail
    with a traceback); strings to their column's max_length (SQLite does not enforce it).
    """
    from django.db.backends.base.operations import BaseDatabaseOperations

    from failover.models import Policy

    checks = {"name": name, **values}
    for field_name, value in checks.items():
        field = Policy._meta.get_field(field_name)
        what = "--name" if field_name == "name" else _OPTION_OF.get(field_name, field_name)
        where = "" if field_name == "name" else f"{origin}: "
        limits = BaseDatabaseOperations.integer_field_ranges.get(field.get_internal_type())
        if limits is not None and isinstance(value, int):
            low, high = limits
            if not low <= value <= high:
                raise ConfigurationError(f"{where}{what} = {value} is out of range ({low} to {high})")
        max_length = getattr(field, "max_length", None)
        if max_length and isinstance(value, str) and len(value) > max_length:
            raise ConfigurationError(
                f"{where}{what} is {len(value)} characters long; at most {max_length} are kept"
            )
        if field_name == "name" and not value.strip():
            raise ConfigurationError("--name must not be empty")
