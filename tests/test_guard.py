"""The guard on LLM follow-ups: what it cleans, what it lets through, and what it refuses. Many inputs are
real SmolLM2-135M-Instruct outputs for interviewer prompts (marked "SmolLM2")."""
from __future__ import annotations

import pytest

from ivr.guard import SENSITIVE_TOPICS, contains_sensitive_topic, guard_question

CLEANED = [
    # role prefixes, quotes, markdown, emojis, stage directions
    ("Interviewer: How do you calm down an upset caller?", "How do you calm down an upset caller?"),
    ('AI: "What would you say to a customer who wants a refund?"',
     "What would you say to a customer who wants a refund?"),
    ("Assistant - Can you walk me through your last difficult call?",
     "Can you walk me through your last difficult call?"),
    ('**Interviewer:** "How do you handle an angry caller?" 😊', "How do you handle an angry caller?"),
    ("*smiles* (pauses) Interviewer: Q: 'Can you walk me through a tough call?'",
     "Can you walk me through a tough call?"),
    ("### Follow-up\n- What tools did you use to track your tickets?", "What tools did you use to track your tickets?"),
    ("[warmly] What did you learn from that call? 👍🏽", "What did you learn from that call?"),
    ("“What would you do differently next time?”", "What would you do differently next time?"),
    ("Great!!! So, what would you do if a caller swears at you??", "So, what would you do if a caller swears at you?"),
    ("How did   you know the customer was satisfied ?", "How did you know the customer was satisfied?"),
    # only the first question is kept; the lead-in and anything after it are dropped
    ("Thanks for sharing that. What was the hardest part of that job for you?",
     "What was the hardest part of that job for you?"),
    ("Can I ask how you kept track of follow-ups?", "Can I ask how you kept track of follow-ups?"),
    ("What did you say to the customer? I said I would call back.", "What did you say to the customer?"),
    # SmolLM2
    ("I'm glad to know you're a customer service professional. What's your experience with customer service?",
     "What's your experience with customer service?"),
    ("I'm sorry to hear that you're facing a challenging situation, but I'm more than happy to help you find a "
     "suitable customer service position. Can you tell me more about your experience with customer service? "
     "What's the most challenging aspect of your job, and how you've managed to find a suitable",
     "Can you tell me more about your experience with customer service?"),
    ("That was a typical customer service experience, right there. What do you think is the most difficult part "
     "of this job?\n\nPlease go ahead and share your answer.",
     "What do you think is the most difficult part of this job?"),
    ("Please let me know how you'd like the candidate to answer the follow-up question. What was the last "
     "experience you had in customer service?", "What was the last experience you had in customer service?"),
    ('"Next, let\'s talk about your experience with customer service. What made you decide to switch to a call '
     "center? Was it a desire to improve your business, or did you find the work to be a bit too on-the-nose for",
     "What made you decide to switch to a call center?"),
]


@pytest.mark.parametrize(("text", "expected"), CLEANED)
def test_speakable_questions_come_out_clean(text: str, expected: str | None) -> None:
    assert guard_question(text) == expected


REJECTED = {
    # answering as the candidate
    "I'm a (SmolLM2)": "As I mentioned, I'm a Spanish language teacher. I'm looking for someone who can teach me "
                       "Spanish and can adapt to various proficiency levels. Would you be willing to work with me on "
                       "a project where I can teach Spanish to a student who doesn",
    "I'm not (SmolLM2)": "I'm sorry for any misunderstanding, but I'm not a customer service representative. I'm a "
                         "professional and I'm here to assist you with any questions or concerns you may have.",
    "quoting itself as the candidate (SmolLM2)": 'When asked about a particular experience, the candidate replied: '
                                                 '"I\'ve had several customer service missions at a large retail '
                                                 "store over the past year. I'm confident in my ability to support "
                                                 'customers with customer service problems."',
    "my company (SmolLM2)": "What made you choose my company?",
    "my experience": "My experience is mostly in retail. What else would you like to know?",
    "answers, then asks the interviewer": "I worked at Comcast for two years. Do you have any questions for me?",
    "candidate role prefix": "Candidate: What hours would you need me to work?",
    "asks what the candidate would": "What should I say to the customer when you put me on hold?",
    # two questions in one sentence
    "and did, on injury (SmolLM2)": "To better understand the situation, I'll continue our conversation. What's your "
                         "occupation, and did you have any experience with a job-related injury in the past?",
    "and how": "What did you do, and how did the customer react to you?",
    "or would": "Would you refund the customer or would you escalate to your supervisor?",
    # sensitive topics, in the question or in the lead-in it grows out of
    "family (SmolLM2)": "I can take a moment to ask about your plans. Can you tell me more about your family setup? "
                        "What kind of flexibility you're looking for?",
    "family in the lead-in (SmolLM2)": "I'd be happy to help you find a better fit for your family's schedule. To "
                                       "find a flexible hours job, can you please share the details of your job? "
                                       "What's your current job offer, and what's your offer regarding flexible "
                                       "hours?",
    "surgery in the lead-in (SmolLM2)": "I'd love to hear more about your back surgery. What was the procedure "
                                        "like? Was it an emergency or a planned procedure? And how did you manage "
                                        "your time before that surgery?",
    "church": "I can imagine how busy you are. What kind of church do you attend on Sundays?",
    "kids": "Do you have kids who need you at home in the evenings?",
    "age": "How old are you, if you don't mind me asking?",
    "birth year": "Could you tell me your birth year for our records?",
    "married": "Are you married or planning to be soon?",
    "pregnant": "Are you pregnant at the moment, would you say?",
    "nationality": "What is your nationality, if you don't mind me asking?",
    "origin": "Where are you from originally, if you don't mind?",
    "health": "How is your health these days, would you say?",
    "disability": "Do you have a disability we should know about?",
    "religion": "Does your religion allow you to work on weekends?",
    "union": "Have you ever held a union membership at your previous jobs?",
    "politics": "What do you think about politics in your workplace?",
    # not a usable question
    "no question (SmolLM2)": "No.",
    "no question mark (SmolLM2)": "I'm glad to know that you're able to provide a thorough explanation of the "
                                  "charges and understand the customer's perspective. I'm sure you're aware that "
                                  "the customer service experience is a unique blend of empathy, transparency, and a "
                                  "willingness to listen.\n\nI'm glad to hear that you're",
    "cut off before the question mark (SmolLM2)": '"Fantastic, I\'d be happy to provide some more details on your '
                                                  "experience in retail, particularly in the call center industry. "
                                                  "How did you manage to transition from retail to call center, and "
                                                  "what specifically would you like to know about your background",
    "not addressed to the candidate (SmolLM2)": "What was it like to work with a customer service team and handle "
                                                "billing complaints?",
    "too short": "How about you?",
    "one word": "Why?",
    "too long": "What is the single most important thing that you as a support agent in a busy inbound call center "
                "should always remember to do when a caller is upset about their bill and wants answers now?",
    "empty": "",
    "only decoration": "**Interviewer:** 🙂 (pauses)",
}


@pytest.mark.parametrize("text", REJECTED.values(), ids=REJECTED.keys())
def test_unspeakable_output_is_refused(text: str) -> None:
    assert guard_question(text) is None


def test_word_limit_is_a_parameter() -> None:
    question = "Tell me how you would explain a late fee to a customer who has never been charged one before?"
    assert guard_question(question, max_words=30) == question
    assert guard_question(question, max_words=10) is None
    assert guard_question("Why did you leave?") is not None  # 4 words: the shortest allowed
    assert guard_question("Why did you?") is None


@pytest.mark.parametrize("text", [
    "What is your age?", "AGE", "your date   of birth", "Are you MARRIED?", "my wife", "Sexual orientation",
    "their ethnicity", "Which church do you go to", "I have two kids.", "citizenship status",
])
def test_sensitive_topics_are_found_in_any_case_and_spacing(text: str) -> None:
    assert contains_sensitive_topic(text)


@pytest.mark.parametrize("text", [
    "How do you manage your queue?", "Our agents average six minutes a call.", "What stage was the ticket at?",
    "an original idea", "the chain of command", "a childish mistake", "the marathon racetrack", "",
])
def test_words_that_merely_contain_a_topic_are_not_sensitive(text: str) -> None:
    assert not contains_sensitive_topic(text)


def test_every_required_topic_is_listed() -> None:
    required = ("age", "birth year", "religion", "church", "family", "children", "kids", "pregnant", "married",
                "marital", "spouse", "health", "illness", "disability", "disabled", "medical", "nationality",
                "citizenship", "race", "ethnicity", "origin", "sexual orientation", "gender", "politics",
                "union membership")
    assert set(required) <= set(SENSITIVE_TOPICS)
    assert all(contains_sensitive_topic(f"a question about {topic} here") for topic in SENSITIVE_TOPICS)


@pytest.mark.parametrize("echo", [
    'When the candidate\'s answer is vague, you ask the question: "Can you tell me about a time you calmed down an upset customer?',
    'The interviewer asked, "Can you explain it to them, I guess?',
    "As an AI, can you tell me about a time you helped a caller?",
])
def test_the_prompt_coming_back_is_refused(echo: str) -> None:
    assert guard_question(echo) is None


def test_personal_life_is_a_sensitive_topic() -> None:
    assert guard_question("Can you help someone with their personal issues?") is None
    assert contains_sensitive_topic("how is your personal life these days")
