"""Lexical structure of a spoken answer, independent of punctuation and case (speech-to-text output
varies in both): situation / action / result markers, reasons, numbers, hedges, fillers, vocabulary
variety, and the shapes gaming answers take (verb salads, keyword stuffing, rubric read-back, buzzwords,
hostile acts, a claim the answer then contradicts).

Embeddings see topic, not polarity or form ("I helped the customer" and "I hung up on the customer" are
close), so these counts carry what similarity cannot. All word lists are generic call-center and
interview language, not copied from any rated answer.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

_TOKEN_RE = re.compile(r"[a-z0-9]+")


def tokens(text: str) -> list[str]:
    """Lower-case words and numbers; apostrophes dropped ("don't" = "dont"), hyphens split."""
    return _TOKEN_RE.findall(text.lower().replace("’", "").replace("'", "").replace("-", " "))


def _re(*phrases: str) -> re.Pattern[str]:
    # Phrases are matched on the space-joined tokens, so punctuation never matters.
    return re.compile(r"\b(?:" + "|".join(phrases) + r")\b")


FILLERS = frozenset("um umm uh uhh erm er ah hmm mm mhm".split())
_FILLER_PHRASES = _re("you know", "i mean", "kind of", "sort of", "like like")
STOPWORDS = frozenset(
    "a an the and or but so to of in on at for with from by as is are was were be been being am im i me my "
    "we our you your he him his she her they them their it its this that these those there here what "
    "which who whom when where why how would could should will can cant dont didnt do does did not no "
    "if then than just also very really about into out up down over some any all more most other "
    "id ill ive youre theyre thats whats its".split()) | FILLERS

SITUATION = _re("one time", "there was (?:a|one|this)", "once", "last (?:week|month|year|summer|winter|time)",
                "at my (?:last|old|previous|first|current) (?:job|work|place)", "when i (?:was|worked)",
                "i had (?:a|one|this) (?:customer|caller|guy|lady|client)", "i remember",
                "(?:a|one|this) (?:guy|lady|customer|caller|woman|man|client|coworker) (?:called|came|was|had|said)",
                "for example", "for instance", "years? ago", "the other day", "in my (?:last|old|previous) job")
# First-person clauses whose verb is an action, not a state or an opinion: "I'd find", "we called",
# "I broke it down"; "I think", "I'm", "I love" are not actions.
_FIRST_PERSON_VERB = re.compile(r"\b(?:i|id|ill|we|wed|well)(?: (?:would|will|can|could|then|just|also|first|"
                                r"actually|always|usually|only|really|still|even|quickly|calmly|politely))* (\w+)")
STATIVE = frozenset(
    "am m was were is are be been have had has think thought guess feel felt like love loved know knew mean "
    "believe hope want wanted need needed dont didnt wouldnt cant couldnt never not would will can could should "
    "really always usually bring leverage prefer enjoy enjoyed am im ive its get got go went try tried".split())
# Speech and concrete actions the candidate reports or would take ("I said", "I'd ask").
ACTION = _re("i (?:said|told|asked|explained|offered|checked|called|wrote|sent|let|listened|apologi[sz]ed|"
             "repeated|walked|showed|went|gave|noted|confirmed|looked|set up|fixed|found|made|read)",
             "id (?:say|ask|tell|explain|offer|check|call|write|send|let|listen|apologi[sz]e|repeat|walk|show|"
             "give|note|confirm|look|set|go|start|read|put|open|make|find|pull|try)",
             "i would (?:say|ask|tell|explain|offer|check|call|write|send|let|listen|apologi[sz]e|repeat|"
             "walk|show|give|note|confirm|look|set|go|start|read|put|open|make|find|pull|try)",
             "i (?:say|ask|tell|explain|offer|check|listen|repeat|confirm|write|note|give|send|let)")
RESULT = _re("in the end", "ended up", "finally", "after that", "it worked", "thanked me", "was happy",
             "turned out", "calmed down", "so (?:he|she|they) ", "by the end", "since then", "from then on",
             "(?:he|she|they) (?:said|agreed|thanked|calmed|stayed|paid|understood)", "never (?:missed|late)",
             "which (?:meant|worked|helped)", "the result")
REASON = _re("because", "cause", "so that", "so (?:they|he|she|i|we|the|nobody|no one)", "that way",
             "in order to", "to make sure", "which means", "otherwise", "since", "the reason")
NUMBER = _re(r"\d+", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
             "twelve", "fifteen", "twenty", "thirty", "forty", "fifty", "sixty", "hundred", "thousand",
             "dollars?", "minutes?", "hours?", "days?", "weeks?", "months?", "years?", "percent",
             "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "weekends?",
             "mornings?", "evenings?", "nights?", "am", "pm")
# Hedges lower confidence in a claim; "always" / "usually" are not hedges (they state a habit).
HEDGE = _re("maybe", "probably", "i guess", "i think", "not sure", "dont know", "i suppose", "perhaps",
            "kind of", "sort of", "might", "whatever", "i dunno")
VAGUE = _re("do my best", "handle it", "deal with it", "stuff", "things like that", "and so on", "etc",
            "just explain", "just help", "try to help", "be nice", "be patient", "figure it out",
            "whatever it takes", "and everything")
NO_ANSWER = _re("dont know", "not sure", "no idea", "not really", "nothing", "pass", "cant think",
                "never had", "no experience", "dunno", "no")
BUZZWORDS = _re("passionate", "leverage", "synerg\\w*", "world class", "growth mindset", "mindset",
                "results driven", "solution oriented", "detail oriented", "customer first", "best in class",
                "value add", "proactive", "dynamic", "go getter", "team player", "self starter",
                "excellent (?:communication|people|verbal|written) skills", "strong communicator",
                "emotional intelligence", "core", "holistic", "empower\\w*", "maximi[sz]e", "optimi[sz]e",
                "impact", "integrity", "transparency", "accountability", "paradigm", "win win",
                "hard worker", "people person", "perfectionist", "think outside the box", "skill set",
                "strongest skill", "attention to detail", "above and beyond", "110 percent")
SELF_CLAIM = _re("im (?:a |an |very |really |super |extremely |so |always )?(?:\\w+ )?"
                 "(?:reliable|patient|great|good|careful|organi[sz]ed|punctual|accurate|calm|honest|"
                 "detail oriented|person|communicator|listener|problem solver)",
                 "i (?:am|m) (?:never|always)", "im never", "i never", "my (?:best|strongest) (?:thing|skill)",
                 "is my (?:best|strongest)", "by the book", "perfect", "always on time")
TURN = _re("though", "but", "well", "honestly", "to be honest", "actually", "except", "although")
# After a self-claim, these contradict it even without a "but": losing a job, being written up.
STRONG_ADMISSION = _re("wrote me up", "written up", "(?:lost|lose) (?:my|the|that) job", "(?:got|was) fired",
                       "let me go", "complained about me", "late a lot", "always late")
ADMISSION = _re("wrote me up", "written up", "(?:lost|lose) (?:my|the|that) job", "fired", "let go",
                "complain\\w*", "cant (?:do|work|make)", "skip\\w*", "late", "missed", "no show\\w*",
                "(?:dont|didnt|never)(?: really| even| usually)? (?:bother|care|check|write|read|do)", "forgot",
                "mess\\w* up",
                "lose my temper", "lost my temper", "(?:dont|didnt|never) (?:show|call|tell|do|need)",
                "(?:just )?transfer (?:anything|everything|it all)", "(?:just )?remember (?:it|everything|my)",
                "not (?:really )?(?:a|my) (?:strength|thing)")
# Hostile, dismissive or dishonest acts by the candidate toward a customer or coworker, counted only when
# not negated ("I'd never threaten them", "it wasn't their fault"). Acts are tied to "I" where the words
# could as well describe the customer ("he argued", "she called me stupid" are no fault of the candidate).
HOSTILE = _re("i hung up on", "(?:i|id|ill) hang up on", "hung up on (?:him|her|them)", "muted (?:him|her|them)",
              "shut up", "whin\\w+", "own fault", "(?:his|her|their) fault", "yelled back",
              "(?:i|id|ill|i would) (?:yell|yelled|argue|argued|pretend|pretended|lie|lied|laugh|laughed|"
              "threaten|threatened|insult|insulted|shame|shamed|ignore|ignored)\\b",
              "told (?:him|her|them) off", "threatened (?:him|her|them)", "made fun of (?:him|her|them)",
              "call\\w* (?:his|her|their) (?:boss|job|work|family|employer|neighbors?)", "arrest\\w*",
              "not my (?:problem|job)", "nothing (?:we|i) can do", "tough luck", "i (?:was|got) sarcastic",
              "on hold(?: \\w+){0,3} (?:till|until)", "(?:till|until) (?:she|he|they) (?:hung up|gave up)",
              "waste (?:my|of) time", "wasting (?:my|our) time", "or ill (?:have to )?(?:end|hang)",
              "ignored (?:him|her|them)",
              # Walking away from a live call: the phone put down so the caller talks to nobody.
              "(?:put|set|left|laid) the phone (?:down )?(?:on the (?:desk|table)|aside)",
              "(?:put|set|left|laid) the phone down (?:\\w+ ){0,3}(?:let|walked away)",
              # Name-calling, unless the candidate is reporting what was said to them ("called me stupid").
              "(?<!me )(?<!me a )(?<!me an )(?<!i was )(?<!im )(?:liar|deadbeat|idiot|stupid|lazy)")
_NEGATION = re.compile(r"\b(?:not|never|no|dont|didnt|wouldnt|without|wont|cant|avoid|nobody|wasnt|isnt|werent|"
                       r"arent|havent|hasnt|hadnt)(?: \w+){0,3} $")
# "I checked, I escalated, I refunded": a clause that is "I" + one past verb, then another "I" or the end.
_SALAD_CLAUSE = re.compile(r"\bi (\w+(?:ed|ght|ote|ent|ade|old|ook|ame|ave|aid|ept|ound))\b"
                           r"(?= (?:(?:then|next|and|also|finally|after)\s)?i\b|$| then\b| next\b)")
_BARE_RESULTS = re.compile(r"(?:\b\w+(?:ed|ne|xed|ady|te|ble|ise)\b ){3,}")


@dataclass(frozen=True)
class TextFeatures:
    words: int  # all tokens
    content_words: int  # without fillers and stop words
    spoken_words: int  # without fillers (what "too little was said" counts)
    situation: int
    actions: int
    results: int
    reasons: int
    numbers: int
    hedges: int
    vague: int
    no_answer: bool
    filler_ratio: float
    variety: float  # type-token ratio of content words in the first 60
    top_repeat: float  # share of content words taken by the most repeated one (keyword stuffing)
    buzzwords: int
    self_claims: int
    contradiction: bool
    admissions: int  # owning up to lateness, missed shifts, skipped work... (not negated)
    hostile: int
    salad_clauses: int  # "I <verb>ed" with no object, followed by another such clause
    salad_share: float  # of all "I <verb>" clauses
    i_clauses: int
    musing: int = 0  # talk about the topic in general ("such an interesting topic", "I read a lot about")


def _count(pattern: re.Pattern[str], joined: str) -> int:
    return len(pattern.findall(joined))


def _count_unnegated(pattern: re.Pattern[str], joined: str) -> int:
    return sum(not _NEGATION.search(joined[max(0, m.start() - 40):m.start()]) for m in pattern.finditer(joined))


def text_features(text: str) -> TextFeatures:
    toks = tokens(text)
    joined = " ".join(toks)
    fillers = sum(t in FILLERS for t in toks) + 2 * _count(_FILLER_PHRASES, joined)
    spoken = [t for t in toks if t not in FILLERS]
    content = [t for t in spoken if t not in STOPWORDS and len(t) > 2]
    head = content[:60]
    repeats = Counter(stem(t) for t in content).most_common(1)  # "available" / "availability" count as one
    i_clauses = len(re.findall(r"\bi (?!would|d |m |ll |ve |dont|think|guess|mean)\w+", joined))
    salad = len(_SALAD_CLAUSE.findall(joined)) + 2 * len(_BARE_RESULTS.findall(joined + " "))
    claim = SELF_CLAIM.search(joined)
    turn = TURN.search(joined, claim.end()) if claim else None
    admitted = (_unguarded(ADMISSION, joined, turn.end()) if turn else None) or (
        _unguarded(STRONG_ADMISSION, joined, claim.end()) if claim else None) or undone_claim(joined)
    return TextFeatures(
        words=len(toks), content_words=len(content), spoken_words=len(spoken),
        situation=_count(SITUATION, joined),
        # A verb-salad clause ("I escalated, I resolved") is no concrete action: it has no object.
        actions=max(0, max(_count(ACTION, joined), sum(v not in STATIVE for v in _FIRST_PERSON_VERB.findall(joined)))
                    - len(_SALAD_CLAUSE.findall(joined))),
        results=_count(RESULT, joined),
        reasons=_count(REASON, joined), numbers=_count(NUMBER, joined), hedges=_count(HEDGE, joined),
        vague=_count(VAGUE, joined),
        no_answer=len(spoken) <= 8 and bool(NO_ANSWER.search(joined)),
        filler_ratio=fillers / max(len(toks), 1),
        variety=len(set(head)) / max(len(head), 1),
        # Stuffing needs a word said four times or more; twice in a short answer is just the topic.
        top_repeat=(repeats[0][1] / len(content)) if repeats and repeats[0][1] >= 4 else 0.0,
        buzzwords=_count(BUZZWORDS, joined), self_claims=_count(SELF_CLAIM, joined),
        contradiction=admitted is not None, hostile=_count_unnegated(HOSTILE, joined),
        admissions=_count_unnegated(ADMISSION, joined) + _count_unnegated(STRONG_ADMISSION, joined),
        salad_clauses=salad, salad_share=min(1.0, salad / max(i_clauses, 1)), i_clauses=i_clauses,
        musing=_count(MUSING, joined),
    )


def stem(token: str) -> str:
    """A crude stem so "acknowledges" / "acknowledge" and "stays" / "stay" match in read-back checks."""
    for suffix in ("ability", "able", "ility", "ing", "ed", "es", "ly", "s"):
        if len(token) > len(suffix) + 2 and token.endswith(suffix):
            return token[: -len(suffix)]
    return token


def ngrams(text: str, n: int = 2) -> set[tuple[str, ...]]:
    """Stemmed word n-grams, leaving out those made only of stop words ("and the")."""
    words = [stem(t) for t in tokens(text) if t not in FILLERS]
    grams = {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}
    return {g for g in grams if not all(w in STOPWORDS for w in g)}


def read_back_share(answer: str, rubric_grams: set[tuple[str, ...]], min_grams: int = 8) -> float:
    """Share of the answer's word pairs that also occur in the rubric text (description + anchors); 0 for
    answers too short to tell a read-back from a natural overlap ("I'm usually on time")."""
    grams = ngrams(answer)
    return len(grams & rubric_grams) / len(grams) if len(grams) >= min_grams else 0.0


def log_words(n: int) -> float:
    return math.log1p(n)


MUSING = _re("interesting", "fascinat\\w*", "great question", "good question", "been interested", "curious about",
             "in this country", "society", "history", "the economy", "economics", "documentary", "the news",
             "i (?:read|learned|watched|saw) (?:a lot|about|that|somewhere|an article|a video)", "in general",
             "when you think about", "its (?:such|really|so) a", "a (?:big|huge) (?:part|issue|problem)",
             "people dont realize", "its crazy how", "i love (?:how|the way)", "affects? (?:people|customers?)")
# A claim of reliability, availability, temper or rule-following that a later clause may undo.
CLAIM = _re("im (?:a |an |very |really |super |extremely |so |always |never )?(?:\\w+ )?"
            "(?:reliable|patient|calm|careful|punctual|honest|accurate|organi[sz]ed|flexible|available|"
            "dependable|great|good|perfect)",
            "im (?:a |an |very |really |super |extremely |so |always )?(?:\\w+ )?(?:respectful|polite|professional|"
            "fair|friendly|kind|on time|trustworthy|responsible|hard working|hardworking)",
            "i (?:always|never)", "im (?:always|never)", "id never", "i would never", "i (?:can|could) work (?:any|all|every|whenever)",
            "any (?:shift|shifts|time|hours|day|days|schedule)", "anytime", "whenever you need",
            "always on time", "never (?:late|miss\\w*|lose|lost)", "(?:my|the) notes are", "by the book",
            "my (?:best|strongest) (?:thing|skill)", "is my (?:best|strongest)", "no problem with")
_CLAIM_TURN = _re("but", "though", "although", "except", "however", "to be honest", "honestly", "unless",
                  "only thing is", "then again")


# What undoes such a claim when said after the turn: a lapse owned up to, limits on availability, or a
# threat or insult toward the customer (threatening seizure, jail or telling others is what collections
# rules forbid).
LAPSE = _re("wrote me up", "written up", "(?:got|was|been) fired", "let me go", "(?:lost|lose) (?:my|that|the) job",
            "(?:i was|im|i am|i get|i got|i come|i came|i show up|i showed up) (?:\\w+ )?late", "late (?:a lot|sometimes|often)",
            "(?:missed|miss|skip|skipped) (?:a|some|my|the|a few|a couple|a lot of) (?:of )?(?:shifts?|days?|work|notes?|steps?)",
            "skip\\w*", "forg[eo]t", "i (?:\\w+ )?call(?:ed)? (?:out|in sick)", "(?:dont|didnt|never) (?:bother|check|write|read)",
            "just remember", "(?:just )?(?:transfer|pass|send) (?:anything|everything|it all|most|those)",
            "complained (?:about me|that)", "(?:lose|lost) my (?:temper|cool)", "snap\\w*",
            "not (?:evenings?|weekends?|nights?|mornings?|saturdays?|sundays?|after|before|on)",
            "no (?:evenings?|weekends?|nights?|mornings?)", "(?:cant|couldnt|wont) (?:do|work|make|come)",
            "only (?:work|do|available) (?:\\w+ )?(?:mornings?|days?|weekdays?|nights?)",
            "take (?:his|her|their|your) (?:car|house|home|truck|stuff|things|paycheck|kids)", "garnish\\w*",
            "(?:sue|report) (?:him|her|them|you)", "jail", "police", "arrest\\w*",
            "(?:call|tell|text) (?:his|her|their|your) (?:boss|job|work|family|wife|husband|neighbors?|friends?)",
            "liar", "deadbeat", "idiot", "stupid", "(?:make|made) (?:something|stuff) up", "fudge\\w*", "round\\w* (?:it|them) off")


# A negation governs what follows it within its own clause: "I'd never say I'm from the court" is denied,
# "if they won't answer I leave a voicemail" is not (a new subject starts a new clause).
_CLAUSE_NEGATION = re.compile(r"\b(?:not|never|no|dont|didnt|wouldnt|without|wont|cant|avoid|nobody|wasnt|isnt|"
                              r"werent|arent|havent|hasnt|hadnt)(?: (?!(?:i|he|she|they|we|you|id|ill)\b)\w+){0,3} $")
_CONDITIONAL = re.compile(r"\b(?:if|when|whenever|in case|should|ever|before|so|otherwise|or)(?: \w+){0,3} $")


# Facts that undo a claim even without a "but": written up or fired, shifts refused or missed, lateness
# owned up to, and what collections rules forbid (threatening seizure, jail or the police, telling a third
# party or a voicemail about the debt, posing as someone official).
_PLACES = "evenings?|weekends?|nights?|mornings?|saturdays?|sundays?|holidays?|overtime|doubles?"
_OTHERS = ("neighbors?|roommates?|wife|husband|mom|mother|dad|father|boss|coworkers?|family|sister|brother|kids?|"
           "son|daughter|whoever (?:answers|picks up)")
STRONG_LAPSE = _re("wrote me up", "written up", "(?:got|was|been) fired", "let me go",
                   "(?:lost|lose) (?:my|that|the) job", "no call no show",
                   f"(?:cant|couldnt|wont|dont) (?:do|work|make|come in)(?: \\w+)?(?: on)? (?:{_PLACES})",
                   f"not (?:on )?(?:{_PLACES})",
                   "(?:missed|skipped|called out (?:of|on)) (?!no |zero |none |a single )(?:\\w+ ){0,2}(?:shifts?|days|work)",
                   "(?:i was|im|i am|i get|i got|i come|i came) (?:\\w+ ){0,2}late (?:\\w+ ){0,3}"
                   "(?:times?|a lot|often|every|most|sometimes)",
                   "take (?:his|her|their|your) (?:car|house|home|truck|stuff|things|paycheck|kids)", "garnish\\w*",
                   "(?:i|id|ill|we|well|i would|i will|i could) (?:\\w+ )?(?:call|send|get) (?:the )?"
                   "(?:police|cops|sheriff)", "(?:go|going|end up|put (?:him|her|them)) (?:to|in) jail",
                   f"(?:tell|told|let|inform) (?:\\w+ ){{0,2}}(?:{_OTHERS}) (?:\\w+ ){{0,3}}"
                   "(?:owes?|owed|behind|debt|overdue|past due|collections?)",
                   "(?:leave|left) (?:a |them a )?(?:message|voicemail)(?: \\w+){0,5} (?:debt|owes?|overdue|past due)",
                   "(?:pretend|say|said|tell them) (?:\\w+ ){0,2}(?:im|i am|i was|were|we are|its) (?:from |with )?"
                   "(?:a |the )?(?:police|court|lawyer|attorney|sheriff|government|irs)")


def undone_claim(joined: str) -> re.Match[str] | None:
    """A claim (CLAIM) turned by "but" / "though" / "to be honest" and followed by a lapse, a limit or a
    threat (LAPSE) that is not itself negated: "I'm always on time, but I got written up for being late";
    or a claim followed, turn or not, by a fact that plainly undoes it (STRONG_LAPSE)."""
    claim = CLAIM.search(joined)
    if claim is None:
        return None
    turn = _CLAIM_TURN.search(joined, claim.end())
    return (_unguarded(LAPSE, joined, turn.end()) if turn else None) or _unguarded(STRONG_LAPSE, joined, claim.end())


def _unguarded(pattern: re.Pattern[str], joined: str, start: int) -> re.Match[str] | None:
    """The first match after `start` that is neither denied nor a condition: "if I'm ever late I call
    ahead", "I haven't missed one since", "I'd never skip it" are a rule or a denial, not a lapse."""
    for match in pattern.finditer(joined, start):
        lead = joined[max(0, match.start() - 40):match.start()]
        if not (_CLAUSE_NEGATION.search(lead) or _CONDITIONAL.search(lead)):
            return match
    return None


def claim_turn(text: str) -> tuple[str, str] | None:
    """(what comes before the turn, what follows it) when the answer makes a claim and then turns
    ("I'm never late ... but", "I'd never threaten anyone, though ..."); None otherwise."""
    joined = " ".join(t for t in tokens(text) if t not in FILLERS)
    claim = CLAIM.search(joined)
    if claim is None:
        return None
    turn = _CLAIM_TURN.search(joined, claim.end())
    if turn is None:
        return None
    before, after = joined[:turn.start()].strip(), joined[turn.end():].strip()
    return (before, after) if len(after.split()) >= 3 else None
