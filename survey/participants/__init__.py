"""The participant service: from arrival to completion code. Planning trials (``assignment``,
``planning``), answering them (``answers``, ``records``, ``checks``, ``comprehension``,
``sanitize``), a participant's lifecycle (``lifecycle``) and the study's live state
(``status``), behind one facade (``service``).

Sits above :mod:`survey.study` and :mod:`db`; the web app and the analysis sit above it.
"""
