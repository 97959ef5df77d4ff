"""Car parks: the ``parkings`` connector type and ``GET /v1/parkings``."""

from connectors.parkings.connector import (
    PARKING_KINDS,
    STATES,
    ParkingsConfig,
    ParkingsConnector,
)

__all__ = ["PARKING_KINDS", "STATES", "ParkingsConfig", "ParkingsConnector"]
