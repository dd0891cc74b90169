# The one IMU driver interface. A chip driver (imu/lsm6dso.py, imu/mpu6050.py)
# subclasses ImuDriver and implements detect(), _configure(), _read_fifo(),
# _hold_fifo().
#
# Output convention (docs/hardware.md, "IMU scaling"): every sample is a tuple
# (ax, ay, az, gx, gy, gz) of int16 in the PROTOCOL scale, physical =
# raw * FS / 32768 (g for accel, dps for gyro), on the board's printed axes.
# Chips whose sensitivity differs from FS/32768 are rescaled (integer math,
# identical under MicroPython and CPython) and clamped to int16.

from spinemon_protocol import IMU_NONE

IDENTITY_AXES = ((0, 1), (1, 1), (2, 1))  # (chip axis index, sign) per board axis


def read_u8(i2c, address, reg):
    """One register byte (for chip detection, before a driver exists)."""
    b = bytearray(1)
    i2c.readfrom_mem_into(address, reg, b)
    return b[0]


def clamp16(v):
    if v > 32767:
        return 32767
    if v < -32768:
        return -32768
    return v


def rescale(raw, num, den):
    """round(raw * num / den), half up, integers only; clamped to int16."""
    return clamp16((2 * raw * num + den) // (2 * den))


def nearest(value, choices):
    """The element of `choices` closest to `value` (first one on a tie)."""
    best = choices[0]
    for c in choices:
        if abs(c - value) < abs(best - value):
            best = c
    return best


class ImuDriver:
    """One IMU on I2C with a hardware FIFO.

    configure(rate_hz, accel_fs_g, gyro_fs_dps) -> period_us: sets ranges and
    the nearest supported output data rate, clears and starts the FIFO.
    read(out) -> (n, overflowed): appends every sample waiting in the FIFO to
    the list `out` (oldest first) and says whether the FIFO overflowed since
    the last read (samples were lost; the sampler counts them from the clock).
    hold_fifo(): stop putting new samples in the FIFO and keep the ones in
    it (read() still returns them); configure() starts it again.
    check() -> True if the chip still answers with its identity and the
    settings configure() wrote (False after a brown-out reset it to its
    power-on registers, or when the bus returns all 0x00 / 0xFF). Every
    method raises OSError when the I2C transaction fails.
    """

    kind = IMU_NONE
    name = "none"

    def __init__(self, i2c, address, kind=None, axes=IDENTITY_AXES):
        self.i2c = i2c
        self.address = address
        if kind is not None:
            self.kind = kind
        self.axes = axes
        self.period_us = 0
        self.accel_fs_g = 0
        self.gyro_fs_dps = 0
        self._b1 = bytearray(1)

    # ---- register helpers ------------------------------------------------------
    def _write(self, reg, value):
        self._b1[0] = value & 0xFF
        self.i2c.writeto_mem(self.address, reg, self._b1)

    def _read(self, reg):
        self.i2c.readfrom_mem_into(self.address, reg, self._b1)
        return self._b1[0]

    def _map(self, x, y, z):
        v = (x, y, z)
        a = self.axes
        return (
            clamp16(v[a[0][0]] * a[0][1]),
            clamp16(v[a[1][0]] * a[1][1]),
            clamp16(v[a[2][0]] * a[2][1]),
        )

    # ---- interface -------------------------------------------------------------
    def configure(self, rate_hz, accel_fs_g, gyro_fs_dps):
        self.period_us = self._configure(rate_hz, accel_fs_g, gyro_fs_dps)
        self.accel_fs_g = accel_fs_g
        self.gyro_fs_dps = gyro_fs_dps
        return self.period_us

    def read(self, out):
        return self._read_fifo(out)

    def hold_fifo(self):
        self._hold_fifo()

    def check(self):
        return self._check()

    def read_identity(self):
        """True if the chip at our address answers with our identity."""
        return self.detect(self.i2c, self.address) != IMU_NONE

    def supported_rates(self):
        raise NotImplementedError

    def _check(self):
        raise NotImplementedError

    def _configure(self, rate_hz, accel_fs_g, gyro_fs_dps):
        raise NotImplementedError

    def _read_fifo(self, out):
        raise NotImplementedError

    def _hold_fifo(self):
        raise NotImplementedError
