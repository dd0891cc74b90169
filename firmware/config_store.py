# Device settings persisted as a small JSON file on flash, and a boot counter
# in its own file (so a corrupt config never resets it). A missing, unreadable
# or invalid config falls back to DEFAULTS and sets `defaults_used`, which the
# device reports in STATUS (ST_CONFIG_DEFAULTS). Missing keys (an older file)
# are filled from DEFAULTS without the flag. Writes go to a temporary file
# first and are renamed over the old one.

import json

try:
    import os
except ImportError:  # pragma: no cover
    import uos as os

def write_atomic(path, text):
    """Write `text` to `path` through a temporary file renamed over it, so a
    power cut leaves the old file or the new one. Raises OSError."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    try:
        os.remove(path)
    except OSError:
        pass
    os.rename(tmp, path)


DEFAULTS = {
    "rate_hz": 100,
    "accel_fs_g": 4,
    "gyro_fs_dps": 2000,
    "guard_flex_cdeg": 4500,
    "guard_ext_cdeg": -2000,
    "guard_mode": 1,  # GUARD_WHEN_LINK_DOWN
    "name_suffix": "",  # "" = last 4 hex digits of the MAC
    "link": "ble",  # "ble", "serial" or "both"
    "tau_acc_s": 1.0,
    "acc_rejection_m_s2": 2.0,
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
    "tau_acc_s": (float, 0.05, 60.0),
    "acc_rejection_m_s2": (float, 0.0, 100.0),
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


class ConfigStore:
    def __init__(self, path="/config.json", boot_path="/boot_count.txt", log=None, counter_path=None, bonds_path=None):
        self.path = path
        self.boot_path = boot_path
        # the last accepted COMMAND counter and the BLE bonds (ble_link.BondStore),
        # each in its own small file next to the config (docs/security.md)
        self.counter_path = counter_path or _sibling(path, "counter.txt")
        self.bonds_path = bonds_path or _sibling(path, "bonds.json")
        self.log = log
        self.defaults_used = False
        self.problem = None

    def _say(self, msg):
        self.problem = msg
        if self.log:
            self.log("config: " + msg)

    def load(self):
        """The settings dict (never raises)."""
        self.defaults_used = False
        try:
            with open(self.path) as f:
                raw = f.read()
        except OSError:
            self.defaults_used = True
            self._say("no config file, using defaults")
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
        return cfg

    def save(self, cfg):
        """Write `cfg` (validated); returns False if the flash write failed."""
        good = validate(cfg)
        if good is None:
            return False
        try:
            write_atomic(self.path, json.dumps(good))
        except OSError:
            self._say("could not write config")
            return False
        return True

    def bump_boot_count(self):
        """Increment and persist the boot counter; returns the new value."""
        n = 0
        try:
            with open(self.boot_path) as f:
                n = int(f.read().strip())
        except (OSError, ValueError):
            n = 0
        n = (n + 1) & 0xFFFF
        try:
            with open(self.boot_path, "w") as f:
                f.write(str(n))
        except OSError:
            pass
        return n

    def load_counter(self):
        """The persisted COMMAND counter floor (u32), or None if there is none."""
        try:
            with open(self.counter_path) as f:
                n = int(f.read().strip())
        except (OSError, ValueError):
            return None
        return n & 0xFFFFFFFF

    def save_counter(self, n):
        """Persist the COMMAND counter floor; returns False if the write failed."""
        try:
            write_atomic(self.counter_path, str(n & 0xFFFFFFFF))
        except OSError:
            self._say("could not write the command counter")
            return False
        return True
