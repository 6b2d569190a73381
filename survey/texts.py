"""Participant-facing texts (Markdown). Nothing here may name a method or segmenter."""

CONSENT = """
### Welcome, and thank you for helping

In this short study you will see a **product** from an online shop together with a row of
**five other products** that a shop might recommend as "similar". You rate how similar the
five are to the first product.

- It takes about 5 minutes. There are no right or wrong answers.
- We store your ratings, how long each took, and, if you came from a recruitment
  platform, its participant id. We store nothing else about you.
- You can stop at any time by closing the window.

Do you agree to take part?
"""

DECLINED = """
### No problem

You declined, so nothing has been stored. You may close this window.
"""

INSTRUCTIONS = """
### How it works

On each screen you see one **product** on the left and **five recommendations** on the right.

Ask yourself: *if I liked the product on the left, how similar are these five to it?*
Judge how the products **look**: shape, colour, pattern, style. Ignore the background,
lighting and camera angle of the photos.

Rate the five together on a scale from **1 (not at all similar)** to **7 (extremely similar)**,
then press **Submit**. Every answer is saved immediately, so if your page reloads you
continue where you were.
"""

SCALE = {1: "1 · not at all similar", 2: "2", 3: "3", 4: "4 · somewhat similar", 5: "5", 6: "6",
         7: "7 · extremely similar"}

DONE = """
### Thank you, you are done

Your answers have been saved.
"""

INVALID_LINK = "This survey link is not valid. Please open the link you were given again."
