# InvenSense MPU-6050 / MPU-6500 (GY-521 boards; I2C 0x68, or 0x69 with AD0 high).
#
# FIFO: accel XYZ then gyro XYZ, big-endian, 12 bytes per sample (FIFO_EN =
# 0x78), read in bursts from FIFO_R_W. Sample rate = 1 kHz / (1 + SMPLRT_DIV)
# with the DLPF on, so supported rates are 1000/n Hz (1000, 500, 333, 250, 200,
# ..., 100, ..., 25). When the FIFO overflows the chip overwrites the oldest
# BYTES (1024 is not a multiple of 12), so the sample alignment is lost: the
# driver resets the FIFO and reports the overflow; the sampler counts the lost
# samples from the clock.
#
# Scaling: accel 16384 LSB/g at +-2 g is FS/32768 exactly; gyro 131 LSB/dps at
# +-250 dps vs 131.072 for FS/32768, so gyro counts are rescaled by 16384/16375.

import struct

try:
    from micropython import const
except ImportError:  # CPython (tests)

    def const(x):
        return x


from imu.base import ImuDriver, read_u8, rescale
from spinemon_protocol import IMU_MPU6050, IMU_MPU6500, IMU_NONE

SMPLRT_DIV = const(0x19)
CONFIG = const(0x1A)
GYRO_CONFIG = const(0x1B)
ACCEL_CONFIG = const(0x1C)
FIFO_EN = const(0x23)
INT_ENABLE = const(0x38)
INT_STATUS = const(0x3A)
USER_CTRL = const(0x6A)
PWR_MGMT_1 = const(0x6B)
FIFO_COUNTH = const(0x72)
FIFO_R_W = const(0x74)
WHO_AM_I = const(0x75)

PWR_PLL_X = const(0x01)
FIFO_EN_ACCEL_GYRO = const(0x78)
USER_FIFO_EN = const(0x40)
USER_FIFO_RESET = const(0x04)
INT_FIFO_OFLOW = const(0x10)
SAMPLE_BYTES = const(12)
CHUNK_SAMPLES = const(20)

_FS = {2: 0, 4: 1, 8: 2, 16: 3}
_FS_G = {250: 0, 500: 1, 1000: 2, 2000: 3}
# DLPF_CFG by the highest bandwidth below rate/2: (min rate, cfg)
_DLPF = ((368, 1), (188, 2), (88, 3), (42, 4), (20, 5), (0, 6))


class Mpu6050(ImuDriver):
    kind = IMU_MPU6050
    name = "MPU-6050"

    @staticmethod
    def detect(i2c, address):
        who = read_u8(i2c, address, WHO_AM_I)
        if who == 0x68:
            return IMU_MPU6050
        if who == 0x70:
            return IMU_MPU6500
        return IMU_NONE

    def __init__(self, i2c, address, kind=None, **kw):
        ImuDriver.__init__(self, i2c, address, kind, **kw)
        self._buf = bytearray(SAMPLE_BYTES * CHUNK_SAMPLES)
        self._mv = memoryview(self._buf)
        self._cnt = bytearray(2)
        self._div = -1

    def supported_rates(self):
        return [1000 // (d + 1) for d in range(40)]

    def _configure(self, rate_hz, accel_fs_g, gyro_fs_dps):
        if accel_fs_g not in _FS or gyro_fs_dps not in _FS_G:
            raise ValueError("unsupported full-scale range")
        div = (1000 + rate_hz // 2) // rate_hz - 1 if rate_hz > 0 else 39
        if div < 0:
            div = 0
        if div > 255:
            div = 255
        rate = 1000 // (div + 1)
        dlpf = 6
        for lo, cfg in _DLPF:
            if rate >= lo:
                dlpf = cfg
                break
        self._write(PWR_MGMT_1, PWR_PLL_X)
        self._write(CONFIG, dlpf)
        self._write(SMPLRT_DIV, div)
        self._write(GYRO_CONFIG, _FS_G[gyro_fs_dps] << 3)
        self._write(ACCEL_CONFIG, _FS[accel_fs_g] << 3)
        self._write(FIFO_EN, FIFO_EN_ACCEL_GYRO)
        self._write(INT_ENABLE, INT_FIFO_OFLOW)
        self._reset_fifo()
        self._div = div
        return 1000 * (div + 1)

    def _check(self):
        if self._read(WHO_AM_I) not in (0x68, 0x70):
            return False
        return (
            self._read(SMPLRT_DIV) == self._div
            and self._read(PWR_MGMT_1) == PWR_PLL_X
            and self._read(FIFO_EN) == FIFO_EN_ACCEL_GYRO
            and bool(self._read(USER_CTRL) & USER_FIFO_EN)
        )

    def _hold_fifo(self):
        # no sensor feeds the FIFO any more; what is in it stays readable
        self._write(FIFO_EN, 0)

    def _reset_fifo(self):
        self._write(USER_CTRL, USER_FIFO_RESET)
        self._read(INT_STATUS)  # clears the overflow flag
        self._write(USER_CTRL, USER_FIFO_EN)

    def _read_fifo(self, out):
        if self._read(INT_STATUS) & INT_FIFO_OFLOW:
            self._reset_fifo()
            return 0, True
        self.i2c.readfrom_mem_into(self.address, FIFO_COUNTH, self._cnt)
        samples = ((self._cnt[0] << 8) | self._cnt[1]) // SAMPLE_BYTES
        n = 0
        buf = self._buf
        while samples > 0:
            k = samples if samples < CHUNK_SAMPLES else CHUNK_SAMPLES
            self.i2c.readfrom_mem_into(self.address, FIFO_R_W, self._mv[: k * SAMPLE_BYTES])
            for i in range(k):
                ax, ay, az, gx, gy, gz = struct.unpack_from(">hhhhhh", buf, i * SAMPLE_BYTES)
                a = self._map(ax, ay, az)
                g = self._map(rescale(gx, 16384, 16375), rescale(gy, 16384, 16375), rescale(gz, 16384, 16375))
                out.append((a[0], a[1], a[2], g[0], g[1], g[2]))
                n += 1
            samples -= k
        return n, False
