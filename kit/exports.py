"""Package namespaces that import a name's module only when the name is first used (PEP 562), so that
`from kit.train import train_fold` works while `import kit.train` stays free of torch (kit.train.fanout must
load torch only after choosing its GPU). Each package's `__init__` lists its exports in one dict.

>>> import kit.score
>>> kit.score.macro_f1 is __import__("kit.score.metrics", fromlist=["macro_f1"]).macro_f1
True
>>> kit.score.no_such_name
Traceback (most recent call last):
AttributeError: module 'kit.score' has no attribute 'no_such_name'
"""
from __future__ import annotations

import importlib
import sys
from collections.abc import Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """(__getattr__, __dir__) for `package`, whose public names map to the submodule that defines them."""

    def __getattr__(name: str):
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)  # later lookups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
