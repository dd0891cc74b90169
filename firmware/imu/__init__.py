# IMU drivers. One driver interface (imu.base.ImuDriver); one file per chip.
# probe() finds which chip answers at an address.

from spinemon_protocol import IMU_NONE


def probe(i2c, address, log=None):
    """Return a driver for the chip at `address`, or None. Adding a chip:
    write imu/<chip>.py with a class that has detect(i2c, address) and append
    it to the list below."""
    from imu.lsm6dso import Lsm6dso
    from imu.mpu6050 import Mpu6050

    for cls in (Lsm6dso, Mpu6050):
        try:
            kind = cls.detect(i2c, address)
        except OSError:
            kind = IMU_NONE
        if kind != IMU_NONE:
            return cls(i2c, address, kind)
    if log:
        log("imu: nothing at 0x%02x" % address)
    return None
