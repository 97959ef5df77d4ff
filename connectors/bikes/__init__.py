"""Bike share: the ``gbfs`` and ``bike_stations`` connector types and ``/v1/bikes/stations``.

Both types produce the same bike-station model (:mod:`.model`), so a GBFS city and a city
whose operator publishes only an open-data dataset (V'Lille) are served alike.
"""

from connectors.bikes.gbfs import GbfsConfig, GbfsConnector
from connectors.bikes.mapped import BikeStationsConfig, BikeStationsConnector
from connectors.bikes.model import STATION_KINDS, BikeNetwork

__all__ = [
    "STATION_KINDS",
    "BikeNetwork",
    "BikeStationsConfig",
    "BikeStationsConnector",
    "GbfsConfig",
    "GbfsConnector",
]
