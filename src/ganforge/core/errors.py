"""User-facing errors.

Every problem a user can cause (a bad config key, missing data, a foreign checkpoint) is raised
as a `GanforgeError` with a message that names the file, key or value and says how to fix it.
The CLI prints the message and exits with the error's `exit_code`; it never shows a traceback
for these.
"""

import reprlib


class GanforgeError(Exception):
    exit_code = 2


class ConfigError(GanforgeError):
    exit_code = 2


class DataError(GanforgeError):
    exit_code = 3


class CheckpointError(GanforgeError):
    exit_code = 4


class TrainingDiverged(GanforgeError):
    exit_code = 5


MESSAGE_LIMIT = 2000  # characters of one error line: past this it is cut, and the cut said


def shorten(value, limit: int = 80) -> str:
    """repr(value), bounded: an error message quotes what the user gave (a 10 MB string, a YAML
    structure that aliases expand a millionfold) without echoing all of it. reprlib stops at its
    limits while building, so the cost is bounded too."""
    r = reprlib.Repr()
    r.maxstring = r.maxother = r.maxlong = limit
    r.maxlevel, r.maxlist, r.maxtuple, r.maxdict, r.maxset = 3, 6, 6, 6, 6
    text = r.repr(value)
    return text if len(text) <= limit + 10 else text[:limit] + "..."


def bounded(message: str, limit: int = MESSAGE_LIMIT) -> str:
    """A message cut to `limit` characters, the cut said (the CLI's last guard on error lines)."""
    if len(message) <= limit:
        return message
    return f"{message[:limit]}... ({len(message) - limit:,} more characters not shown)"
