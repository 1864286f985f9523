"""Tuning the desk to its own articles: synthetic training questions (`synth`), written by a
language model from the corpus's sentences, for a learned sentence reader (issue #20)."""
