"""Extract & load: one data interval of one source -> bucket -> warehouse raw table."""

__version__ = "0.1.0"
