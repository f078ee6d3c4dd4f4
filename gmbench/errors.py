"""The one exception type gmbench raises for user mistakes (bad names, config, data, input files).

The CLI prints it as a single paragraph and exits with code 2; anything else is a bug and
shows its traceback with `--debug`.
"""


class GmbenchError(Exception):
    """A problem the user can fix: the message says what is wrong and what to do."""
