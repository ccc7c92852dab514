"""Sensitive attributes are never grader inputs: spans of a candidate's answer that mention age, gender,
ethnicity, religion, family status or health are replaced by MASK before any grader (or the language
read) sees the text.

Word lists, on purpose: what is hidden must be explainable. The topics an employer may not ask about
(ivr.guard.SENSITIVE_TOPICS) are extended with the words candidates use to disclose them ("single mother",
"52 years old", "my church"), and a match takes its possessive ("my two kids") and an age number with it,
so the context left behind does not give the attribute away. Masking more than needed costs a few words
of evidence; masking less would let a protected attribute reach the grader.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ivr.guard import SENSITIVE_TOPICS

MASK = "[masked]"
MASK_RE = re.compile(re.escape(MASK))

# How candidates disclose the protected attributes in their own words, beyond the interviewer's topic list.
_DISCLOSURE_WORDS: tuple[str, ...] = (
    # age
    "years old", "year old", "my age", "retired", "retirement", "elderly", "teenager", "senior citizen",
    # gender and orientation
    "woman", "women", "man", "men", "female", "male", "girl", "girls", "lady", "ladies", "gentleman",
    "transgender", "nonbinary", "non-binary", "gay", "lesbian", "bisexual", "pronouns",
    # ethnicity and national origin
    "hispanic", "latino", "latina", "latinx", "black", "white", "asian", "african", "caucasian", "arab",
    "native american", "indigenous", "immigrant", "immigrated", "accent", "heritage", "minority",
    # religion
    "christian", "muslim", "islam", "islamic", "jewish", "judaism", "hindu", "buddhist", "sikh", "catholic",
    "protestant", "mormon", "atheist", "mosque", "synagogue", "temple", "sabbath", "ramadan", "bible",
    "quran", "pray", "prayer", "praying", "faith", "god",
    # family status
    "single mom", "single mother", "single dad", "single father", "single parent", "divorced", "divorce",
    "widow", "widowed", "widower", "mother", "father", "mom", "dad", "parent", "parents", "son", "sons",
    "daughter", "daughters", "baby", "babies", "kid", "boyfriend", "girlfriend", "fiance", "fiancee",
    "childcare", "daycare", "babysitter", "maternity", "paternity", "custody", "grandchildren", "grandkids",
    "grandmother", "grandfather", "grandma", "grandpa",
    # health
    "diagnosed", "diagnosis", "disease", "cancer", "diabetes", "diabetic", "depression", "depressed",
    "anxiety", "ptsd", "adhd", "autism", "autistic", "chemo", "chemotherapy", "therapy", "therapist",
    "medication", "medications", "wheelchair", "chronic", "hospital", "hospitalized", "mental health",
    "blind", "deaf", "hearing aid", "asthma", "epilepsy", "seizure", "seizures", "migraine", "migraines",
    "doctor", "doctors", "pain",
)
_TERMS = sorted(set(SENSITIVE_TOPICS) | set(_DISCLOSURE_WORDS), key=len, reverse=True)
_WORDS = "|".join(re.escape(term).replace(r"\ ", r"[\s-]+") for term in _TERMS)
_NUMBER = (r"(?:\d{1,3}|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve"
           r"|[a-z]+teen|[a-z]+ty(?:[\s-][a-z]+)?)")
_I_AM = r"(?:i(?:'|’)?m|i am)"
# Whole phrases that carry an age or birth year, tried before the single words.
_AGE_PHRASES = (
    r"(?:\b[\w'’]+[\s-]+){0,2}years?[\s-]+old\b",  # "I'm fifty two years old", "a 19-year-old"
    r"\bborn(?:\s+(?:in|at))?(?:\s+(?:19|20)\d\d)?(?:,?\s+(?:in|at))?(?:\s+(?-i:[A-Z][\w-]+))?\b",  # year, place
    rf"\b(?:{_I_AM}|i come|i came|we(?:'|’)?re|we are)\s+(?:originally\s+)?from\s+(?-i:[A-Z][\w-]+)\b",
    rf"\b{_I_AM}\s+\d{{2}}\b(?!\s*(?:minutes?|mins?|hours?|%|percent|dollars?|calls?|years?\s+(?!old)))",
    r"\bin\s+my\s+(?:twenties|thirties|forties|fifties|sixties|seventies|[2-7]0'?s)\b",
)
# "my two kids", "our church": the possessive goes too, with up to two words between.
_POSSESSIVE = r"(?:\b(?:my|our|his|her|their)\s+(?:[\w'’-]+\s+){0,2}?)?"
# "my age, 52", "my son is 4": a number right after the term would give it away.
_NUMBER_AFTER = rf"(?:,?\s+(?:is\s+|was\s+|of\s+)?{_NUMBER}\b)?"
SENSITIVE_SPAN = re.compile(
    "|".join((*_AGE_PHRASES, rf"{_POSSESSIVE}\b(?:{_WORDS})\b{_NUMBER_AFTER}")), re.IGNORECASE)
# Masks separated only by spaces, punctuation or a linking word are one span: "[masked] and [masked]".
_JOIN = re.compile(r"[\s,;:/&-]*(?:\b(?:and|or|of|a|an|with)\b[\s,;:/&-]*)*")


@dataclass(frozen=True)
class Masked:
    text: str  # the original with each sensitive span replaced by MASK; everything else unchanged
    spans: int  # how many spans were masked


def mask_sensitive(text: str) -> Masked:
    spans: list[list[int]] = []
    for match in SENSITIVE_SPAN.finditer(text):
        if match.end() == match.start():
            continue
        if spans and _JOIN.fullmatch(text, spans[-1][1], match.start()):
            spans[-1][1] = match.end()
        else:
            spans.append([match.start(), match.end()])
    pieces, last = [], 0
    for start, end in spans:
        pieces.extend((text[last:start], MASK))
        last = end
    pieces.append(text[last:])
    return Masked("".join(pieces), len(spans))


def without_masks(text: str) -> str:
    """The masked text with the markers removed, for counting features (a marker is not a word)."""
    return " ".join(MASK_RE.sub(" ", text).split())


def unmasked_fragment(masked: str, original: str, min_words: int = 3) -> str | None:
    """The longest part of `masked` free of any MASK, stripped; it is verbatim text of `original` (what
    lies between two masks was never changed). None if no such part has `min_words` words."""
    fragments = [part.strip(" \t\n,;:-") for part in MASK_RE.split(masked)]
    best = max(fragments, key=len, default="")
    if len(best.split()) < min_words or best not in original:
        return None
    return best
