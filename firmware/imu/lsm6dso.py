# ST LSM6DSO / LSM6DSOX 6-axis IMU (I2C address 0x6A or 0x6B).
#
# FIFO: continuous mode, accelerometer and gyroscope batched at the ODR; each
# FIFO word is 7 bytes (tag, X, Y, Z little-endian). The FIFO is read in one
# burst from FIFO_DATA_OUT_TAG: with IF_INC set the register address rolls
# back from 0x7E to 0x78 (ST AN5192, "FIFO reading"). Words are paired by tag
# (gyro, accel) into samples; an unpaired word after an overrun is dropped.
#
# Scaling: accel sensitivity 0.061 mg/LSB at +-2 g is FS/32768 already; gyro
# sensitivity is 8.75 mdps/LSB at +-250 dps (4.375 @125 ... 70 @2000), i.e.
# 1.14688 x FS/32768, so gyro counts are rescaled by 3584/3125 and clamped
# (the chip measures up to ~1.147 x FS; the protocol caps at FS).

import struct

try:
    from micropython import const
except ImportError:  # CPython (tests)

    def const(x):
        return x


from imu.base import ImuDriver, nearest, read_u8, rescale
from spinemon_protocol import IMU_LSM6DSO, IMU_NONE

WHO_AM_I = const(0x0F)
WHO_AM_I_VALUE = const(0x6C)  # both LSM6DSO and LSM6DSOX
FIFO_CTRL3 = const(0x09)
FIFO_CTRL4 = const(0x0A)
CTRL1_XL = const(0x10)
CTRL2_G = const(0x11)
CTRL3_C = const(0x12)
FIFO_STATUS1 = const(0x3A)
FIFO_DATA_OUT_TAG = const(0x78)

CTRL3_BDU_IF_INC = const(0x44)
FIFO_MODE_BYPASS = const(0)
FIFO_MODE_CONTINUOUS = const(6)
STATUS2_OVR_LATCHED = const(0x08)
STATUS2_OVR = const(0x40)
TAG_GYRO = const(0x01)
TAG_ACCEL = const(0x02)
WORD = const(7)
CHUNK_WORDS = const(32)

# ODR code -> (nominal Hz, sample period in us)
_ODRS = ((1, 12.5, 80000), (2, 26, 38462), (3, 52, 19231), (4, 104, 9615), (5, 208, 4808), (6, 416, 2404), (7, 833, 1200), (8, 1666, 600))
_FS_XL = {2: 0, 16: 1, 4: 2, 8: 3}
_FS_G = {250: 0x00, 500: 0x04, 1000: 0x08, 2000: 0x0C, 125: 0x02}


class Lsm6dso(ImuDriver):
    kind = IMU_LSM6DSO
    name = "LSM6DSO"

    @staticmethod
    def detect(i2c, address):
        return IMU_LSM6DSO if read_u8(i2c, address, WHO_AM_I) == WHO_AM_I_VALUE else IMU_NONE

    def __init__(self, i2c, address, kind=None, **kw):
        ImuDriver.__init__(self, i2c, address, kind, **kw)
        self._buf = bytearray(WORD * CHUNK_WORDS)
        self._mv = memoryview(self._buf)
        self._st = bytearray(2)
        self._gyro = None
        self._accel = None
        self._ctrl1 = -1

    def supported_rates(self):
        return [o[1] for o in _ODRS]

    def _configure(self, rate_hz, accel_fs_g, gyro_fs_dps):
        if accel_fs_g not in _FS_XL or gyro_fs_dps not in _FS_G:
            raise ValueError("unsupported full-scale range")
        odr = _ODRS[0]
        best = nearest(rate_hz, [o[1] for o in _ODRS])
        for o in _ODRS:
            if o[1] == best:
                odr = o
        self._write(CTRL3_C, CTRL3_BDU_IF_INC)
        self._write(FIFO_CTRL4, FIFO_MODE_BYPASS)  # empties the FIFO
        self._write(CTRL1_XL, (odr[0] << 4) | (_FS_XL[accel_fs_g] << 2))
        self._write(CTRL2_G, (odr[0] << 4) | _FS_G[gyro_fs_dps])
        self._write(FIFO_CTRL3, (odr[0] << 4) | odr[0])
        self._write(FIFO_CTRL4, FIFO_MODE_CONTINUOUS)
        self._gyro = None
        self._accel = None
        self._ctrl1 = (odr[0] << 4) | (_FS_XL[accel_fs_g] << 2)
        return odr[2]

    def _check(self):
        if self._read(WHO_AM_I) != WHO_AM_I_VALUE:
            return False
        return self._read(CTRL1_XL) == self._ctrl1 and (self._read(FIFO_CTRL4) & 0x07) == FIFO_MODE_CONTINUOUS

    def _hold_fifo(self):
        # batch data rates "not batched": nothing new enters the FIFO, the
        # words in it stay readable (the FIFO mode is unchanged)
        self._write(FIFO_CTRL3, 0)

    def _read_fifo(self, out):
        st = self._st
        self.i2c.readfrom_mem_into(self.address, FIFO_STATUS1, st)
        words = st[0] | ((st[1] & 0x03) << 8)
        overflowed = bool(st[1] & (STATUS2_OVR_LATCHED | STATUS2_OVR))
        n = 0
        buf = self._buf
        while words > 0:
            k = words if words < CHUNK_WORDS else CHUNK_WORDS
            self.i2c.readfrom_mem_into(self.address, FIFO_DATA_OUT_TAG, self._mv[: k * WORD])
            for i in range(k):
                off = i * WORD
                tag = buf[off] >> 3
                x, y, z = struct.unpack_from("<hhh", buf, off + 1)
                if tag == TAG_GYRO:
                    self._gyro = (x, y, z)
                elif tag == TAG_ACCEL:
                    self._accel = (x, y, z)
                else:
                    continue
                if self._gyro is not None and self._accel is not None:
                    a = self._map(self._accel[0], self._accel[1], self._accel[2])
                    g = self._gyro
                    g = self._map(rescale(g[0], 3584, 3125), rescale(g[1], 3584, 3125), rescale(g[2], 3584, 3125))
                    out.append((a[0], a[1], a[2], g[0], g[1], g[2]))
                    self._gyro = None
                    self._accel = None
                    n += 1
            words -= k
        return n, overflowed
