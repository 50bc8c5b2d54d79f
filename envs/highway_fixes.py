"""Work-arounds for highway-env behaviour that would leak between environments in one process."""

from __future__ import annotations

from highway_env.vehicle.behavior import IDMVehicle


class IntersectionIDMVehicle(IDMVehicle):
    """IDMVehicle for intersection-v0, unchanged in behaviour.

    intersection-v0's ``_make_vehicles`` sets ``DISTANCE_WANTED``, ``COMFORT_ACC_MAX`` and ``COMFORT_ACC_MIN`` on
    the class named by ``other_vehicles_type`` (highway-env 1.12.1, intersection_env.py l.262-265). On
    ``IDMVehicle`` itself that changes the traffic of every highway, merge or roundabout env made afterwards in the
    same process; on this subclass it stays inside intersection.
    """
