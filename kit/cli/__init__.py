"""The `kit` command line: a thin layer over the library. Each command lives in its own module here, named
after it, and calls one library function that works the same from a notebook."""
# Each module registers its command on `main` when imported.
from kit.cli import (  # noqa: F401
    blend,
    bundle,
    cache,
    download,
    dups,
    folds,
    infer,
    init,
    lr_find,
    notebook,
    predict,
    pull,
    report,
    run,
    submissions,
    submit,
    synth,
    train,
    weights,
)
from kit.cli.group import main

__all__ = ["main"]
