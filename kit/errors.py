"""The one exception the library raises for bad input; the CLI turns it into one clear line."""


class KitError(Exception):
    """A problem with the user's input or files, worded for the user (file, row or Id, what is wrong)."""
