"""The one error type the command line turns into a single line and exit code 2."""

from __future__ import annotations

from collections.abc import Iterable


class DriveError(ValueError):
    """Bad input from a user: the message is one line naming the bad value and the valid choices."""


class EngineWarning(UserWarning):
    """A simulator chosen for a scenario where it differs from highway-env (the reference): one line, the command
    line prints it as ``warning: ...``; the run goes on."""


def choice_error(what: str, value: object, choices: Iterable[object]) -> DriveError:
    """``unknown env 'hihgway'; valid: highway, merge`` with a close-match hint when there is one."""
    import difflib

    names = [str(c) for c in choices]
    hint = difflib.get_close_matches(str(value), names, n=1)
    suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
    return DriveError(f"unknown {what} {value!r}{suggestion}; valid: {', '.join(names)}")


def check_choice(what: str, value: object, choices: Iterable[object]) -> None:
    choices = list(choices)
    if value not in choices:
        raise choice_error(what, value, choices)
