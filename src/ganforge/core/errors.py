"""User-facing errors.

Every problem a user can cause (a bad config key, missing data, a foreign checkpoint) is raised
as a `GanforgeError` with a message that names the file, key or value and says how to fix it.
The CLI prints the message and exits with the error's `exit_code`; it never shows a traceback
for these.
"""


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
