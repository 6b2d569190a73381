"""Built-in participant-facing texts (Markdown); a study config may replace consent,
instructions and thank-you. Nothing here may name a method or segmenter."""

CONSENT = """
### Welcome, and thank you for helping

In this short study you will see **products** from an online shop together with products a shop
might recommend as "similar", and tell us how similar they look to you.

- It takes about 5 to 10 minutes. There are no right or wrong answers.
- We store your answers, how long each took, and, if you came from a recruitment platform, its
  participant id. We store nothing else about you. You can stop at any time by closing the window.

Do you agree to take part?
"""

DECLINED = """
### No problem

You declined, so nothing has been stored. You may close this window.
"""

INSTRUCTIONS_INTRO = """
### How it works

Each screen shows one **product** and one or more **sets of five recommendations**. Judge how the
products **look**: shape, colour, pattern, style. Ignore the background, lighting and camera angle
of the photos. Every answer is saved the moment you submit it; if the page reloads you continue
where you were.
"""

INSTRUCTIONS = {
    "rating": """
**Rating screens.** Rate how similar the five recommendations are to the product, from
**1 (not at all similar)** to **7 (extremely similar)**.
*Example: for a red striped mug, five red striped mugs deserve a 7; five blue chairs a 1.*
""",
    "rating_ticks": """
You will also tick each recommendation that you find similar to the product.
""",
    "pairwise": """
**Comparison screens.** Two sets, **A** and **B**, are shown. Choose the set that is more similar
to the product, or "equally similar".
*Example: for a red striped mug, a set of red mugs beats a set of green chairs.*
""",
    "ranking": """
**Best-and-worst screens.** Several sets are shown. Pick the set that is **most** similar to the
product and the set that is **least** similar.
""",
}

SCALE = {
    1: "1 · not at all similar",
    2: "2",
    3: "3",
    4: "4 · somewhat similar",
    5: "5",
    6: "6",
    7: "7 · extremely similar",
}

PAIRWISE_OPTIONS = {"left": "A is more similar", "tie": "Equally similar", "right": "B is more similar"}

QUESTIONS = """
### Almost done

These questions are optional. Answer what you like, then press **Finish**.
"""

DONE = """
### Thank you, you are done

Your answers have been saved.
"""

DB_UNAVAILABLE = (
    "The study is briefly unavailable. Every answer you submitted is saved. Please reload this page "
    "in a minute to continue where you were."
)
INVALID_LINK = "This survey link is not valid. Please open the link you were given again."
UNAVAILABLE = "This study is not accepting new participants at the moment. Thank you for your interest."
