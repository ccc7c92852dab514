"""The gate between the LLM and the candidate's ear. The LLM only phrases a follow-up question; this
decides, with plain rules, whether that text may be spoken: one short question, addressed to the
candidate, in the interviewer's voice, on no topic an employer may not ask about."""
from __future__ import annotations

import re
import unicodedata

# Topics an employer must not ask about (nor score on); includes the usual spellings of each.
SENSITIVE_TOPICS: tuple[str, ...] = (
    "age", "ages", "how old", "birth year", "year of birth", "date of birth", "born",
    "religion", "religious", "church",
    "family", "families", "children", "child", "kids", "pregnant", "pregnancy",
    "married", "marriage", "marital", "spouse", "husband", "wife",
    "health", "illness", "disability", "disabilities", "disabled", "medical", "surgery", "injury", "injuries",
    "nationality", "citizenship", "citizen", "race", "ethnicity", "ethnic", "origin", "where are you from",
    "sexual orientation", "gender", "politics", "political", "union membership", "trade union",
    "personal life", "personal issues", "personal problems", "private life",
)
SENSITIVE_PATTERN = re.compile(
    r"\b(?:" + "|".join(re.escape(topic).replace(r"\ ", r"\s+")
                        for topic in sorted(SENSITIVE_TOPICS, key=len, reverse=True)) + r")\b",
    re.IGNORECASE)

_STAGE_DIRECTION = re.compile(r"\([^()]*\)|\[[^\[\]]*\]|\*[^*\n]+\*")
_MARKUP = re.compile(r"\*\*|__|`+|^\s*#+\s*|^\s*(?:[-*•]|\d+[.)])\s+", re.MULTILINE)
_INTERVIEWER_PREFIX = re.compile(r"^(?:interviewer|ai|assistant|bot|recruiter|question|q)(?:\s*:|\s+[-–—])\s*",
                                 re.IGNORECASE)
_CANDIDATE_PREFIX = re.compile(r"^(?:candidate|applicant|caller|user|human|me|answer|a)\s*:", re.IGNORECASE)
_SENTENCE = re.compile(r"[^.!?]+[.!?]+")
# The candidate's voice: claims about "my" work or skills ("I worked...", "I've been...", "I'm a...").
# An interviewer's "I'm glad to hear that" or "Can I ask" is fine, and so is "me" ("tell me about").
_CANDIDATE_VOICE = re.compile(
    r"\b(?:my|mine|myself)\b"
    r"|\bI(?:'ve| have)?\s+(?:worked|work|handled|managed|helped|used to|been|had|was|were|did)\b"
    r"|\bI(?:'m| am)\s+(?:an?|not)\b", re.IGNORECASE)
# A question the candidate would ask: "What should I do?", "Do I get paid weekly?"
_ASKS_AS_CANDIDATE = re.compile(r"\b(?:should|do|does|can|could|would|will|did|am|have|may)\s+I\b(?!\s+ask)",
                                re.IGNORECASE)
_ADDRESSES_CANDIDATE = re.compile(r"\byou(?:r|rs|rself|'re|'ve|'d|'ll)?\b", re.IGNORECASE)
# A second question hidden in one sentence: "What did you do, and how did it end?"
_SECOND_QUESTION = re.compile(r"\b(?:and|or)\s+(?:what|how|why|when|where|who|which|do|did|can|could|would)\b",
                              re.IGNORECASE)
# The prompt coming back ("When the candidate's answer is vague, you ask...", "The interviewer asked,
# "...") names the roles; a question really addressed to the candidate never does.
_NAMES_A_ROLE = re.compile(r"\b(?:candidate|interviewer|assistant|AI)(?:'s|s)?\b", re.IGNORECASE)
_WORD = re.compile(r"[\w'’]+")
_END_MARKS = re.compile(r"(.*?)\s*([.!?]+)$", re.DOTALL)
_QUOTES = "\"'“”‘’«»"


def contains_sensitive_topic(text: str) -> bool:
    return SENSITIVE_PATTERN.search(text) is not None


def guard_question(text: str, *, max_words: int = 30) -> str | None:
    """The first question in `text`, cleaned, if it may be spoken to the candidate; otherwise None.
    What comes before the question is dropped but still read: a lead-in in the candidate's voice or on
    a sensitive topic means the question grows out of it."""
    for sentence in _sentences(_strip_decoration(text)):
        if _speaks_as_candidate(sentence) or contains_sensitive_topic(sentence):
            return None
        if sentence.endswith("?"):
            return sentence if _speakable(sentence, max_words) else None
    return None


def _strip_decoration(text: str) -> str:
    text = text.replace("’", "'")  # one apostrophe, so "I’ve" reads like "I've"
    text = "".join(ch for ch in text
                   if unicodedata.category(ch) not in ("So", "Sk", "Cs", "Co") and ch not in "\u200d\ufe0f")
    text = _STAGE_DIRECTION.sub(" ", _MARKUP.sub("", text))
    return text.replace("*", "")


def _sentences(text: str) -> list[str]:
    """Sentences with quotes and role prefixes removed, whitespace collapsed, one end mark each."""
    sentences = []
    for line in text.splitlines():
        for raw in _SENTENCE.findall(line + "."):  # the "." closes a trailing fragment
            body, end = _END_MARKS.match(raw).groups()
            body = " ".join(body.split()).strip(_QUOTES + " ")
            while (unprefixed := _INTERVIEWER_PREFIX.sub("", body).strip(_QUOTES + " ")) != body:
                body = unprefixed
            body = re.sub(r"\s+([,;:])", r"\1", body)
            if _WORD.search(body):
                sentences.append(body + ("?" if "?" in end else end[0]))
    return sentences


def _speaks_as_candidate(sentence: str) -> bool:
    return bool(_CANDIDATE_PREFIX.match(sentence) or _CANDIDATE_VOICE.search(sentence)
                or _ASKS_AS_CANDIDATE.search(sentence))


def _speakable(question: str, max_words: int) -> bool:
    return (4 <= len(_WORD.findall(question)) <= max_words
            and _ADDRESSES_CANDIDATE.search(question) is not None
            and _SECOND_QUESTION.search(question) is None
            and _NAMES_A_ROLE.search(question) is None)
