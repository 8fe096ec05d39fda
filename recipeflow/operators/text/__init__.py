"""Text machinery shared by operators: word splitting as DataTrove and Data-Juicer count words,
text statistics, cleaning patterns, Unicode repair, chunking for LLM prompts."""
