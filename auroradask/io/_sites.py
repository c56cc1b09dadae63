"""Built-in table of THEMIS all-sky imager sites.

Geographic (geodetic) latitude and longitude in degrees east, as listed by the University of
Calgary for the THEMIS ASI array (the same values are distributed with the ``asilib``
package's ``asi_locations.csv``). They let a dataset carry site coordinates without reading a
file; a skymap gives the exact values for a given installation (``read_skymap``'s
``latitude``/``longitude`` attributes), and stream0 frame headers give the values the
imager was configured with (the frames dataset's ``header_latitude``/``header_longitude``).
A site code not in this table is still accepted where the archive holds files for it.
"""

from __future__ import annotations

from typing import NamedTuple


class Site(NamedTuple):
    name: str
    latitude: float
    longitude: float


THEMIS_SITES: dict[str, Site] = {
    "atha": Site("Athabasca", 54.71, -113.28),
    "chbg": Site("Chibougamau", 49.814, -74.419),
    "ekat": Site("Ekati", 64.73, -110.6699),
    "fsim": Site("Fort Simpson", 61.756, -121.23),
    "fsmi": Site("Fort Smith", 60.017, -111.95),
    "fykn": Site("Fort Yukon", 66.56, -145.214),
    "gako": Site("Gakona", 62.407, -145.158),
    "gbay": Site("Goose Bay", 53.316, -60.46),
    "gill": Site("Gillam", 56.376, -94.64),
    "inuv": Site("Inuvik", 68.413, -133.77),
    "kapu": Site("Kapuskasing", 49.392, -82.32),
    "kian": Site("Kiana", 66.971, -160.438),
    "kuuj": Site("Kuujjuaq", 58.1, -68.4),
    "mcgr": Site("McGrath", 62.953, -155.596),
    "nrsq": Site("Narsarsuaq", 61.16, -45.44),
    "pgeo": Site("Prince George", 53.815, -122.828),
    "rank": Site("Rankin Inlet", 62.82, -92.11),
    "snap": Site("Snap Lake", 63.58, -110.87),
    "snkq": Site("Sanikiluaq", 56.536, -79.23),
    "talo": Site("Taloyoak", 69.53, -93.53),
    "tpas": Site("The Pas", 53.994, -100.941),
    "whit": Site("Whitehorse", 61.01, -135.223),
    "yknf": Site("Yellowknife", 62.52, -114.31),
}
