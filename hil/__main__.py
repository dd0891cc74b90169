"""``python -m hil run [--port URL] [--scenario NAME ...]`` / ``python -m hil list``.

``python -m hil`` needs ``hil`` importable (run it from the checkout's root);
``spinemon-hil`` (:mod:`spinemon.app.hil_launcher`) runs this from any directory.
"""

from __future__ import annotations

import argparse
import sys


from spinemon.errors import SpinemonError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one clear line, exit status 2
        sys.stderr.write(f"hil: error: {message}\n")
        sys.exit(2)


def build_parser(prog: str = "python -m hil") -> argparse.ArgumentParser:
    p = _Parser(prog=prog, description="spinemon hardware-in-the-loop bench")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    r = sub.add_parser("run", help="run scenarios against a board (default: the simulated board)")
    r.add_argument("--port", help="pyserial URL of the board: /dev/ttyUSB0, rfc2217://host:port, or mpsim:// (default)")
    r.add_argument("--scenario", nargs="+", metavar="NAME", help="scenario names or .toml paths (default: all)")
    r.add_argument("--report", default="hil-report.json", help="where to write the JSON report (default: %(default)s)")
    r.add_argument("--jobs", type=int, default=3, help="simulated boards run at once (default: %(default)s)")
    r.add_argument("--rig", action="store_true", help="a motion rig moves the real board (run the motion scenarios too)")
    sub.add_parser("list", help="list the scenarios")
    return p


def main(argv: list[str] | None = None, prog: str = "python -m hil") -> int:
    """The bench's exit status; a reader that stops early (``python -m hil list | head -1``)
    ends it quietly (:mod:`spinemon.app.closed_stdout`)."""
    from spinemon.app.closed_stdout import exit_status_of

    return exit_status_of(lambda: _run(argv, prog))


def _run(argv: list[str] | None, prog: str) -> int:
    args = build_parser(prog).parse_args(argv)
    from hil.scenario import load, scenario_names

    try:
        if args.command == "list":
            for n in scenario_names():
                s = load(n)
                print(f"{n:28s} {s.duration_s:5.1f} s  {s.description.splitlines()[0] if s.description else ''}")
            return 0
        if args.jobs < 1:
            raise SpinemonError("--jobs must be at least 1")
        if args.port is not None and not args.port.strip():
            raise SpinemonError("--port is empty; give a serial URL such as /dev/ttyUSB0")
        names = args.scenario or scenario_names()
        scenarios = [load(path=n) if n.endswith((".toml", ".json")) else load(n) for n in names]
        if args.port and not args.port.lower().startswith("mpsim://"):
            _check_port(args.port)
        from hil.bench import run_bench
        from hil.report import table, write_report

        results = run_bench(scenarios, args.port, jobs=args.jobs, rig=True if args.rig else None)
        path = write_report(args.report, results, args.port)  # first: the report is kept when the output is cut
        print(table(results))
        print(f"report: {path}")
        return 0 if all(r.status in ("pass", "skip") for r in results) else 1
    except SpinemonError as e:
        sys.stderr.write(f"hil: error: {e}\n")
        return 2


def _check_port(url: str) -> None:
    """Fail early, in one line, when the port cannot be opened."""
    import serial

    import hil  # noqa: F401

    try:
        s = serial.serial_for_url(url, do_not_open=True)
        s.open()
        s.close()
    except (serial.SerialException, ValueError, OSError) as e:
        raise SpinemonError(f"cannot open port {url}: {e}") from None


if __name__ == "__main__":
    sys.exit(main())
