"""Suggestions for a misspelt name: the one helper every stage's messages share."""

from __future__ import annotations


def did_you_mean(word: str, choices) -> str:
    """` (did you mean 'x'?)` for the closest of choices, or "" when none is close."""
    import difflib  # only a build with problems gets here: a clean one does not load difflib

    close = difflib.get_close_matches(str(word), sorted(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
