"""Issue 12: the firmware's state files (command counter, bonds, config, boot
counter) survive a power cut at any moment, under MicroPython:

* a cut at every filesystem step of a save (fakes/fault_fs.FaultFS, writes
  torn in half), then a reboot on the same files: the previous value or the
  new one, both slots valid, no leftover .tmp - never lost, never invalid;
* the same on littlefs (os.VfsLfs2, the ESP32's filesystem) on a RAM block
  device cut after every program/erase, remounted from the bytes it held;
* os.rename replaces its target (unix VFS, littlefs, FAT), which write_atomic
  relies on; leftover .tmp files are rolled forward or removed; a damaged
  copy is detected by its CRC-32 and the other one used; files written by the
  previous firmware still load.
"""

import pytest

from fw_helpers import PATH, PRELUDE, mpy, results

pytestmark = pytest.mark.micropython

KINDS = r"""
import os, json
import config_store
from config_store import ConfigStore, StateFile, DEFAULTS
from ble_link import BondStore
import fault_fs
from fault_fs import FaultFS, PowerCut

def clean(d):
    try:
        os.mkdir(d)
    except OSError:
        pass
    for f in os.listdir(d):
        os.remove(d + "/" + f)

def store(d):
    return ConfigStore(d + "/config.json", d + "/boot.txt")

def cfg(rate):
    c = dict(DEFAULTS)
    c["rate_hz"] = rate
    return c

# kind -> (save(d, v), read(d) -> (value, StateFile), values v1 v2 v3)
def save_counter(d, v):
    assert store(d).save_counter(v)
def read_counter(d):
    s = store(d)
    return s.load_counter(), s.counter_file

def save_config(d, v):
    s = store(d)
    s.load()
    assert s.save(cfg(v))
def read_config(d):
    s = store(d)
    c = s.load()
    return (None if s.defaults_used else c["rate_hz"]), s.config_file

def save_bonds(d, v):
    b = BondStore(d + "/bonds.json")
    b.set(2, b"\x00" + bytes([v]) * 6, bytes([v]) * 16)
    b.dirty = True
    assert b.save()
def read_bonds(d):
    b = BondStore(d + "/bonds.json")
    return (None if b.state != "ok" else len(b.items)), b.file

def save_boot(d, v):
    s = store(d)
    n = s.bump_boot_count()
    assert n == v and s.boot_saved, (n, v)
def read_boot(d):
    s = store(d)
    f = s.boot_file
    raw = f.load()
    return (None if raw is None else int(raw)), f

KINDS = {
    "counter": (save_counter, read_counter, (1000, 1064, 1128)),
    "config": (save_config, read_config, (50, 200, 400)),
    "bonds": (save_bonds, read_bonds, (1, 2, 3)),   # the value read back: how many keys
    "boot": (save_boot, read_boot, (1, 2, 3)),
}

def leftovers(d):
    return [f for f in os.listdir(d) if f.endswith(".tmp")]
"""

POWER_CUTS = r"""
for kind in KIND_LIST:
    save, read, (v1, v2, v3) = KINDS[kind]
    d = CFG_DIR + "/" + kind
    clean(d)
    save(d, v1)
    save(d, v2)
    # the steps of one save, and what they are
    probe = FaultFS()
    fault_fs.install(config_store, probe)
    save(d, v3)
    fault_fs.uninstall(config_store)
    n = probe.steps
    writes = [p for k, p in probe.log if k == "open"]
    assert writes and all(p.endswith(".tmp") for p in writes), probe.log   # a slot is never written in place
    assert [k for k, p in probe.log if k == "remove"] == [], probe.log      # nothing is removed first
    assert any(k == "rename" for k, p in probe.log), probe.log
    new_seen = old_seen = 0
    for cut in range(n + 1):
        clean(d)
        save(d, v1)
        save(d, v2)
        fs = FaultFS(cut)
        fault_fs.install(config_store, fs)
        done = True
        try:
            save(d, v3)
        except PowerCut:
            done = False
        fault_fs.uninstall(config_store)
        assert done == (cut >= n), (kind, cut, n)
        # reboot on the same files
        got, f = read(d)
        want = (v2, v3) if kind != "bonds" else (2, 3)
        assert got in want, (kind, cut, got)
        if done:
            assert got == want[1]
        assert f.state == "ok" and f.valid_slots == 2, (kind, cut, f.state, f.valid_slots)
        assert leftovers(d) == [], (kind, cut, os.listdir(d))
        if got == want[1]:
            new_seen += 1
        else:
            old_seen += 1
        # and a cut while that reboot recovers changes nothing either
    print("RESULT %s_cuts=%d" % (kind, n + 1))
    print("RESULT %s_old_new=%d/%d" % (kind, old_seen, new_seen))
    assert old_seen >= 1 and new_seen >= 2
"""

DOUBLE_CUTS = r"""
# a cut after the new record is complete (before its rename) leaves a .tmp;
# the next boot rolls it forward - cut that boot at every step too
for kind in ("counter", "bonds"):
    save, read, (v1, v2, v3) = KINDS[kind]
    d = CFG_DIR + "/dbl-" + kind
    clean(d)
    save(d, v1); save(d, v2)
    probe = FaultFS()
    fault_fs.install(config_store, probe)
    save(d, v3)
    fault_fs.uninstall(config_store)
    at_rename = [i for i in range(len(probe.log)) if probe.log[i][0] == "rename"][0]
    tried = 0
    for cut2 in range(8):
        clean(d)
        save(d, v1); save(d, v2)
        fault_fs.install(config_store, FaultFS(at_rename))
        try:
            save(d, v3)
            raise AssertionError("no cut")
        except PowerCut:
            pass
        fault_fs.uninstall(config_store)
        assert leftovers(d), "the complete record waits in a .tmp"
        fs = FaultFS(cut2)
        fault_fs.install(config_store, fs)
        try:
            read(d)
        except PowerCut:
            tried += 1
        fault_fs.uninstall(config_store)
        got, f = read(d)
        want = (v2, v3) if kind != "bonds" else (2, 3)
        assert got in want and f.state == "ok" and f.valid_slots == 2 and leftovers(d) == [], (kind, cut2, got, f.state)
    assert tried >= 1
print("RESULT double_cuts=ok")
"""

LITTLEFS = r"""
# littlefs, as on the ESP32: cut the block device after every program/erase
from fault_fs import CutBlockDevice
MP = "/lfs"
def mount(image=None):
    bd = CutBlockDevice(512, 48, image)
    if image is None:
        os.VfsLfs2.mkfs(bd)
    os.mount(os.VfsLfs2(bd), MP)
    return bd
def unmount():
    try:
        os.umount(MP)
    except OSError:
        pass

bd = mount()
# os.rename replaces an existing file on littlefs (and the store relies on it)
with open(MP + "/a", "w") as f:
    f.write("new")
with open(MP + "/b", "w") as f:
    f.write("old")
os.rename(MP + "/a", MP + "/b")
assert os.listdir(MP) == ["b"] and open(MP + "/b").read() == "new"
os.remove(MP + "/b")

totals = {}
for kind in ("counter", "bonds", "config"):
    save, read, (v1, v2, v3) = KINDS[kind]
    want = (v2, v3) if kind != "bonds" else (2, 3)
    d = MP + "/" + kind
    clean(d)
    save(d, v1); save(d, v2)
    unmount()
    base = bd.image()
    bd = mount(base)
    ops0 = bd.ops
    save(d, v3)
    n = bd.ops - ops0
    unmount()
    seen = {}
    for budget in range(n + 1):
        bd = mount(base)
        bd.budget = bd.ops + budget
        try:
            save(d, v3)
        except (OSError, AssertionError):
            pass   # the power went: nothing after this runs
        unmount()
        bd = mount(bd.image())   # reboot on what the flash held
        got, f = read(d)
        assert got in want, (kind, budget, got)
        assert f.state == "ok" and f.valid_slots == 2, (kind, budget, f.state, f.valid_slots)
        assert leftovers(d) == [], (kind, budget, os.listdir(d))
        seen[got] = seen.get(got, 0) + 1
        unmount()
    assert len(seen) == 2, (kind, seen)
    totals[kind] = n + 1
    bd = mount(base)
print("RESULT littlefs_cuts=%s" % ",".join("%s:%d" % (k, totals[k]) for k in sorted(totals)))
unmount()
"""


@pytest.mark.parametrize("kind", ["counter", "config", "bonds", "boot"])
def test_a_power_cut_at_every_step_of_a_save_leaves_the_old_or_the_new_state(tmp_path, kind):
    out = results(mpy("CFG_DIR = %r\nKIND_LIST = (%r,)\n" % (str(tmp_path), kind) + KINDS + POWER_CUTS))
    assert int(out[kind + "_cuts"]) >= 5


def test_a_cut_while_the_next_boot_rolls_a_temporary_file_forward_loses_nothing(tmp_path):
    out = results(mpy("CFG_DIR = %r\n" % str(tmp_path) + KINDS + DOUBLE_CUTS))
    assert out["double_cuts"] == "ok"


def test_littlefs_power_cut_after_every_flash_program(tmp_path):
    out = results(mpy("CFG_DIR = %r\n" % str(tmp_path) + KINDS + LITTLEFS))
    cuts = dict(x.split(":") for x in out["littlefs_cuts"].split(","))
    assert set(cuts) == {"counter", "bonds", "config"} and all(int(v) >= 3 for v in cuts.values())


def test_rename_replaces_the_target_on_the_unix_and_fat_filesystems(tmp_path):
    mpy(
        "D = %r\n" % str(tmp_path)
        + r"""
import os
from fault_fs import CutBlockDevice
def put(p, t):
    with open(p, "w") as f:
        f.write(t)
put(D + "/a", "new"); put(D + "/b", "old")
os.rename(D + "/a", D + "/b")
assert open(D + "/b").read() == "new" and "a" not in os.listdir(D)
bd = CutBlockDevice(512, 128)
os.VfsFat.mkfs(bd)
os.mount(os.VfsFat(bd), "/fat")
put("/fat/a", "new"); put("/fat/b", "old")
os.rename("/fat/a", "/fat/b")
assert open("/fat/b").read() == "new" and os.listdir("/fat") == ["b"]
os.umount("/fat")
print("ok")
"""
    )


def test_leftover_temporary_files_crc_damage_and_old_format_files(tmp_path):
    mpy(
        "CFG_DIR = %r\n" % str(tmp_path)
        + KINDS
        + r"""
from config_store import encode_record, decode_record
d = CFG_DIR + "/t"
# a record is checked whole: any cut short or changed byte is refused
rec = encode_record(7, "12345")
assert decode_record(rec) == (7, "12345")
for i in range(len(rec)):
    assert decode_record(rec[:i]) is None, i
    for b in ("0", "9", " ", "x"):
        if rec[i] != b:
            assert decode_record(rec[:i] + b + rec[i + 1:]) is None, (i, b)

def put(p, t):
    with open(p, "w") as f:
        f.write(t)

# 1. a complete .tmp newer than both slots: rolled forward (the cut came before its rename)
clean(d)
save_counter(d, 500); save_counter(d, 600)
sf = StateFile(d + "/counter.txt"); sf.load()
put(sf.slots[1 - sf.newest] + ".tmp", encode_record(sf.gen + 1, "700"))
got, f = read_counter(d)
assert got == 700 and f.recovered == 1 and leftovers(d) == []
# 2. a torn .tmp, or one older than the slots: removed, the slots stand
put(d + "/counter.txt.tmp", encode_record(99, "800")[:-7])
put(d + "/counter.txt.b.tmp", encode_record(1, "100"))
got, f = read_counter(d)
assert got == 700 and f.discarded == 2 and f.recovered == 0 and leftovers(d) == []

# 3. a damaged newest copy: the CRC catches it, the previous state is used
clean(d)
save_counter(d, 500); save_counter(d, 600)
sf = StateFile(d + "/counter.txt"); sf.load()
p = sf.slots[sf.newest]
t = open(p).read()
put(p, t[:-3] + ("1" if t[-3] != "1" else "2") + t[-2:])
got, f = read_counter(d)
assert got == 500 and f.bad_slots == 1 and f.problem, (got, f.bad_slots)
# the next save goes into the damaged slot, and both are good again
save_counter(d, 650)
got, f = read_counter(d)
assert got == 650 and f.valid_slots == 2

# 4. files written by the previous firmware (no header, one file) still load
clean(d)
put(d + "/config.json", json.dumps(cfg(250)))
put(d + "/bonds.json", json.dumps([[2, "00112233445566", "ab" * 16]]))
s = store(d)
assert s.load()["rate_hz"] == 250 and not s.defaults_used
b = BondStore(d + "/bonds.json")
assert b.state == "ok" and b.bonds() == 1 and b.items[0][2] == b"\xab" * 16
assert s.save(cfg(300))
assert store(d).load()["rate_hz"] == 300
# an old counter file is NOT trusted (no CRC): it fails closed (the host resyncs)
put(d + "/counter.txt", "12345")
s2 = store(d)
assert s2.load_counter() is None and s2.counter_state == "corrupt"
print("ok")
"""
    )


def test_store_paths_defaults_flag_and_bond_store_details(tmp_path):
    mpy(
        "CFG_DIR = %r\n" % str(tmp_path)
        + KINDS
        + r"""
from config_store import encode_record
# the board's own paths: the state files sit next to /config.json, at the root
s = ConfigStore()
assert (s.path, s.counter_path, s.bonds_path) == ("/config.json", "/counter.txt", "/bonds.json"), (s.counter_path, s.bonds_path)
assert s.counter_file.slots == ("/counter.txt", "/counter.txt.b")

d = CFG_DIR + "/f"
def put(p, t):
    with open(p, "w") as f:
        f.write(t)
# a missing config and a config whose every copy fails its CRC: defaults, and the flag says so
clean(d)
s = store(d)
assert s.load() == DEFAULTS and s.defaults_used
put(d + "/config.json", encode_record(3, json.dumps(cfg(400)))[:-6] + "zzzzz\n")
s = store(d)
assert s.load() == DEFAULTS and s.defaults_used and s.config_file.state == "corrupt"
# a valid record whose payload is not a bond list: corrupt, never a crash
clean(d)
put(d + "/bonds.json", encode_record(2, "not json"))
b = BondStore(d + "/bonds.json")
assert b.state == "corrupt" and b.items == [] and "corrupt" in b.problem
put(d + "/bonds.json", encode_record(2, json.dumps([[2, "zz", "00"]])))
b = BondStore(d + "/bonds.json")
assert b.state == "corrupt" and b.items == []
# setting a key again replaces its value (one entry per key); None deletes it
clean(d)
b = BondStore(d + "/bonds.json")
assert b.state == "missing" and b.problem is None
b.set(2, b"\x00k", b"one"); b.set(1, b"\x00k", b"ours"); b.set(2, b"\x00k", b"two")
assert b.items == [[1, b"\x00k", b"ours"], [2, b"\x00k", b"two"]] and b.bonds() == 1
assert b.get(2, 0, b"\x00k") == b"two" and b.get(2, 0, None) == b"two" and b.get(2, 1, None) is None
b.set(2, b"\x00k", None)
assert b.items == [[1, b"\x00k", b"ours"]] and b.bonds() == 0
assert b.save() and BondStore(d + "/bonds.json").items == [[1, b"\x00k", b"ours"]]
# one damaged copy is reported
b.set(2, b"\x00j", b"x"); assert b.save()
sf = StateFile(d + "/bonds.json"); sf.load()
put(sf.slots[sf.newest], "SM2 00000000 1 []\n")
b = BondStore(d + "/bonds.json")
assert b.state == "ok" and b.items == [[1, b"\x00k", b"ours"]] and "corrupt" in b.problem
print("ok")
"""
    )
