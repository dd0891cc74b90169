# The device's state on flash: settings (config), the boot counter, the BLE
# command-counter floor and (ble_link.BondStore) the bonds. Every state file
# is a StateFile: two slots, each one line
#
#     SM2 <crc32 of the body, 8 hex digits> <body>      body = "<generation> <payload>"
#
# A write builds the new record in `<slot>.tmp` and renames it over the older
# slot (os.rename replaces the target atomically on littlefs, the ESP32's
# filesystem, and on the unix port; on FAT MicroPython removes the target
# first, and the other slot still holds the previous state). So a power cut
# at any moment leaves the previous generation or the new one, both slots
# valid, never neither. At load a leftover `.tmp` holding a complete, valid
# record newer than both slots is rolled forward (renamed into place); any
# other leftover is removed. A record whose CRC fails is ignored (the other
# slot is used) and reported.
#
# A missing or corrupt state fails *closed* (docs/security.md): no counter
# floor means BLE commands are refused until the host resyncs (device.py);
# the boot counter never repeats (bump_boot_count); a corrupt config gives
# DEFAULTS with STATUS ST_CONFIG_DEFAULTS. A file written by an earlier
# firmware (no SM2 header, one plain file) is read as generation 0 where the
# caller allows it (config, bonds), and rewritten in this format on the next
# save.

import binascii
import json

try:
    import os
except ImportError:  # pragma: no cover
    import uos as os

MAGIC = "SM2"
_TMP = ".tmp"


def _crc(text):
    return binascii.crc32(text.encode()) & 0xFFFFFFFF


def encode_record(gen, payload):
    """One state record (text) for generation `gen` holding `payload` (one line)."""
    body = "%d %s" % (gen, payload)
    return "%s %08x %s\n" % (MAGIC, _crc(body), body)


def decode_record(text):
    """(generation, payload) of a record, or None if it is not a complete,
    intact one."""
    if not text.startswith(MAGIC + " ") or not text.endswith("\n"):
        return None
    head = len(MAGIC) + 1
    hexcrc = text[head : head + 8]
    if len(hexcrc) != 8 or text[head + 8 : head + 9] != " ":
        return None
    body = text[head + 9 : -1]
    try:
        crc = int(hexcrc, 16)
    except ValueError:
        return None
    if crc != _crc(body) or "\n" in body:
        return None
    i = body.find(" ")
    if i <= 0:
        return None
    try:
        gen = int(body[:i])
    except ValueError:
        return None
    if gen < 1:
        return None
    return gen, body[i + 1 :]


def _read_text(path):
    """The file's text, or None if it does not exist / cannot be read.
    Undecodable bytes count as unreadable."""
    try:
        with open(path) as f:
            return f.read()
    except (OSError, UnicodeError, ValueError):
        return None


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def write_atomic(path, text):
    """Write `text` to `path` through `path.tmp` renamed OVER it (never remove
    first: a cut between the two would leave no file). Raises OSError."""
    tmp = path + _TMP
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


class StateFile:
    """A small state value kept in two slots (`path`, `path.b`) with a
    generation number and a CRC-32 each. load() -> payload text or None;
    `state` says why: "ok", "missing" (no trace of the file: a new device) or
    "corrupt" (something was there but no slot holds a valid record).
    `legacy`: a slot-0 file without the header (earlier firmware) is taken as
    generation 0."""

    def __init__(self, path, legacy=False):
        self.path = path
        self.slots = (path, path + ".b")
        self.legacy = legacy
        self.gen = 0  # generation of the newest valid record
        self.newest = -1  # which slot holds it (-1: none)
        self.state = "missing"
        self.problem = None
        self.recovered = 0  # leftover .tmp files rolled forward
        self.discarded = 0  # leftover .tmp files removed
        self.bad_slots = 0  # slots found corrupt at the last load
        self.valid_slots = 0  # slots holding a valid record at the last load
        self.loaded = False

    def _recover_tmps(self, best_gen):
        for i in range(2):
            tmp = self.slots[i] + _TMP
            text = _read_text(tmp)
            if text is None:
                if _exists(tmp):
                    _remove(tmp)
                    self.discarded += 1
                continue
            rec = decode_record(text)
            if rec is not None and rec[0] > best_gen:
                # written completely, cut before the rename: finish it
                try:
                    os.rename(tmp, self.slots[i])
                    self.recovered += 1
                    continue
                except OSError:
                    pass
            _remove(tmp)
            self.discarded += 1

    def _scan(self):
        best = None  # (gen, payload, slot)
        seen = False
        bad = 0
        self.valid_slots = 0
        for i in range(2):
            text = _read_text(self.slots[i])
            if text is None:
                if _exists(self.slots[i]):
                    seen = True
                    bad += 1
                continue
            seen = True
            rec = decode_record(text)
            if rec is None and i == 0 and self.legacy and not text.startswith(MAGIC):
                rec = (0, text)
            if rec is None:
                bad += 1
                continue
            self.valid_slots += 1
            if best is None or rec[0] > best[0]:
                best = (rec[0], rec[1], i)
        return best, seen, bad

    def load(self):
        self.loaded = True
        had_tmp = _exists(self.slots[0] + _TMP) or _exists(self.slots[1] + _TMP)
        if had_tmp:
            best = self._scan()[0]
            self._recover_tmps(best[0] if best is not None else -1)
        best, seen, bad = self._scan()
        seen = seen or had_tmp
        self.bad_slots = bad
        self.problem = None
        if best is None:
            self.gen = 0
            self.newest = -1
            self.state = "corrupt" if seen else "missing"
            if seen:
                self.problem = "no valid copy"
            return None
        self.gen, payload, self.newest = best
        self.state = "ok"
        if bad:
            self.problem = "one copy corrupt, the other used"
        return payload

    def save(self, payload):
        """Write `payload` (one line of text) as the next generation, into the
        slot that does not hold the newest record. Raises OSError."""
        if "\n" in payload:
            raise ValueError("state payload must be one line")
        if not self.loaded:
            self.load()  # never write over a newer generation we have not seen
        gen = self.gen + 1
        target = 1 if self.newest == 0 else 0
        try:
            write_atomic(self.slots[target], encode_record(gen, payload))
        except OSError:
            _remove(self.slots[target] + _TMP)
            raise
        self.gen = gen
        self.newest = target
        self.state = "ok"

    def clear(self):
        """Remove every slot (and leftovers)."""
        for s in self.slots:
            _remove(s)
            _remove(s + _TMP)
        self.gen = 0
        self.newest = -1
        self.state = "missing"


DEFAULTS = {
    "rate_hz": 100,
    "accel_fs_g": 4,
    "gyro_fs_dps": 2000,
    "guard_flex_cdeg": 4500,
    "guard_ext_cdeg": -2000,
    "guard_mode": 1,  # GUARD_WHEN_LINK_DOWN
    "name_suffix": "",  # "" = last 4 hex digits of the MAC
    "link": "ble",  # "ble", "serial" or "both"
    # the guard's gravity filter, the host's FusionSettings defaults (guard.py);
    # named anew in firmware 0.5, so a value saved for the old filter is not read
    "fusion_tau_acc_s": 3.0,
    "fusion_acc_rejection_m_s2": 0.0,  # 0: off
    "calibrated": False,
    "offset_upper": 0.0,
    "offset_lower": 0.0,
    "guard_pulses": 2,
    "guard_on_ms": 200,
    "guard_off_ms": 100,
    "guard_strength": 255,
}

# key -> (type, lo, hi) or (type, allowed values)
_RULES = {
    "rate_hz": (int, 25, 1000),
    "accel_fs_g": (int, (2, 4, 8, 16)),
    "gyro_fs_dps": (int, (125, 250, 500, 1000, 2000)),
    "guard_flex_cdeg": (int, 0, 9000),
    "guard_ext_cdeg": (int, -9000, 0),
    "guard_mode": (int, 0, 2),
    "name_suffix": (str, 0, 12),
    "link": (str, ("ble", "serial", "both")),
    "fusion_tau_acc_s": (float, 0.05, 60.0),
    "fusion_acc_rejection_m_s2": (float, 0.0, 100.0),
    "calibrated": (bool, (True, False)),
    "offset_upper": (float, -4.0, 4.0),
    "offset_lower": (float, -4.0, 4.0),
    "guard_pulses": (int, 1, 10),
    "guard_on_ms": (int, 10, 2000),
    "guard_off_ms": (int, 0, 2000),
    "guard_strength": (int, 1, 255),
}


def validate(cfg):
    """Return a full, checked copy of `cfg`, or None if any value is invalid."""
    if not isinstance(cfg, dict):
        return None
    out = {}
    for k in DEFAULTS:
        v = cfg.get(k, DEFAULTS[k])
        rule = _RULES[k]
        t = rule[0]
        if t is float and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        if t is int and isinstance(v, bool):
            return None
        if not isinstance(v, t):
            return None
        if len(rule) == 2:
            if v not in rule[1]:
                return None
        else:
            x = len(v) if t is str else v
            if x < rule[1] or x > rule[2]:
                return None
        out[k] = v
    return out


def _sibling(path, name):
    i = path.rfind("/")
    return path[: i + 1] + name if i >= 0 else name


def _random_u32():
    try:
        b = os.urandom(4)
        return b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)
    except (AttributeError, OSError):  # pragma: no cover - every target has one
        import random

        return random.getrandbits(32)


def random_u32():
    """A fresh random u32 (os.urandom: the ESP32's hardware RNG)."""
    return _random_u32()


class ConfigStore:
    def __init__(self, path="/config.json", boot_path="/boot_count.txt", log=None, counter_path=None, bonds_path=None):
        self.path = path
        self.boot_path = boot_path
        # the last accepted COMMAND counter and the BLE bonds (ble_link.BondStore),
        # each in its own small state file next to the config (docs/security.md)
        self.counter_path = counter_path or _sibling(path, "counter.txt")
        self.bonds_path = bonds_path or _sibling(path, "bonds.json")
        self.log = log
        self.defaults_used = False
        self.problem = None
        self.config_file = StateFile(self.path, legacy=True)
        self.boot_file = StateFile(self.boot_path)
        self.counter_file = StateFile(self.counter_path)
        self.counter_state = "missing"  # of the last load_counter(): ok / missing / corrupt
        self.boot_saved = False  # the last bump_boot_count() reached the flash

    def _say(self, msg):
        self.problem = msg
        if self.log:
            self.log("config: " + msg)

    def load(self):
        """The settings dict (never raises)."""
        self.defaults_used = False
        raw = self.config_file.load()
        if raw is None:
            self.defaults_used = True
            if self.config_file.state == "missing":
                self._say("no config file, using defaults")
            else:
                self._say("config corrupt or invalid, using defaults")
            return dict(DEFAULTS)
        try:
            cfg = json.loads(raw)
        except ValueError:
            cfg = None
        cfg = validate(cfg)
        if cfg is None:
            self.defaults_used = True
            self._say("config corrupt or invalid, using defaults")
            return dict(DEFAULTS)
        if self.config_file.problem:
            self._say(self.config_file.problem)
        return cfg

    def save(self, cfg):
        """Write `cfg` (validated); returns False if the flash write failed."""
        good = validate(cfg)
        if good is None:
            return False
        try:
            self.config_file.save(json.dumps(good))
        except OSError:
            self._say("could not write config")
            return False
        return True

    def bump_boot_count(self):
        """The number of this boot (u16, never 0), persisted before it is
        used. It never repeats the previous boot's: a missing file (a new
        device) starts at 1; a corrupt one, or a write that fails (the next
        boot would read the same old value again), gives a random number
        instead of a guess (`boot_saved` False, logged)."""
        f = self.boot_file
        raw = f.load()
        n = None
        if raw is not None:
            try:
                n = int(raw)
            except ValueError:
                n = None
            if n is not None and not 0 <= n <= 0xFFFF:
                n = None
        if n is None and f.state != "missing":
            self._say("boot counter corrupt; a random boot number")
            n = _random_u32()
        if n is None:
            n = 0
        n = (n + 1) & 0xFFFF or 1
        try:
            f.save(str(n))
            self.boot_saved = True
        except OSError:
            self.boot_saved = False
            self._say("could not write the boot counter; a random boot number")
            n = (_random_u32() & 0xFFFF) or 1
        return n

    def load_counter(self):
        """The persisted COMMAND counter floor (u32), or None if there is none
        (`counter_state`: "missing" or "corrupt"; both fail closed)."""
        raw = self.counter_file.load()
        self.counter_state = self.counter_file.state
        if raw is None:
            if self.counter_state == "corrupt":
                self._say("command counter corrupt")
            return None
        try:
            n = int(raw)
        except ValueError:
            n = -1
        if not 0 <= n <= 0xFFFFFFFF:
            self.counter_state = "corrupt"
            self._say("command counter corrupt")
            return None
        return n

    def save_counter(self, n):
        """Persist the COMMAND counter floor; returns False if the write failed."""
        try:
            self.counter_file.save(str(n & 0xFFFFFFFF))
        except OSError:
            self._say("could not write the command counter")
            return False
        return True
