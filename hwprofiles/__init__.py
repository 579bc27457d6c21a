"""hwprofiles: what hardware can do (datasheet catalogue and measured calibration profiles)."""

from hwprofiles.errors import UserError
from hwprofiles.profile import (
    Accelerator,
    CollectiveFit,
    EfficiencyCurve,
    Fabric,
    HardwareProfile,
    Link,
    Node,
    PowerModel,
    Provenance,
)

__all__ = [
    "Accelerator",
    "CollectiveFit",
    "EfficiencyCurve",
    "Fabric",
    "HardwareProfile",
    "Link",
    "Node",
    "PowerModel",
    "Provenance",
    "UserError",
]
