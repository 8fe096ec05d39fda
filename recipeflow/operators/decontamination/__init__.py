"""Benchmark decontamination: benchmark items read and joined, the normalization shared by items
and documents, the n-gram index (exact hash set or Bloom filter, verified) and the paraphrase
check (nearest items by n-gram cosine, judged by an LLM)."""
