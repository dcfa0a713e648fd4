"""Reading the agents' options from a DIRAC configuration file (diraccfg syntax).

The ``TransformationFailoverAgent`` section is found at any depth (normally
/Systems/Transformation/Agents/TransformationFailoverAgent). A file with only the options, or
the tree drawing of the seed's slide pasted as it is, is taken as a bare section.
The ``DataRecoveryAgent`` section, found the same way, gives the recovery policy
(``ImportedPolicy.recovery``), with Operations ``Transformations/FilesMaxResetCounter`` (and
``ExtendableTransfTypes`` / ``DataProcessing`` for the agent's type defaults) when the file has them.
A file may hold either section or both.
Options are cast as DIRAC casts them (reference section 9): lists split on commas with empty
items dropped, so a present-but-empty option is an empty list and does not fall back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from failover.errors import ConfigurationError

SECTION = "TransformationFailoverAgent"
RECOVERY_SECTION = "DataRecoveryAgent"

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


# DataRecoveryAgent (reference 6; DIRAC's ConfigTemplate.cfg): option -> RecoveryPolicy field.
RECOVERY_LIST_OPTIONS = {
    "TransformationStatus": "transformation_statuses",
    "TransformationsWithInput": "types_with_input",
    "TransformationsNoInput": "types_no_input",
    "MailTo": "mail_to",
}
RECOVERY_INT_LIST_OPTIONS = {"TransformationsToIgnore": "transformations_to_ignore"}
RECOVERY_INT_OPTIONS = {"PollingTime": "polling_time"}
RECOVERY_STR_OPTIONS = {"MailFrom": "mail_from"}
RECOVERY_IGNORED = {
    **{k: v for k, v in IGNORED_OPTIONS.items() if k not in ("EnableFlag", "TypesToReport", "htmlReport")},
    "PrintEvery": "the pages show the progress instead of the log",
    "JobInfoFromJDLOnly": "job data is read in batched calls, never from the JDL",
}
_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0"}


@dataclass
class ImportedRecovery:
    values: dict = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    path: str = ""


@dataclass
class ImportedPolicy:
    values: dict = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    path: str = ""
    # False when the file has only a DataRecoveryAgent section.
    has_failover: bool = True
    recovery: ImportedRecovery | None = None


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
                if char == "=" and (not stack or stack[-1] in (SECTION, RECOVERY_SECTION)):
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


def _find(cfg_dict: dict, path: str = "", section: str = SECTION) -> list[tuple[str, dict]]:
    found = []
    for key, value in cfg_dict.items():
        if isinstance(value, dict):
            here = f"{path}/{key}"
            if key == section:
                found.append((here, value))
            found.extend(_find(value, here, section))
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
    recovery = _find(tree, section=RECOVERY_SECTION)
    for name, found in ((SECTION, sections), (RECOVERY_SECTION, recovery)):
        if len(found) > 1:
            where = ", ".join(p for p, _ in found)
            raise ConfigurationError(f"{origin}: {name} appears {len(found)} times ({where}); keep one")
    imported_recovery = _recovery(tree, recovery[0], origin) if recovery else None
    if sections:
        path, options = sections[0]
    elif imported_recovery is not None:
        return ImportedPolicy(has_failover=False, recovery=imported_recovery)
    elif tree and not any(isinstance(v, dict) for v in tree.values()):
        path, options = "(bare section)", tree
    else:
        raise ConfigurationError(f"{origin}: no {SECTION} section found (nor a {RECOVERY_SECTION} section)")
    result = ImportedPolicy(path=path, recovery=imported_recovery)
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


def _list(raw: str) -> list[str]:
    return [item.strip() for item in raw.split(",") if item.strip()]


def _operations(tree: dict, origin: str) -> dict[str, str]:
    """Operations ``Transformations/<option>`` values (FilesMaxResetCounter, ExtendableTransfTypes,
    DataProcessing) at any depth under an ``Operations`` section; two different values of one option
    (e.g. in Defaults and in a setup) are refused, as it cannot be known which one the agent sees."""
    found: dict[str, tuple[str, str]] = {}

    def walk(node: dict, path: str, inside: bool) -> None:
        for key, value in node.items():
            if not isinstance(value, dict):
                continue
            here = f"{path}/{key}"
            if inside and key == "Transformations":
                for name in ("FilesMaxResetCounter", "ExtendableTransfTypes", "DataProcessing"):
                    if isinstance(value.get(name), str):
                        raw = value[name].strip()
                        if name in found and found[name][1] != raw:
                            raise ConfigurationError(
                                f"{origin}: {name} is {found[name][1]!r} in {found[name][0]} and {raw!r} in "
                                f"{here}; keep one value"
                            )
                        found[name] = (here, raw)
            walk(value, here, inside or key == "Operations")

    walk(tree, "", False)
    return {name: raw for name, (_, raw) in found.items()}


def _recovery(tree: dict, section: tuple[str, dict], origin: str) -> ImportedRecovery:
    """The DataRecoveryAgent section as RecoveryPolicy values, cast as DIRAC casts them."""
    path, options = section
    result = ImportedRecovery(path=path)
    values = result.values
    for name, raw in options.items():
        if isinstance(raw, dict):
            raise ConfigurationError(f"{origin}: {path}/{name} is a section; expected an option")
        if name in RECOVERY_LIST_OPTIONS:
            values[RECOVERY_LIST_OPTIONS[name]] = _list(raw)
        elif name in RECOVERY_INT_LIST_OPTIONS:
            try:
                values[RECOVERY_INT_LIST_OPTIONS[name]] = [int(item) for item in _list(raw)]
            except ValueError:
                raise ConfigurationError(
                    f"{origin}: {name} = {raw!r} must be transformation ids (whole numbers, comma-separated)"
                ) from None
        elif name in RECOVERY_INT_OPTIONS:
            try:
                number = int(raw.strip())
            except ValueError:
                raise ConfigurationError(f"{origin}: {path}/{name} = {raw!r} is not a whole number") from None
            if number < 1:
                raise ConfigurationError(f"{origin}: {path}/{name} = {raw!r} must be positive")
            values[RECOVERY_INT_OPTIONS[name]] = number
        elif name in RECOVERY_STR_OPTIONS:
            values[RECOVERY_STR_OPTIONS[name]] = raw.strip()
        elif name == "EnableFlag":
            flag = raw.strip().lower()
            if flag not in _TRUE | _FALSE:
                raise ConfigurationError(f"{origin}: {path}/EnableFlag = {raw!r} must be True or False")
            # DIRAC's EnableFlag False is a full dry run that reports: here, proposals.
            values["mode"] = "act" if flag in _TRUE else "propose"
        elif name in RECOVERY_IGNORED:
            result.ignored.append(f"{RECOVERY_SECTION}/{name} ({RECOVERY_IGNORED[name]})")
        else:
            known = ", ".join(sorted([*RECOVERY_LIST_OPTIONS, *RECOVERY_INT_LIST_OPTIONS, *RECOVERY_INT_OPTIONS,
                                      *RECOVERY_STR_OPTIONS, "EnableFlag"]))
            raise ConfigurationError(f"{origin}: unknown option {name!r} in {path} (known: {known})")
    ops = _operations(tree, origin)
    if "FilesMaxResetCounter" in ops:
        raw = ops["FilesMaxResetCounter"]
        try:
            values["files_max_reset_counter"] = int(raw)
        except ValueError:
            raise ConfigurationError(f"{origin}: FilesMaxResetCounter = {raw!r} is not a whole number") from None
        if values["files_max_reset_counter"] < 0:
            raise ConfigurationError(f"{origin}: FilesMaxResetCounter = {raw!r} must be positive")
    # The agent's defaults when its options are absent: ExtendableTransfTypes (MCSimulation) without
    # input, DataProcessing minus those with input (only when the file has them; else every type).
    extendable = _list(ops["ExtendableTransfTypes"]) if "ExtendableTransfTypes" in ops else None
    if "types_no_input" not in values and extendable is not None:
        values["types_no_input"] = extendable
    if "types_with_input" not in values and "DataProcessing" in ops:
        no_input = set(values.get("types_no_input", extendable or ["MCSimulation"]))
        values["types_with_input"] = [t for t in _list(ops["DataProcessing"]) if t not in no_input]
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
    if result.recovery is not None:
        result.recovery.path = f"{path}:{result.recovery.path}"
    return result


# Option name of each Policy field, for messages in the user's words.
_OPTION_OF = {field: option for option, field in {**LIST_OPTIONS, **INT_OPTIONS, **STR_OPTIONS}.items()}
_RECOVERY_OPTION_OF = {
    field: f"{RECOVERY_SECTION}/{option}" for option, field in {
        **RECOVERY_LIST_OPTIONS, **RECOVERY_INT_LIST_OPTIONS, **RECOVERY_INT_OPTIONS, **RECOVERY_STR_OPTIONS,
    }.items()
} | {"files_max_reset_counter": "FilesMaxResetCounter", "mode": f"{RECOVERY_SECTION}/EnableFlag"}


def check_against_model(values: dict, name: str, origin: str = "configuration", model=None) -> None:
    """Refuse what the Policy table cannot hold, before anything is stored.

    Whole numbers are held to the range of their column on every database we support (32 bits
    for PositiveIntegerField, as on PostgreSQL; SQLite would store more, MySQL/PostgreSQL fail
    with a traceback); strings to their column's max_length (SQLite does not enforce it).
    """
    from django.db.backends.base.operations import BaseDatabaseOperations

    from failover.models import Policy

    model = model or Policy
    option_of = _OPTION_OF if model is Policy else _RECOVERY_OPTION_OF
    checks = {"name": name, **values}
    for field_name, value in checks.items():
        field = model._meta.get_field(field_name)
        what = "--name" if field_name == "name" else option_of.get(field_name, field_name)
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
