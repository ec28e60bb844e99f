"""Modbus face of the PLC simulator: TCP or RTU server over the tag catalogue's map.

``codec`` (pure) converts values to and from registers for every data type and
byte/word order; ``store`` holds the register images; ``handler`` answers requests
and applies faults; ``server`` is the :class:`ModbusFace` the runtime drives.
"""

from simulators.faces.modbus.server import ModbusFace, ModbusFaceError

__all__ = ["ModbusFace", "ModbusFaceError"]
