"""Scoring: a finished interview's transcript becomes an explainable scorecard (scoring.scorecard).
Graders (scoring.feature_grader, scoring.llm_grader) see only masked answers (scoring.masking)."""
from scoring.scorecard import ScoreResult, grade_transcript, make_grader, score_interview

__all__ = ["ScoreResult", "grade_transcript", "make_grader", "score_interview"]
