"""Prototype sentences for the answer kinds a score must not reward. The evaluator embeds them once and
uses the closest one's similarity as a feature. Written generically (any customer-facing role), not
copied from rated answers, so they transfer to new templates."""
from __future__ import annotations

HOSTILE = (
    "I told the customer it was their own fault and hung up on them.",
    "I yelled back at the caller and told them to stop complaining.",
    "I put the customer on hold until they gave up and hung up.",
    "I ignored the angry customer and let them wait.",
    "I lied to the customer so they would go away.",
    "I threatened the customer so they would pay.",
    "I insulted the customer and made fun of them.",
    "I don't care how the customer feels, it's not my problem.",
)
BUZZWORDS = (
    "I am a passionate, results-driven team player with excellent communication skills.",
    "I bring a customer-first mindset and go above and beyond in every interaction.",
    "I am detail oriented, proactive and committed to excellence.",
    "I have strong interpersonal skills and a positive attitude.",
)
OFF_TOPIC = (
    "In my free time I like sports, music and spending time with friends.",
    "I think the economy and the job market are really interesting topics.",
    "My favorite movie is an action film and I love to travel.",
    "I really like this company and I have always wanted to work here.",
)
NO_ANSWER = (
    "I don't know.",
    "I'm not sure, I can't think of anything.",
    "No, not really.",
    "I have never done that.",
)

# Clause-level contradiction: the first part of an answer claiming a strength (reliability, availability,
# temper, accuracy, following the rules) and a later part conceding a fact that undoes it. Polarity is
# weak in sentence embeddings, so a later clause counts as a concession by how much closer it is to the
# LAPSES than to the CLAIMS; the evaluator only looks when a claim and a turn ("but", "though") are said.
CLAIMS = (
    "I am always on time and I never miss a shift.",
    "I can work any shift, days, nights or weekends.",
    "I never lose my temper with people.",
    "I always follow the rules exactly.",
    "My work is always accurate and complete.",
    "I am very reliable, you can count on me.",
    "I stay calm and patient with everyone.",
    "I handle problems on my own.",
)
LAPSES = (
    "I was late a lot and my manager wrote me up.",
    "I can't work evenings or weekends.",
    "I only work mornings, not nights.",
    "I got angry and told him what I really thought of him.",
    "I would scare them into paying by telling them what we could take from them.",
    "I usually skip that step when it gets busy.",
    "I missed a few shifts and got fired.",
    "I just pass anything hard to someone else.",
    "Sometimes I bend the rules to get it done.",
    "People complain that they can't follow me.",
)
# Musing about the topic instead of answering: talk about an industry, a class, the news, one's interests.
MUSING = (
    "That's a great question, it's a really interesting topic.",
    "I've always been fascinated by how companies do this, I read a lot about it.",
    "I took a class once where we talked about this kind of thing in general.",
    "It's a big issue in this country and it affects a lot of people's lives.",
    "In general I think the industry has changed a lot over the years.",
)
