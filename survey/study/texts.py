"""Every participant-facing text, in one catalog: English and German.

A study picks its language (``[study] language = "de"``) and may override any text by its key in
the TOML ``[texts]`` table; :func:`check_overrides` refuses unknown keys and overrides that drop or
add ``{placeholders}``. Pages ask :func:`catalog` for the texts of a study and never hold a string
of their own. Nothing here may name a method or segmenter.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

EN: dict[str, str] = {
    "consent": """
### Welcome, and thank you for helping

In this short study you will see **products** from an online shop together with products a shop
might recommend as "similar", and tell us how similar they look to you.

- It takes about 5 to 10 minutes. There are no right or wrong answers.
- We store your answers, how long each took, and, if you came from a recruitment platform, its
  participant id. We store nothing else about you. You can stop at any time with "Stop and leave"
  at the bottom of every screen.

Do you agree to take part?
""",
    "agree": "I agree, start",
    "decline": "I do not agree",
    "declined": """
### No problem

You declined, so nothing has been stored. You may close this window.
""",
    "instructions_intro": """
### How it works

Each screen shows one **product** and one or more **sets of five recommendations**. Judge how the
products **look**: shape, colour, pattern, style. Ignore the background, lighting and camera angle
of the photos. Every answer is saved the moment you submit it; if the page reloads you continue
where you were.
""",
    "instructions_rating": """
**Rating screens.** Rate how similar the five recommendations are to the product, from
**1 (not at all similar)** to **7 (extremely similar)**.
*Example: for a red striped mug, five red striped mugs deserve a 7; five blue chairs a 1.*
""",
    "instructions_rating_ticks": """
You will also tick each recommendation that you find similar to the product.
""",
    "instructions_pairwise": """
**Comparison screens.** Two sets, **A** and **B**, are shown. Choose the set that is more similar
to the product, or "equally similar".
*Example: for a red striped mug, a set of red mugs beats a set of green chairs.*
""",
    "instructions_ranking": """
**Best-and-worst screens.** Several sets are shown. Pick the set that is **most** similar to the
product and the set that is **least** similar.
""",
    "instructions_time_limit": "Please answer each screen within {minutes} minutes; after that your place is "
    "given to someone else.",
    "start": "Start",
    "comprehension_intro": """
### Practice ({attempt} of 2)

Before the study starts, a few practice screens. Each shows a product and two sets: one of them is
clearly more similar to the product. Choose it on every screen.
""",
    "comprehension_question": "Practice screen {number}: which set is more similar to the product?",
    "comprehension_missing": "Please answer every practice screen.",
    "comprehension_retry": "Not quite: practice screen {screens} was answered wrongly. On each practice screen "
    "one set shows products of the same kind as the product, the other products of another kind; the first is "
    "more similar. Please try once more with new screens.",
    "comprehension_passed": "Well done, all practice screens answered right. The study starts now.",
    "progress": "Screen {number} of {total}",
    "product": "Product",
    "recommended": "Recommended as similar",
    "set": "Set {label}",
    "tick_prompt": "Tick each recommendation you find similar to the product:",
    "rating_question": "How similar are the five recommendations to the product?",
    "scale_1": "1 · not at all similar",
    "scale_2": "2",
    "scale_3": "3",
    "scale_4": "4 · somewhat similar",
    "scale_5": "5",
    "scale_6": "6",
    "scale_7": "7 · extremely similar",
    "rating_missing": "Please choose a rating from 1 to 7 before submitting.",
    "pairwise_question": "Which set is more similar to the product?",
    "pairwise_left": "A is more similar",
    "pairwise_tie": "Equally similar",
    "pairwise_right": "B is more similar",
    "pairwise_missing": "Please choose A, B or equally similar before submitting.",
    "ranking_best": "Most similar set",
    "ranking_worst": "Least similar set",
    "ranking_missing": "Please choose both the most and the least similar set.",
    "ranking_same": "The most and the least similar set must be different.",
    "instructions_swipe": """
**Shopping rounds.** Each round is one kind of product. First you see products of that kind one at
a time: press **Like** for one you like, **Not for me** for one you do not. The first product you
like is *your product*. Then you see products a shop recommends for it, one at a time: press
**Like** if you would like it recommended to you next to your product, **Not for me** if not.
On a computer the arrow keys work too: **←** not for me, **→** like.
""",
    "instructions_swipe_pick": """
In each round you like up to {likes} products; then you pick the one you like most: it is *your
product*.
""",
    "instructions_swipe_rate": """
At the end of each round you also rate how similar the recommendations are to your product.
""",
    "swipe_like": "Like",
    "swipe_dislike": "Not for me",
    "swipe_choose_prompt": "Do you like this product?",
    "swipe_choose_progress": "Product {shown} of up to {limit}",
    "swipe_your_product": "Your product",
    "swipe_judge_prompt": "Recommended for your product ({position} of {total}): would you like it?",
    "swipe_pick_prompt": "Which of the products you liked do you like most?",
    "swipe_pick": "Pick {number}",
    "swipe_rate_question": "How similar are these recommendations to your product?",
    "submit": "Submit",
    "questions": """
### Almost done

These questions are optional. Answer what you like, then press **Finish**.
""",
    "question_placeholder": "Prefer not to say",
    "comment": "Any comments on the study? (optional)",
    "finish": "Finish",
    "done": """
### Thank you, you are done

Your answers have been saved.
""",
    "completion_code": "Your completion code: **{code}**",
    "redirect_countdown": "You will be taken back to the recruitment site in {seconds} seconds.",
    "redirect_now": "Return to the recruitment site now",
    "redirect_stop": "Stay on this page",
    "redirect_stopped": "The redirect is stopped. Use the button below when you are ready.",
    "alt_product": "The product to compare with",
    "alt_your_product": "The product you chose",
    "alt_recommended": "Recommended product {number} of {total}",
    "alt_set_item": "{set}: product {number} of {total}",
    "alt_swipe_product": "Product to like or not",
    "alt_liked": "Liked product {number}",
    "honeypot_label": "Leave this field empty",
    "leave": "Stop and leave",
    "leave_confirm": "Do you really want to stop? The answers you gave so far are kept, but you cannot continue later.",
    "leave_yes": "Yes, stop now",
    "leave_no": "No, continue",
    "returned": """
### You have left the study

Thank you for your time. Please **return** this study on the recruitment platform (on Prolific:
"Return submission"), so that your place can go to someone else. You may close this window.
""",
    "timed_out": """
### Your time ran out

There was no answer for a long time, so your place was given to someone else. Please **return**
this study on the recruitment platform. You may close this window.
""",
    "screened_out": """
### Thank you

The practice screens showed that this study is not a good fit this time, so it ends here. You
will not see any further screens.
""",
    "use_a_computer": """
### Please use a computer

This study shows several sets of product photos side by side, which do not fit on a phone or tablet
screen. Please open the same link on a computer (laptop or desktop). Thank you!
""",
    "preview_banner": "**PREVIEW**: this is the participant flow as a researcher's preview. Nothing you do "
    "here is stored; the study's data stay untouched.",
    "preview_invalid": "This preview link is not valid. Open the preview from the admin page again.",
    "db_unavailable": "The study is briefly unavailable. Every answer you submitted is saved. Please reload "
    "this page in a minute to continue where you were.",
    "invalid_link": "This survey link is not valid. Please open the link you were given again.",
    "unavailable": "This study is not accepting new participants at the moment. Thank you for your interest.",
}

DE: dict[str, str] = {
    "consent": """
### Willkommen, und danke für Ihre Hilfe

In dieser kurzen Studie sehen Sie **Produkte** aus einem Onlineshop zusammen mit Produkten, die ein
Shop als „ähnlich“ empfehlen könnte, und sagen uns, wie ähnlich sie Ihnen aussehen.

- Es dauert etwa 5 bis 10 Minuten. Es gibt keine richtigen oder falschen Antworten.
- Wir speichern Ihre Antworten, wie lange jede gedauert hat und, falls Sie über eine
  Rekrutierungsplattform kommen, deren Teilnehmer-ID. Sonst speichern wir nichts über Sie. Sie
  können jederzeit mit „Beenden und verlassen“ unten auf jeder Seite aufhören.

Sind Sie mit der Teilnahme einverstanden?
""",
    "agree": "Einverstanden, beginnen",
    "decline": "Nicht einverstanden",
    "declined": """
### Kein Problem

Sie haben abgelehnt, daher wurde nichts gespeichert. Sie können dieses Fenster schließen.
""",
    "instructions_intro": """
### So funktioniert es

Jede Seite zeigt ein **Produkt** und eine oder mehrere **Gruppen von fünf Empfehlungen**. Beurteilen
Sie, wie die Produkte **aussehen**: Form, Farbe, Muster, Stil. Achten Sie nicht auf Hintergrund,
Licht und Kamerawinkel der Fotos. Jede Antwort wird gespeichert, sobald Sie sie absenden; lädt die
Seite neu, machen Sie dort weiter, wo Sie waren.
""",
    "instructions_rating": """
**Bewertungsseiten.** Bewerten Sie, wie ähnlich die fünf Empfehlungen dem Produkt sind, von
**1 (überhaupt nicht ähnlich)** bis **7 (äußerst ähnlich)**.
*Beispiel: Für eine rot gestreifte Tasse verdienen fünf rot gestreifte Tassen eine 7, fünf blaue
Stühle eine 1.*
""",
    "instructions_rating_ticks": """
Sie haken außerdem jede Empfehlung ab, die Sie dem Produkt ähnlich finden.
""",
    "instructions_pairwise": """
**Vergleichsseiten.** Zwei Gruppen, **A** und **B**, werden gezeigt. Wählen Sie die Gruppe, die
dem Produkt ähnlicher ist, oder „gleich ähnlich“.
*Beispiel: Für eine rot gestreifte Tasse schlägt eine Gruppe roter Tassen eine Gruppe grüner Stühle.*
""",
    "instructions_ranking": """
**Beste-und-schlechteste-Seiten.** Mehrere Gruppen werden gezeigt. Wählen Sie die Gruppe, die dem
Produkt **am ähnlichsten** ist, und die, die ihm **am wenigsten** ähnlich ist.
""",
    "instructions_time_limit": "Bitte beantworten Sie jede Seite innerhalb von {minutes} Minuten; danach geht "
    "Ihr Platz an jemand anderen.",
    "start": "Beginnen",
    "comprehension_intro": """
### Übung ({attempt} von 2)

Bevor die Studie beginnt, einige Übungsseiten. Jede zeigt ein Produkt und zwei Gruppen: eine davon
ist dem Produkt deutlich ähnlicher. Wählen Sie sie auf jeder Seite.
""",
    "comprehension_question": "Übungsseite {number}: Welche Gruppe ist dem Produkt ähnlicher?",
    "comprehension_missing": "Bitte beantworten Sie jede Übungsseite.",
    "comprehension_retry": "Nicht ganz: Übungsseite {screens} wurde falsch beantwortet. Auf jeder Übungsseite "
    "zeigt eine Gruppe Produkte derselben Art wie das Produkt, die andere Produkte einer anderen Art; die erste "
    "ist ähnlicher. Bitte versuchen Sie es noch einmal mit neuen Seiten.",
    "comprehension_passed": "Sehr gut, alle Übungsseiten richtig beantwortet. Die Studie beginnt jetzt.",
    "progress": "Seite {number} von {total}",
    "product": "Produkt",
    "recommended": "Als ähnlich empfohlen",
    "set": "Gruppe {label}",
    "tick_prompt": "Haken Sie jede Empfehlung ab, die Sie dem Produkt ähnlich finden:",
    "rating_question": "Wie ähnlich sind die fünf Empfehlungen dem Produkt?",
    "scale_1": "1 · überhaupt nicht ähnlich",
    "scale_2": "2",
    "scale_3": "3",
    "scale_4": "4 · etwas ähnlich",
    "scale_5": "5",
    "scale_6": "6",
    "scale_7": "7 · äußerst ähnlich",
    "rating_missing": "Bitte wählen Sie vor dem Absenden eine Bewertung von 1 bis 7.",
    "pairwise_question": "Welche Gruppe ist dem Produkt ähnlicher?",
    "pairwise_left": "A ist ähnlicher",
    "pairwise_tie": "Gleich ähnlich",
    "pairwise_right": "B ist ähnlicher",
    "pairwise_missing": "Bitte wählen Sie vor dem Absenden A, B oder gleich ähnlich.",
    "ranking_best": "Ähnlichste Gruppe",
    "ranking_worst": "Am wenigsten ähnliche Gruppe",
    "ranking_missing": "Bitte wählen Sie die ähnlichste und die am wenigsten ähnliche Gruppe.",
    "ranking_same": "Die ähnlichste und die am wenigsten ähnliche Gruppe müssen verschieden sein.",
    "instructions_swipe": """
**Einkaufsrunden.** Jede Runde zeigt eine Art von Produkt. Zuerst sehen Sie Produkte dieser Art
einzeln: Drücken Sie **Gefällt mir** bei einem, das Ihnen gefällt, **Nichts für mich** bei einem,
das Ihnen nicht gefällt. Das erste Produkt, das Ihnen gefällt, ist *Ihr Produkt*. Dann sehen Sie
einzeln Produkte, die ein Shop dazu empfiehlt: Drücken Sie **Gefällt mir**, wenn Sie es neben Ihrem
Produkt empfohlen bekommen möchten, sonst **Nichts für mich**. Am Computer gehen auch die
Pfeiltasten: **←** nichts für mich, **→** gefällt mir.
""",
    "instructions_swipe_pick": """
In jeder Runde markieren Sie bis zu {likes} Produkte mit Gefällt mir; dann wählen Sie das, das Ihnen am
besten gefällt: Es ist *Ihr Produkt*.
""",
    "instructions_swipe_rate": """
Am Ende jeder Runde bewerten Sie außerdem, wie ähnlich die Empfehlungen Ihrem Produkt sind.
""",
    "swipe_like": "Gefällt mir",
    "swipe_dislike": "Nichts für mich",
    "swipe_choose_prompt": "Gefällt Ihnen dieses Produkt?",
    "swipe_choose_progress": "Produkt {shown} von höchstens {limit}",
    "swipe_your_product": "Ihr Produkt",
    "swipe_judge_prompt": "Für Ihr Produkt empfohlen ({position} von {total}): Gefällt es Ihnen?",
    "swipe_pick_prompt": "Welches der Produkte, die Ihnen gefallen, gefällt Ihnen am besten?",
    "swipe_pick": "{number} wählen",
    "swipe_rate_question": "Wie ähnlich sind diese Empfehlungen Ihrem Produkt?",
    "submit": "Absenden",
    "questions": """
### Fast geschafft

Diese Fragen sind freiwillig. Beantworten Sie, was Sie möchten, und drücken Sie dann **Fertig**.
""",
    "question_placeholder": "Keine Angabe",
    "comment": "Haben Sie Anmerkungen zur Studie? (freiwillig)",
    "finish": "Fertig",
    "done": """
### Vielen Dank, Sie sind fertig

Ihre Antworten wurden gespeichert.
""",
    "completion_code": "Ihr Abschlusscode: **{code}**",
    "redirect_countdown": "Sie werden in {seconds} Sekunden zur Rekrutierungsseite zurückgeleitet.",
    "redirect_now": "Jetzt zur Rekrutierungsseite zurückkehren",
    "redirect_stop": "Auf dieser Seite bleiben",
    "redirect_stopped": "Die Weiterleitung ist angehalten. Nutzen Sie die Schaltfläche unten, wenn Sie so weit sind.",
    "alt_product": "Das Produkt, mit dem verglichen wird",
    "alt_your_product": "Das Produkt, das Sie gewählt haben",
    "alt_recommended": "Empfohlenes Produkt {number} von {total}",
    "alt_set_item": "{set}: Produkt {number} von {total}",
    "alt_swipe_product": "Produkt, das Ihnen gefällt oder nicht",
    "alt_liked": "Produkt {number}, das Ihnen gefällt",
    "honeypot_label": "Dieses Feld leer lassen",
    "leave": "Beenden und verlassen",
    "leave_confirm": "Möchten Sie wirklich aufhören? Ihre bisherigen Antworten bleiben erhalten, aber Sie "
    "können später nicht weitermachen.",
    "leave_yes": "Ja, jetzt aufhören",
    "leave_no": "Nein, weitermachen",
    "returned": """
### Sie haben die Studie verlassen

Danke für Ihre Zeit. Bitte geben Sie diese Studie auf der Rekrutierungsplattform **zurück** (bei
Prolific: „Return submission“), damit Ihr Platz an jemand anderen gehen kann. Sie können dieses
Fenster schließen.
""",
    "timed_out": """
### Ihre Zeit ist abgelaufen

Lange kam keine Antwort, daher wurde Ihr Platz an jemand anderen vergeben. Bitte geben Sie diese
Studie auf der Rekrutierungsplattform **zurück**. Sie können dieses Fenster schließen.
""",
    "screened_out": """
### Vielen Dank

Die Übungsseiten haben gezeigt, dass diese Studie diesmal nicht passt; sie endet daher hier. Sie
sehen keine weiteren Seiten.
""",
    "use_a_computer": """
### Bitte nutzen Sie einen Computer

Diese Studie zeigt mehrere Gruppen von Produktfotos nebeneinander, die nicht auf den Bildschirm
eines Telefons oder Tablets passen. Bitte öffnen Sie denselben Link auf einem Computer (Laptop oder
Desktop). Vielen Dank!
""",
    "preview_banner": "**VORSCHAU**: Dies ist der Ablauf für Teilnehmende als Vorschau für Forschende. Nichts, "
    "was Sie hier tun, wird gespeichert; die Daten der Studie bleiben unberührt.",
    "preview_invalid": "Dieser Vorschau-Link ist nicht gültig. Öffnen Sie die Vorschau erneut von der "
    "Verwaltungsseite.",
    "db_unavailable": "Die Studie ist kurz nicht erreichbar. Jede abgesendete Antwort ist gespeichert. Bitte "
    "laden Sie diese Seite in einer Minute neu, um dort weiterzumachen, wo Sie waren.",
    "invalid_link": "Dieser Link zur Umfrage ist nicht gültig. Bitte öffnen Sie den Link, den Sie erhalten "
    "haben, erneut.",
    "unavailable": "Diese Studie nimmt derzeit keine neuen Teilnehmenden auf. Danke für Ihr Interesse.",
}

CATALOG: dict[str, dict[str, str]] = {"en": EN, "de": DE}
LANGUAGES = tuple(CATALOG)
KEYS = frozenset(EN)


def placeholders(text: str) -> frozenset[str]:
    """The ``{name}`` fields of a text."""
    return frozenset(name for _, name, _, _ in string.Formatter().parse(text) if name is not None)


def check_overrides(overrides: Mapping[str, Any]) -> list[str]:
    """What is wrong with text overrides (empty: nothing): unknown keys, non-strings, and
    placeholders that differ from the built-in text's (the page fills exactly those)."""
    problems = []
    for key, text in overrides.items():
        if key not in KEYS:
            problems.append(f"texts.{key}: unknown text; valid: {', '.join(sorted(KEYS))}")
        elif not isinstance(text, str):
            problems.append(f"texts.{key}: must be a (Markdown) string, got {text!r}")
        elif placeholders(text) != placeholders(EN[key]):
            want = ", ".join("{" + p + "}" for p in sorted(placeholders(EN[key]))) or "no {placeholders}"
            problems.append(f"texts.{key}: must use exactly {want}")
    return problems


@dataclass(frozen=True)
class Catalog:
    """The texts of one study: its language's catalog with its overrides on top."""

    language: str = "en"
    overrides: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.language not in CATALOG:
            raise ValueError(f"language must be one of {', '.join(LANGUAGES)}, got {self.language!r}")
        problems = check_overrides(self.overrides)
        if problems:
            raise ValueError("; ".join(problems))

    def __getitem__(self, key: str) -> str:
        return self.overrides.get(key) or CATALOG[self.language][key]

    def fmt(self, key: str, **values: object) -> str:
        return self[key].format(**values)

    def scale(self) -> dict[int, str]:
        return {i: self[f"scale_{i}"] for i in range(1, 8)}

    def pairwise_options(self) -> dict[str, str]:
        return {c: self[f"pairwise_{c}"] for c in ("left", "tie", "right")}
