"""Helpers the DAGs share: what command to run, and how to run it here."""
