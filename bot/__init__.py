"""Lianxin (連心): the chatbot that links community police officers and residents."""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _installed


def version() -> str:
    """The installed package's version (``lianxin --version``, the OpenAPI page)."""
    try:
        return _installed("lianxin")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"
