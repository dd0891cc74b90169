# Hardware abstraction: the ONLY code that imports `machine` or `bluetooth`.
# hal.board.board() builds the real hardware bundle; hal.stdio.StdioPort is
# the USB-serial byte stream (no machine import, also used by the simulator).
