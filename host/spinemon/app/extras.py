"""What to type to install an optional extra (``report``, ``parquet``, ``view``,
...): in an editable checkout ``pip install -e '.[x]'`` (in that checkout),
else, for a wheel or an sdist install, ``pip install 'spinemon[x]'``."""

from __future__ import annotations

import json
from functools import cache

__all__ = ["editable_checkout", "install_hint"]


@cache
def editable_checkout() -> str | None:
    """The folder of the editable checkout spinemon runs from, or None when it
    is a normal install (PEP 610's ``direct_url.json`` says which)."""
    from importlib import metadata

    try:
        text = metadata.distribution("spinemon").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    if not text:
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    if not (doc.get("dir_info") or {}).get("editable"):
        return None
    from urllib.parse import unquote, urlparse

    url = urlparse(str(doc.get("url", "")))
    return unquote(url.path) if url.scheme == "file" and url.path else None


def install_hint(extra: str) -> str:
    """The pip command that installs ``extra`` for the spinemon that runs now."""
    checkout = editable_checkout()
    if checkout is not None:
        return f"pip install -e '.[{extra}]' (in the checkout, {checkout})"
    return f"pip install 'spinemon[{extra}]'"
