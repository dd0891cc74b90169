"""``spinemon-hil``: the hardware-in-the-loop bench from any directory.

The bench (``hil/``) is test and bench support: it lives in the source
checkout next to ``host/``, ``firmware/`` and ``tests/`` (its simulated board
runs the checkout's firmware and fakes) and is not part of the installed
package. ``python -m hil`` therefore works only where ``hil`` is importable,
the checkout's root. This entry point finds the checkout from this file's
own place (an editable install, ``pip install -e .``, keeps it at
``<checkout>/host/spinemon/``), puts the checkout on ``sys.path`` and runs
the bench's command line, so ``spinemon-hil list`` and ``spinemon-hil run``
work from any directory (reports are written relative to where it is run).
Installed without a checkout, it says so in one line and exits 2.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

NO_CHECKOUT = (
    "spinemon-hil: error: the hardware-in-the-loop bench (hil/) comes with the spinemon source checkout, "
    "not with the installed package; clone the repository and run pip install -e '.[test]' in it"
)


def checkout_root() -> Path | None:
    """The source checkout this spinemon runs from, if it has the bench."""
    root = Path(__file__).resolve().parents[3]
    return root if (root / "hil" / "__main__.py").is_file() and (root / "pyproject.toml").is_file() else None


def main(argv: list[str] | None = None) -> int:
    root = checkout_root()
    if root is None:
        print(NO_CHECKOUT, file=sys.stderr)
        return 2
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))  # spawned bench workers inherit it
    # run the checkout's hil/__main__.py by its path: the installed package
    # imports nothing from the bench (no arrow up from app to hil)
    bench = runpy.run_path(str(root / "hil" / "__main__.py"), run_name="spinemon_hil")
    return bench["main"](argv, prog="spinemon-hil")


if __name__ == "__main__":
    sys.exit(main())
