"""What bike stations and car parks share: a place index and mapped documents of places.

``geo`` answers "what is near this point" from an index built once per snapshot;
``documents`` reads the rows of an open-data document (GeoJSON / OGC API Features,
Opendatasoft records, plain JSON) so a YAML mapping can turn them into our models.
"""

from connectors.places.documents import DocumentError, document_rows
from connectors.places.geo import PlaceIndex, distance_m, feature_collection

__all__ = ["DocumentError", "PlaceIndex", "distance_m", "document_rows", "feature_collection"]
