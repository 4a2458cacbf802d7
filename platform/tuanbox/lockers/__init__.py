"""Pickup stations, their lockers and compartments, and the lockers' broker credentials."""
