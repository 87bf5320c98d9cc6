"""eakte: the records service of the e-file (E-Akte) system."""

__version__ = "0.1.0"
