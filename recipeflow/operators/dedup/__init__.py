"""Deduplication machinery shared by the deduplicators: the Deduplicator base, keep policies,
key (exact/URL) and MinHash-LSH signatures and resolution, text normalisation for signatures,
and history (signatures of documents earlier versions published)."""
