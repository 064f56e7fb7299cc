"""The words and ranges a person meets on the command line: the screening's questions, the
stages, the feelings after a session, a profile's usual and hard limits.

Plain data, kept out of the history store's and the allowance's modules: building
``invtable``'s parser shows them in its help and choices, and every command's start (a
simulation's too) pays for what the parser imports (sqlite3, the store's classes).
"""

from __future__ import annotations

# DESIGN section 2: the contraindications, one plain-language question each with why it
# matters (`invtable user screen`). Any "yes" locks the profile out of inversion past
# horizontal until a clearance covering that answer is recorded (who, when, which answers).
QUESTIONS: dict[str, tuple[str, str]] = {
    "high_blood_pressure": (
        "Do you have high blood pressure (over 140/90), treated or not?",
        "Head-down raises the pressure in the head and eyes.",
    ),
    "heart_disease": (
        "Do you have any heart or circulatory disease?",
        "Inversion changes how hard the heart works and where the blood pools.",
    ),
    "eye_condition": (
        "Do you have glaucoma or any other eye condition?",
        "Pressure inside the eye rises when the head is below the heart.",
    ),
    "retinal_detachment": (
        "Have you ever had a detached retina?",
        "Raised eye pressure can make a detachment worse.",
    ),
    "osteoporosis": (
        "Have you been told you have osteoporosis (weak or brittle bones)?",
        "The ankles and hips carry your whole weight while inverted.",
    ),
    "recent_fracture_or_surgery": (
        "Have you had a broken bone or an operation in the last six months?",
        "Healing bones and wounds should not carry that load yet.",
    ),
    "implants": (
        "Do you have a surgical implant (pins, screws, an artificial joint, a pacemaker)?",
        "Implants may not be rated for the pull of inversion.",
    ),
    "hernia": ("Do you have a hernia?", "Head-down raises the pressure in the abdomen."),
    "pregnancy": ("Are you, or could you be, pregnant?", "Inversion is not safe for a pregnancy."),
    "anticoagulants": (
        "Do you take blood thinners (anticoagulants such as warfarin)?",
        "Raised pressure in the head makes bleeding more likely.",
    ),
    "middle_ear_infection": (
        "Do you have a middle-ear infection now?",
        "It upsets balance, and head-down makes it worse.",
    ),
}
SCREENING_KEYS = tuple(QUESTIONS)  # the screening's keys, in the questionnaire's order
STAGES = ("beginner", "established")

# How a person felt after a session (`invtable session feedback`); "none" and
# "back_pain_better" are comfortable, every other answer is a symptom that holds progression.
FEELINGS = (
    "none",
    "dizziness",
    "headache",
    "eye_pressure",
    "nausea",
    "back_pain_worse",
    "back_pain_better",
)

# What a profile may set on its own (USUAL) and, with a recorded clearance, at most (HARD).
# Stricter than the usual bounds is always allowed; looser needs the clearance.
USUAL: dict[str, tuple[float, float]] = {
    "sessions_per_day": (1, 3),
    "past_s_per_day": (60.0, 30 * 60.0),
    "rest_s": (3600.0, 86400.0),
    "supervised_sessions": (3, 20),
}
HARD: dict[str, tuple[float, float]] = {
    "sessions_per_day": (1, 6),
    "past_s_per_day": (60.0, 60 * 60.0),
    "rest_s": (15 * 60.0, 86400.0),
    "supervised_sessions": (0, 20),
}
