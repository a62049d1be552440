"""The cases, in the order their files are loaded: a case is a function
`case_NAME(env)` marked with @case in a file of tests/sip/cases/. Its position
in CASES picks its port block (Ports), so the order is fixed: files sorted by
name, cases in the order they stand in their file."""

import importlib
import os

from portier_sip.base import HERE

CASES = []


def case(func):
    """Registers func as the case NAME (func is case_NAME); its docstring's first
    line is what the run prints."""
    prefix = "case_"
    if not func.__name__.startswith(prefix):
        raise ValueError("%s: a case function is named case_NAME" % func.__name__)
    name = func.__name__[len(prefix):]
    if any(n == name for n, _ in CASES):
        raise ValueError("case %s defined twice" % name)
    CASES.append((name, func))
    return func


def load_cases():
    """Imports every file of tests/sip/cases/ (each registers its cases)."""
    folder = os.path.join(HERE, "cases")
    for fname in sorted(os.listdir(folder)):
        if fname.endswith(".py") and not fname.startswith("_"):
            importlib.import_module("cases." + fname[:-3])
    return CASES
