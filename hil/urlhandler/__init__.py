"""pyserial URL handlers of the bench (``serial.protocol_handler_packages``
gets ``hil.urlhandler`` when :mod:`hil` is imported): ``mpsim://``."""
