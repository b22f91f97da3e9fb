"""The one exception type for mistakes a user can fix.

The CLI prints a UserError as a single line and exits non-zero without a traceback; anything
else is a bug in this project and keeps its traceback.
"""


class UserError(Exception):
    """A problem with the user's input (path, file, value), with a message that says how to fix it."""
