"""corral: run fleets of autonomous coding agents safely."""

__version__ = "0.1.0"
