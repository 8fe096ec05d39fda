"""Committed datasets: what a run leaves behind and how users look at it.

A dataset root holds immutable versions, each a folder of data files with a manifest written
last. This package lists and reads versions (``ROOT``, ``ROOT@VERSION``), follows lineage
between datasets, compares two versions (diff), traces one document through a recipe, and
administers the stage cache (list, garbage-collect). It reads storage through ``io`` only.
"""
