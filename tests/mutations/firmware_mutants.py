"""Hand-made firmware mutants (issue 12): each one applied to a copy of
firmware/, the tests that must catch it run against that copy
(SPINEMON_FIRMWARE_DIR, see tests/mpy_runner.py), and every one of them must
fail. First the same tests run against the unmutated copy and must pass, so
a "kill" is never a test that fails anyway.

    .venv/bin/python -m tests.mutations.firmware_mutants          # part of `make mutate`
    .venv/bin/python -m tests.mutations.firmware_mutants --list

Exit status 0 only if every mutant is killed by every test listed for it.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"

SEC = "tests/system/test_security.py::"
PERSIST = "tests/firmware/test_firmware_persistence.py::"
DEVICE = "tests/firmware/test_firmware_device.py::"
CUTS = PERSIST + "test_a_power_cut_at_every_step_of_a_save_leaves_the_old_or_the_new_state"
FAULTS = "tests/firmware/test_firmware_faults.py::"
ALL_CUTS = [CUTS + "[%s]" % k for k in ("counter", "config", "bonds", "boot")]


@dataclass(frozen=True)
class Mutant:
    name: str
    what: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]


MUTANTS = (
    Mutant(
        "write-check",
        "ble_link.py: the per-connection COMMAND write check removed",
        "ble_link.py",
        "                if conn != self.conn or not self.trusted(conn):\n",
        "                if False:\n",
        (SEC + "test_a_second_central_is_refused_and_the_owner_keeps_the_link_whoever_leaves",),
    ),
    Mutant(
        "write-check-conn",
        "ble_link.py: only the 'is it the owner's connection' part of the write check removed",
        "ble_link.py",
        "                if conn != self.conn or not self.trusted(conn):\n",
        "                if not self.trusted(conn):\n",
        (SEC + "test_a_second_central_is_refused_and_the_owner_keeps_the_link_whoever_leaves",),
    ),
    Mutant(
        "reboot-floor",
        "device.py: the reboot floor (+COUNTER_SAVE_EVERY) removed",
        "device.py",
        "            floor = sp.wrap32(saved + COUNTER_SAVE_EVERY)\n",
        "            floor = sp.wrap32(saved)\n",
        (SEC + "test_after_a_power_cut_the_reboot_floor_covers_unsaved_counters", DEVICE + "test_counter_wraps_modulo_2_32_in_steps_inside_the_window"),
    ),
    Mutant(
        "remove-then-rename",
        "config_store.py write_atomic: the old file removed before the rename (the original bug)",
        "config_store.py",
        "        f.write(text)\n    os.rename(tmp, path)\n",
        "        f.write(text)\n    try:\n        os.remove(path)\n    except OSError:\n        pass\n    os.rename(tmp, path)\n",
        # (not the littlefs test: on this RAM device littlefs programs the
        # remove and the rename in one go, so no cut falls between them)
        tuple(ALL_CUTS),
    ),
    Mutant(
        "write-in-place",
        "config_store.py write_atomic: written straight into the slot, no temporary file",
        "config_store.py",
        '    tmp = path + _TMP\n    with open(tmp, "w") as f:\n        f.write(text)\n    os.rename(tmp, path)\n',
        '    with open(path, "w") as f:\n        f.write(text)\n',
        tuple(ALL_CUTS) + (PERSIST + "test_littlefs_power_cut_after_every_flash_program",),
    ),
    Mutant(
        "one-slot",
        "config_store.py StateFile.save: always the same slot (no previous copy kept)",
        "config_store.py",
        "        target = 1 if self.newest == 0 else 0\n",
        "        target = 0\n",
        tuple(ALL_CUTS) + (PERSIST + "test_littlefs_power_cut_after_every_flash_program",),
    ),
    Mutant(
        "no-crc",
        "config_store.py decode_record: the CRC-32 not checked",
        "config_store.py",
        '    if crc != _crc(body) or "\\n" in body:\n',
        '    if "\\n" in body:\n',
        (PERSIST + "test_leftover_temporary_files_crc_damage_and_old_format_files",),
    ),
    Mutant(
        "notify-untrusted",
        "ble_link.py: SAMPLES and STATUS/ACK/ERROR notified to links that are not trusted",
        "ble_link.py",
        "    def can_send(self):\n        if not self.trusted():\n            return False\n",
        "    def can_send(self):\n        if self.conn is None:\n            return False\n",
        (SEC + "test_a_link_that_stops_being_trusted_gets_nothing_more",),
    ),
    Mutant(
        "fail-open-counter",
        "device.py: a missing or corrupt counter file gives no replay floor (the original bug)",
        "device.py",
        "            self.counter_resync = True\n",
        "            self.counter_resync = False\n",
        (SEC + "test_a_lost_or_corrupt_counter_file_fails_closed_until_the_host_resyncs[garbage]", SEC + "test_a_lost_or_corrupt_counter_file_fails_closed_until_the_host_resyncs[missing]"),
    ),
    Mutant(
        "no-window",
        "device.py: any newer counter accepted (no window)",
        "device.py",
        "            if last is None or not sp.counter_in_window(cmd.counter, last):\n",
        "            if last is None or not sp.counter_is_newer(cmd.counter, last):\n",
        (SEC + "test_a_counter_more_than_the_window_ahead_is_refused",),
    ),
    # issue 23: the pairing window, bond eviction and deletion, lock-out
    Mutant(
        "window-closes-at-poll",
        "ble_link.py: the pairing window closed at the next poll(), not at the bond itself (the original bug)",
        "ble_link.py",
        "                self._new_bond_conn = self.conn\n                self.leave_pairing_mode()\n",
        "                self._new_bond_conn = self.conn\n",
        (SEC + "test_the_first_bond_closes_the_pairing_window_whatever_the_timing",),
    ),
    Mutant(
        "evict-oldest",
        "ble_link.py BondStore.set: a full store evicts its oldest entry (the original bug)",
        "ble_link.py",
        "            return False  # full: a stored bond is never evicted for a new one (the button frees the store)\n",
        "            self.items.pop(0)\n",
        (SEC + "test_strangers_bonds_never_evict_the_owner",),
    ),
    Mutant(
        "radio-replaces-bond",
        "ble_link.py: a stored bond replaced or deleted from the radio without its owner's trusted link",
        "ble_link.py",
        "            if known and self.require_bond and self._owner_of(key) is None:\n",
        "            if False:\n",
        (SEC + "test_a_bond_is_deleted_only_by_the_button_or_its_owner",),
    ),
    Mutant(
        "owner-check-any-link",
        "ble_link.py _owner_of: any trusted link counts as the owner of any key",
        "ble_link.py",
        "        if (pk is not None and bytes(key[: len(pk)]) == pk) or self._served.get(c) == bytes(key):\n",
        "        if True:\n",
        (SEC + "test_a_bond_is_deleted_only_by_the_button_or_its_owner",),
    ),
    Mutant(
        "emptied-store-window",
        "ble_link.py start: an emptied (valid, no bonds) bond file opens the first-boot window (the original bug)",
        "ble_link.py",
        '        if self.bonds.state == "missing":\n',
        '        if self.bonds.bonds() == 0 and self.bonds.state != "corrupt":\n',
        (SEC + "test_a_bond_is_deleted_only_by_the_button_or_its_owner",),
    ),
    Mutant(
        "no-probation-swap",
        "ble_link.py: an untrusted link never gives way to a new central (the owner stays locked out)",
        "ble_link.py",
        "                and self.clock.now_ms() - self._conn_since_ms >= PROBATION_MS\n",
        "                and False\n",
        (SEC + "test_an_untrusted_link_cannot_keep_the_owner_out",),
    ),
    Mutant(
        "long-grace-when-bonded",
        "ble_link.py poll: an untrusted link of a bonded wearable kept the full 30 s",
        "ble_link.py",
        "        grace = BONDED_GRACE_MS if self.require_bond",
        "        grace = UNTRUSTED_GRACE_MS if self.require_bond",
        (SEC + "test_an_untrusted_link_cannot_keep_the_owner_out",),
    ),
    # issue 23: hardware faults
    Mutant(
        "no-resync-on-error",
        "sampler.py: an I2C error while reading a FIFO is counted but the IMUs are not resynchronised (finding 2)",
        "sampler.py",
        "                self.i2c_errors += 1\n                fault = True\n                continue\n",
        "                self.i2c_errors += 1\n                continue\n",
        (FAULTS + "test_one_i2c_timeout_mid_read_never_pairs_samples_out_of_step",),
    ),
    Mutant(
        "no-stall-check",
        "sampler.py: an IMU that stops producing samples is never suspected (the brown-out case of finding 1)",
        "sampler.py",
        "            elif polled and now_us - self.last_data_us[i] > stall:\n",
        "            elif False:\n",
        (FAULTS + "test_a_brown_out_of_one_imu_is_found_and_both_restart_in_step",),
    ),
    Mutant(
        "flexion-in-fallback",
        "guard.py: the flexion limit kept when the lower sensor is lost (a hinge would buzz)",
        "guard.py",
        "        flex = 0 if single else self.flex_cdeg",
        "        flex = self.flex_cdeg",
        (FAULTS + "test_lower_imu_leaving_the_bus_falls_back_to_one_sensor_and_says_so",),
    ),
    Mutant(
        "no-lost-status",
        "device.py: no STATUS pushed when a sensor is lost or back (the host learns at the next poll)",
        "device.py",
        "            self.push_status()\n",
        "            pass\n",
        (FAULTS + "test_lower_imu_leaving_the_bus_falls_back_to_one_sensor_and_says_so",),
    ),
    Mutant(
        "ack-unsaved",
        "device.py: a setting the flash refused is ACKed (finding 4)",
        "device.py",
        "        if not stored:\n",
        "        if False:\n",
        (FAULTS + "test_a_full_flash_naks_the_save_with_its_reason",),
    ),
    Mutant(
        "drop-refused-answer",
        "device.py: an answer the radio refused (ENOMEM) is dropped, not kept (finding 5)",
        "device.py",
        "            if b.send_status(q[0]) or b.notify_errors == before:\n",
        "            if b.send_status(q[0]) or True:\n",
        (FAULTS + "test_an_ack_the_radio_refused_with_enomem_is_sent_later",),
    ),
    Mutant(
        "no-boot-retry",
        "main.py: one boot attempt only (finding 3)",
        "main.py",
        "BOOT_TRIES = 5\n",
        "BOOT_TRIES = 1\n",
        (FAULTS + "test_an_i2c_error_at_boot_is_retried_and_the_wearable_advertises",),
    ),
    Mutant(
        "feed-always",
        "app.py: the watchdog fed whether or not every loop comes round",
        "app.py",
        "            if fresh:\n",
        "            if True:\n",
        (FAULTS + "test_the_watchdog_is_fed_only_while_every_loop_comes_round",),
    ),
)

_SUMMARY = re.compile(r"(\d+) (passed|failed|error|errors)")


def run_tests(firmware: Path, tests: tuple[str, ...], timeout: float) -> tuple[int, dict[str, int], str]:
    env = dict(os.environ)
    env["SPINEMON_FIRMWARE_DIR"] = str(firmware)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf", *tests]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    counts: dict[str, int] = {}
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    for n, what in _SUMMARY.findall(tail):
        counts["error" if what.startswith("error") else what] = int(n)
    return proc.returncode, counts, proc.stdout


def mutate(dst: Path, m: Mutant) -> None:
    shutil.copytree(FIRMWARE, dst)
    p = dst / m.file
    src = p.read_text()
    if src.count(m.old) != 1:
        raise SystemExit(f"mutant {m.name}: the code to mutate occurs {src.count(m.old)} times in firmware/{m.file} (expected once); update the mutant")
    p.write_text(src.replace(m.old, m.new))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--list", action="store_true", help="list the mutants and their tests")
    ap.add_argument("--only", action="append", default=[], help="run this mutant only (repeatable)")
    ap.add_argument("--timeout", type=float, default=600.0)
    args = ap.parse_args(argv)
    chosen = [m for m in MUTANTS if not args.only or m.name in args.only]
    if args.list:
        for m in chosen:
            print(f"{m.name}: {m.what}")
            for t in m.tests:
                print(f"    {t}")
        return 0
    rows = []
    ok = True
    with tempfile.TemporaryDirectory(prefix="spinemon-mutants-") as tmp:
        clean = Path(tmp) / "clean"
        shutil.copytree(FIRMWARE, clean)
        everything = tuple(sorted({t for m in chosen for t in m.tests}))
        t0 = time.monotonic()
        rc, counts, out = run_tests(clean, everything, args.timeout)
        if rc != 0 or counts.get("passed", 0) != len(everything):
            print(out[-3000:])
            print(f"the tests do not pass on the unmutated firmware ({counts}): no mutant can be judged")
            return 2
        print(f"baseline: {len(everything)} tests pass on the unmutated firmware copy ({time.monotonic() - t0:.0f} s)")
        for m in chosen:
            d = Path(tmp) / m.name
            mutate(d, m)
            t0 = time.monotonic()
            rc, counts, out = run_tests(d, m.tests, args.timeout)
            failed = counts.get("failed", 0)
            killed = rc != 0 and failed == len(m.tests)
            ok = ok and killed
            rows.append((m, failed, len(m.tests), killed, time.monotonic() - t0))
            status = "KILLED" if killed else "SURVIVED"
            print(f"{status:8s} {m.name:20s} {failed}/{len(m.tests)} tests fail  ({time.monotonic() - t0:.0f} s)  {m.what}")
            if not killed:
                print(out[-2000:])
    print(f"{sum(r[3] for r in rows)} of {len(rows)} hand-made mutants killed (every listed test failing)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
