# Power cuts for the firmware's state files, two ways (MicroPython and CPython):
#
# * FaultFS: stands in for `open` and `os` inside a module (config_store), on
#   the real filesystem underneath. Every filesystem step counts (opening for
#   write, each write, close, rename, remove); at step `cut_at` the power goes:
#   a write puts only the first half of its bytes on the disk, any other step
#   does not happen, PowerCut is raised and every later step raises it too
#   (the CPU stopped). `log` keeps every step, so a test can see what the code
#   did (e.g. that a state slot is only ever replaced by a rename).
# * CutBlockDevice: a RAM block device for os.VfsLfs2 (littlefs, the ESP32's
#   filesystem) that stops after `budget` programs/erases; the program that is
#   cut writes only its first half. Remount a copy of its bytes to "reboot".

import os as _real_os


class PowerCut(Exception):
    pass


class _File:
    def __init__(self, fs, real, path, writing):
        self.fs = fs
        self.real = real
        self.path = path
        self.writing = writing
        self.closed = False

    def write(self, data):
        fs = self.fs
        if fs.step("write", self.path):
            self.real.write(data[: len(data) // 2])  # torn: half of it reached the flash
            self._close_quietly()
            raise PowerCut()
        return self.real.write(data)

    def read(self, *a):
        return self.real.read(*a)

    def _close_quietly(self):
        if not self.closed:
            self.closed = True
            try:
                self.real.close()
            except Exception:
                pass

    def close(self):
        if self.closed:
            return
        if self.writing and self.fs.step("close", self.path):
            self._close_quietly()
            raise PowerCut()
        self._close_quietly()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.fs.dead:
            self._close_quietly()
            return False
        self.close()
        return False


class FaultFS:
    def __init__(self, cut_at=None):
        self.cut_at = cut_at
        self.steps = 0
        self.dead = False
        self.log = []  # (step kind, path)

    def step(self, kind, path):
        """Count one step; True if the power goes now."""
        if self.dead:
            raise PowerCut()
        self.log.append((kind, path))
        self.steps += 1
        if self.cut_at is not None and self.steps > self.cut_at:
            self.dead = True
            return True
        return False

    # ---- what the module under test sees as `open` and `os` -----------------------
    def open(self, path, mode="r"):
        writing = "w" in mode or "a" in mode or "+" in mode
        if writing and self.step("open", path):
            raise PowerCut()
        if self.dead:
            raise PowerCut()
        return _File(self, open(path, mode), path, writing)

    def rename(self, a, b):
        if self.step("rename", b):
            raise PowerCut()
        _real_os.rename(a, b)

    def remove(self, p):
        if self.step("remove", p):
            raise PowerCut()
        _real_os.remove(p)

    def stat(self, p):
        if self.dead:
            raise PowerCut()
        return _real_os.stat(p)

    def urandom(self, n):
        return _real_os.urandom(n)

    def listdir(self, *a):
        return _real_os.listdir(*a)


def install(module, fs):
    """Make `module` (config_store) use `fs` for open() and os.*."""
    module.open = fs.open
    module.os = fs


def uninstall(module):
    module.open = open
    module.os = _real_os


class CutBlockDevice:
    """RAM block device (the extended interface littlefs uses) whose power
    goes after `budget` programs/erases (None: never)."""

    def __init__(self, block_size=256, blocks=64, data=None):
        self.bs = block_size
        self.n = blocks
        self.data = bytearray(data) if data is not None else bytearray(b"\xff" * (block_size * blocks))
        self.budget = None
        self.ops = 0
        self.dead = False

    def _spend(self):
        if self.dead:
            raise OSError(5)
        self.ops += 1
        if self.budget is not None and self.ops > self.budget:
            self.dead = True
            return True
        return False

    def readblocks(self, block, buf, offset=0):
        a = block * self.bs + offset
        buf[:] = self.data[a : a + len(buf)]

    def writeblocks(self, block, buf, offset=None):
        if offset is None:
            offset = 0
        a = block * self.bs + offset
        if self._spend():
            half = len(buf) // 2
            self.data[a : a + half] = buf[:half]
            raise OSError(5)
        self.data[a : a + len(buf)] = buf

    def ioctl(self, op, arg):
        if op == 4:
            return self.n
        if op == 5:
            return self.bs
        if op == 6:
            if self._spend():
                raise OSError(5)
            a = arg * self.bs
            self.data[a : a + self.bs] = b"\xff" * self.bs
            return 0
        return 0

    def image(self):
        return bytes(self.data)


ENOSPC = 28


class _FullFile(_File):
    def write(self, data):
        self.fs.step("write", self.path)
        raise OSError(ENOSPC)  # nothing of it reached the flash


class FullFS(FaultFS):
    """A full flash: files open, every write raises OSError(ENOSPC) and
    writes nothing; reads, renames and removes work (install() it like
    FaultFS). `writes_refused` counts them."""

    def __init__(self):
        FaultFS.__init__(self, None)
        self.writes_refused = 0

    def open(self, path, mode="r"):
        writing = "w" in mode or "a" in mode or "+" in mode
        if not writing:
            return FaultFS.open(self, path, mode)
        self.step("open", path)
        return _FullFile(self, open(path, mode), path, writing)

    def step(self, kind, path):
        if kind == "write":
            self.writes_refused += 1
        return FaultFS.step(self, kind, path)
