"""Bytes in and out: fsspec storage, readers of input formats, writers of datasets.

``storage`` opens any fsspec URL (local, ``s3://``...) with credentials from the environment or
Prefect blocks; ``readers`` lists input files, cuts them into shards and reads them as Arrow
batches (one module per format behind a small base); ``writers`` write shard outputs and
dataset files. Knows the document data model of ``operators``, nothing else of recipeflow.
"""
