"""PLC simulators: a pure machine model served over OPC UA and Modbus.

The data path inside the package:

    scenario/ (YAML -> validated config)
      -> model/ (pure, deterministic machine behaviour + ground truth)
      -> tags (which model signal is served where)
      -> faces/opcua, faces/modbus (real protocol servers)
    faults/ lets engineers break the faces on purpose.
"""

__version__ = "0.1.0"
