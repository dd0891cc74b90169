# A simulated board: the real firmware (main.build_device + app.App) with fake
# IMUs driven by a motion script, in real time, with the serial link on
# stdin/stdout (hal.stdio.StdioPort). Run it under the MicroPython unix port
# with MICROPYPATH=protocol:firmware:tests/firmware/fakes, e.g. on a pty for
# a host-side "simulated board" serial URL:
#   micropython -c "import sim_board; sim_board.run()"

import asyncio
import sys

from app import App
from config_store import ConfigStore
from fake_board import make_hardware
from fake_clock import RealTimeClock
from fake_i2c import Tilt
from hal.stdio import StdioPort
import main

# stand 3 s, then bend 50 deg forward and back every 4 s
DEFAULT_UPPER = Tilt([(0, 0), (3, 0), (4, 50), (5, 50), (6, 0), (7, 0), (8, 50), (9, 50), (10, 0), (1e9, 0)])


def run(duration_ms=None, upper_motion=DEFAULT_UPPER, config_dir="/tmp", two=True, chip="lsm6dso"):
    hw = make_hardware(chip=chip, two=two, clock=RealTimeClock(), upper_motion=upper_motion, ble=False)
    hw.port = StdioPort()
    store = ConfigStore(config_dir + "/spinemon_sim_config.json", config_dir + "/spinemon_sim_boot.txt")
    dev = main.build_device(hw, store, link="serial", log=lambda m: sys.stderr.write(m + "\n"))
    dev.boot()
    asyncio.run(App(dev).run(duration_ms))
