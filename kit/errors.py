"""The one exception the library raises for bad input; the CLI turns it into one clear line."""


class KitError(Exception):
    """A problem with the user's input or files, worded for the user (file, row or Id, what is wrong)."""


class UnknownName(KitError, ValueError):
    """A name that is not in its registry (a blend method, a threshold mode, a TTA)."""


def check_name(name, known, what: str) -> None:
    """`name` must be one of the registry `known` (its names, or a dict keyed by them); the error lists them.

    >>> check_name("median", ("mean", "rank"), "blend method")
    Traceback (most recent call last):
    kit.errors.UnknownName: unknown blend method 'median': expected one of mean, rank
    """
    if name not in known:
        raise UnknownName(f"unknown {what} {name!r}: expected one of {', '.join(known)}")
