"""Transparent features of a candidate's turn: what it asks for (intent) and, for an answer, whether it
gives concrete evidence for the factor being assessed.

Everything here is word lists and counting, on purpose: the interviewer's decisions must be explainable
to a candidate and a hiring team ("only 6 words", "no concrete example"), and small local LLMs cannot
classify answers reliably. Text is normalized the way speech-to-text output varies: case, punctuation,
apostrophes ("don't" = "dont") and hyphens ("mm-hmm" = "mm hmm") do not matter.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from config.templates import EvaluationFactor

# Fewer words than this is a short answer: too little to assess, whatever it says.
SHORT_ANSWER_WORDS = 8

_TOKEN_RE = re.compile(r"\$?\d[\d,.:]*%?|[a-z]+")


def _tokens(text: str) -> list[str]:
    text = text.lower().replace("’", "").replace("'", "").replace("-", " ")
    return [token.rstrip(".,:") for token in _TOKEN_RE.findall(text)]


def _phrases(*texts: str) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(text.split()) for text in texts)


_NUMBER_WORDS = frozenset(
    "two three four five six seven eight nine ten eleven twelve fifteen twenty thirty forty fifty sixty "
    "hundred thousand dozen half percent dollars".split())
_MONTHS = "january february march april june july august september october november december"  # not "may"
_DAYS = "monday tuesday wednesday thursday friday saturday sunday"
# Concrete-detail phrases by kind; the kind is shown in reasons. Matched longest first, each word at most
# once, so "the next day" is one time marker, not also a sequence word.
_CONCRETE_PHRASES: dict[str, tuple[tuple[str, ...], ...]] = {
    "time": _phrases(
        "last year", "last month", "last week", "last summer", "last winter", "last spring", "last fall",
        "last night", "last time", "yesterday", "once", "one time", "that day", "that time", "the next day",
        "next day", "the other day", "this morning", "ago", "in a row", "every day", "weekend", "weekends",
        "evening", "evenings", "morning", "mornings", "overnight", "night shift", "night shifts",
        *_MONTHS.split(), *_DAYS.split(), *(day + "s" for day in _DAYS.split())),
    "example": _phrases(
        "for example", "for instance", "when i", "i remember", "there was a time", "at my last job",
        "at my previous job", "at my old job", "in my last job", "in my previous job", "when i worked"),
    "sequence": _phrases("first", "then", "after that", "next", "finally", "afterwards", "step by step"),
    "outcome": _phrases(
        "refund", "refunded", "credit", "credited", "replacement", "replaced", "discount", "resolved",
        "fixed", "solved", "thanked", "thanked me", "escalated", "ticket", "claim", "tracking number",
        "survey", "rating", "promoted", "award", "attendance", "reimbursed", "waived", "cancelled",
        "rescheduled", "on time", "never missed", "calmed down"),
}
_IRREGULAR_PAST = frozenset(
    "said told took gave made went got sent kept found brought wrote left spoke paid came began ran met "
    "put set let stood drove rang showed understood".split())
# "-ed" words that are adjectives or not verbs: they describe, they don't report an action.
_NOT_PAST_ACTIONS = frozenset(
    "need indeed speed hundred interested experienced tired bored excited frustrated upset stressed "
    "annoyed worried confused related based supposed detailed complicated organized skilled qualified "
    "motivated dedicated used aged advanced limited talented reserved varied scared embarrassed "
    "red bed shed feed seed weed".split())
_VAGUE_PHRASES = _phrases(
    "it depends", "depends", "i guess", "i suppose", "stuff", "things", "kind of", "kinda", "sort of",
    "sorta", "maybe", "i dont know", "i do not know", "dunno", "not sure", "no idea", "usually", "always",
    "never really", "whatever", "or something", "something like that", "pretty good", "just explain",
    "handle it", "deal with it")
_ALL_PHRASES = sorted(
    [(phrase, kind) for kind, phrases in _CONCRETE_PHRASES.items() for phrase in phrases]
    + [(phrase, "vague") for phrase in _VAGUE_PHRASES],
    key=lambda entry: -len(entry[0]))

_FIRST_PERSON = frozenset({"i", "id", "ill", "ive", "we"})
# Between "I" and the verb: "I would first check", "I then called".
_SUBJECT_FILLERS = frozenset(
    "would will then just also first immediately actually really always usually did had have could can "
    "to quickly calmly".split())
_ACTION_VERBS = frozenset(
    "ask apologize check explain listen call tell say offer refund escalate confirm compare look pull open "
    "send email follow fix solve walk show write note log track verify review arrange schedule swap cover "
    "set plan leave arrive let acknowledge repeat summarize thank transfer reset contact help stay keep "
    "make give take go get find reassure calm break answer text message update train work".split())

_STOPWORDS = frozenset(
    "a an the and or but if so of to in on at by for with from as is are was were be been being it its "
    "this that these those there their they them he she his her you your i me my we our us do does did "
    "have has had not no can could would should will what which who how when where why than then also "
    "about into out up down over very just more most some any each other such own same too only still "
    "one ask asked never always thing things something like make sure dont wasnt cannot youve may use way "
    "all right know take set name real though under before while little getting actually mostly "
    # Rubric language, not topic: every factor's anchors say "describes", "gives a concrete example".
    "say says tell time give gives describes example concrete specific vague question answer answers "
    "words".split())


def _stem(word: str) -> str:
    """Crude suffix stripping, enough for "apologized" to meet "apologizing" and "bills" to meet "bill"."""
    if len(word) > 5 and word.endswith("ing"):
        word = word[:-3]
    elif len(word) > 4 and word.endswith("ed"):
        word = word[:-2]
    elif len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    if len(word) > 4 and word.endswith("e"):
        word = word[:-1]
    return word


def content_stems(text: str) -> set[str]:
    """The stems of the words that carry a topic (no stopwords, no rubric language)."""
    return {_stem(t) for t in _tokens(text) if t.isalpha() and len(t) > 2 and t not in _STOPWORDS}


def topic_stems(factor: EvaluationFactor) -> frozenset[str]:
    """The factor's vocabulary: content words of its name, description, anchors and questions."""
    a = factor.anchors
    return frozenset(content_stems(" ".join(
        (factor.name, factor.description, a.weak, a.adequate, a.strong, *factor.questions))))


def _is_past_action(token: str) -> bool:
    if token in _IRREGULAR_PAST:
        return True
    return len(token) >= 5 and token.endswith("ed") and token not in _NOT_PAST_ACTIONS


def _markers(tokens: list[str]) -> list[tuple[str, str]]:
    """(kind, phrase) for each concrete or vague marker; a word belongs to at most one marker."""
    found: list[tuple[str, str]] = []
    i = 0
    while i < len(tokens):
        for phrase, kind in _ALL_PHRASES:
            if tuple(tokens[i:i + len(phrase)]) == phrase:
                found.append((kind, " ".join(phrase)))
                i += len(phrase)
                break
        else:
            token = tokens[i]
            if token[0].isdigit() or token[0] == "$" or token in _NUMBER_WORDS:
                found.append(("number", token))
            elif _is_past_action(token):
                found.append(("past action", token))
            i += 1
    return found


def _first_person_actions(tokens: list[str]) -> list[str]:
    """"I apologized", "I'd first check", "we refunded": the candidate reporting something they do or did."""
    found = []
    for i, token in enumerate(tokens):
        if token not in _FIRST_PERSON:
            continue
        j = i + 1
        while j < len(tokens) and j - i <= 2 and tokens[j] in _SUBJECT_FILLERS:
            j += 1
        if j < len(tokens) and (tokens[j] in _ACTION_VERBS or _is_past_action(tokens[j])):
            found.append(" ".join(tokens[i:j + 1]))
    return found


def _quoted(items: list[str], limit: int = 4) -> str:
    shown = ", ".join(f"'{item}'" for item in items[:limit])
    return shown + (", ..." if len(items) > limit else "")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


@dataclass(frozen=True)
class AnswerFeatures:
    words: int
    concrete_markers: int  # numbers, times, "for example", named outcomes, past-tense actions, step words
    first_person_actions: int  # "I apologized", "I'd check": the candidate's own actions
    vague_markers: int  # "it depends", "I guess", "stuff", "usually", ...
    topic_words: int  # distinct content words shared with the factor's description, anchors and questions
    is_vague: bool
    is_short: bool
    reasons: tuple[str, ...]  # human-readable, one per feature


def analyze_answer(text: str, factor: EvaluationFactor) -> AnswerFeatures:
    """Count the transparent features of one answer to a question about ``factor``.

    An answer is vague when it gives no usable evidence for the factor: no concrete detail and no
    first-person action, hedges at least as many as the details, or no word in common with the factor
    at all (an off-topic answer). It is short under SHORT_ANSWER_WORDS words.
    """
    tokens = _tokens(text)
    markers = _markers(tokens)
    concrete = [phrase for kind, phrase in markers if kind != "vague"]
    vague = [phrase for kind, phrase in markers if kind == "vague"]
    actions = _first_person_actions(tokens)
    topic = sorted(content_stems(text) & topic_stems(factor))
    evidence = len(concrete) + len(actions)
    words = len(tokens)
    is_short = words < SHORT_ANSWER_WORDS
    off_topic = words > 0 and not topic

    reasons = [f"only {_plural(words, 'word')}" if is_short else _plural(words, "word")]
    reasons.append(f"{_plural(len(concrete), 'concrete detail')} ({_quoted(concrete)})" if concrete
                   else "no concrete example")
    reasons.append(f"{_plural(len(actions), 'first-person action')} ({_quoted(actions)})" if actions
                   else "no first-person action")
    if vague:
        reasons.append(f"{_plural(len(vague), 'vague phrase')} ({_quoted(vague)})")
    reasons.append(f"nothing about {factor.name.lower()}" if off_topic
                   else f"{_plural(len(topic), 'word')} on {factor.name.lower()}")
    return AnswerFeatures(
        words=words,
        concrete_markers=len(concrete),
        first_person_actions=len(actions),
        vague_markers=len(vague),
        topic_words=len(topic),
        is_vague=evidence == 0 or len(vague) >= evidence or off_topic,
        is_short=is_short,
        reasons=tuple(reasons),
    )


class Intent(Enum):
    ANSWER = "answer"
    REPEAT_REQUEST = "repeat_request"
    CONSENT_YES = "consent_yes"
    CONSENT_NO = "consent_no"
    STOP_REQUEST = "stop_request"
    BACKCHANNEL = "backchannel"


# Requests are recognized only as a whole turn (give or take politeness), so an answer that merely
# contains "repeat" or "hang up" ("I would never hang up on a customer") stays an answer.
_LEAD = r"(?:(?:um|uh|er|oh|well|so|hi|hello|sorry|im sorry|i am sorry|excuse me|okay|ok)\s+)*"
_TAIL = r"(?:\s+(?:please|now|again|for me|sorry|thanks|thank you|then|here|one more time))*"
_REPEAT = (
    r"(?:can|could|would|will) you (?:please )?(?:repeat|rephrase|say (?:that|it|the question) again|say again)"
    r"(?: that| it| the question| this| yourself| what you said)?",
    r"(?:please )?repeat(?: that| it| the question| yourself)?",
    r"say (?:that|it) again",
    r"come again",
    r"pardon(?: me)?",
    r"(?:what|whats|what is|what was) (?:the|your|that) question",
    r"(?:i )?(?:didnt|did not|couldnt|could not|cant|cannot|can not) (?:catch|hear|understand|get)"
    r"(?: that| it| you| the question| what you said)?",
    r"(?:sorry )?what did you (?:say|ask)",
    r"i missed (?:that|it|the question)",
    r"what|huh|sorry|excuse me",
)
_STOP = (
    r"stop(?: it| this| the (?:call|interview))?",
    r"(?:(?:i|we) (?:want|would like|wanna|need)|id like|wed like) to (?:stop|end|quit|finish|hang up)"
    r"(?: (?:the|this) (?:call|interview))?",
    r"(?:can|could) (?:we|you) (?:please )?(?:stop|end)(?: (?:the|this) (?:call|interview))?",
    r"(?:lets|let us) (?:stop|end)(?: (?:the|this) (?:call|interview))?",
    r"(?:please )?end (?:the|this) (?:call|interview)",
    r"(?:please |just |you can )?hang up(?: the phone)?",
    r"(?:ill|i will|im going to|i am going to|im gonna) hang up",
    r"(?:im|i am) not interested(?: anymore)?",
    r"(?:bye|goodbye|bye bye)",
    r"i (?:have|need|got|gotta) to go",
    r"i quit|im done",
)
_NO_WORDS = (r"no|nope|nah|no thanks|no thank you|not really|i disagree|i dont agree|i do not agree"
             r"|i dont consent|i do not consent|i (?:dont|do not) want to(?: continue| do this| do it)?"
             r"|id rather not|i would rather not")
_YES_WORDS = (r"yes|yeah|yea|yep|yup|ya|sure|okay|ok|alright|all right|i agree|i do|go ahead|of course"
              r"|absolutely|definitely|fine|thats fine|sounds good|i consent|lets do it|lets go|lets start"
              r"|correct|please do|why not|yes i agree|i agree to continue")
# Hums in any spelling speech-to-text picks ("mm-hmm", "mhm", "mmm", "hmm"), "uh-huh", fillers, and the
# listener's words.
_BACKCHANNEL_WORDS = r"uh+ huh|uhhuh|[mh]*m[mh]*|um+|uh+|er+|ah+|oh+|yeah|yea|okay|ok|right"


def _whole_turn(cores: tuple[str, ...] | str, repeatable: bool = False) -> re.Pattern[str]:
    core = "|".join(cores) if isinstance(cores, tuple) else cores
    body = f"(?:{core})(?:\\s+(?:{core}))*" if repeatable else f"(?:{core})"
    return re.compile(f"{_LEAD}{body}{_TAIL}")


_YES_RE = _whole_turn(_YES_WORDS, repeatable=True)
_INTENT_PATTERNS = (  # first match wins
    (Intent.REPEAT_REQUEST, _whole_turn(_REPEAT)),
    (Intent.STOP_REQUEST, _whole_turn(_STOP)),
    (Intent.CONSENT_NO, _whole_turn(_NO_WORDS, repeatable=True)),
    (Intent.CONSENT_YES, _YES_RE),
)
_BACKCHANNEL_RE = re.compile(f"(?:(?:{_BACKCHANNEL_WORDS})(?:\\s+|$))*")


def _normalized(text: str) -> str:
    return " ".join(_tokens(text))


def is_backchannel(text: str) -> bool:
    """Only listening noises ("mm-hmm", "uh-huh", "yeah", "okay", "right") or nothing at all: speech
    that doesn't take the floor, e.g. during the interviewer's own playback."""
    return _BACKCHANNEL_RE.fullmatch(_normalized(text)) is not None


def detect_intent(text: str) -> Intent:
    """What a whole candidate turn asks for. "yeah"/"okay" are CONSENT_YES (the caller decides whether a
    yes means anything in its state; is_backchannel still recognizes them); "stop" on its own is a
    STOP_REQUEST, which ends the call in every state, including consent."""
    normalized = _normalized(text)
    if is_backchannel(normalized):  # before the requests: "uh huh" is not "uh" + "huh?"
        return Intent.CONSENT_YES if _YES_RE.fullmatch(normalized) else Intent.BACKCHANNEL
    for intent, pattern in _INTENT_PATTERNS:
        if pattern.fullmatch(normalized):
            return intent
    return Intent.ANSWER
