"""Build-time and test-time tools (docs generation, sample feeds): never imported at run time."""
