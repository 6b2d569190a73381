"""The participant app needs none of the similarity stack: importing the app and its pages, and
reading a built study's config as the service does, loads no torch, torchvision, open_clip,
onnxruntime or numba (checked in a fresh interpreter). tests/test_served.py checks the same on a
served app after a whole participation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HEAVY = ("torch", "torchvision", "open_clip", "onnxruntime", "numba")
ROOT = Path(__file__).resolve().parents[1]


def test_the_app_and_its_pages_import_no_similarity_stack():
    code = f"""
import runpy, sys
runpy.run_path({str(ROOT / "survey" / "web" / "app.py")!r}, run_name="app_under_test")  # the main module, not run
from survey.web.views import admin, participant
from survey.study.config import Component, StudyConfig
config = StudyConfig(name="s", catalog="c", methods=(Component("ssim"), Component("clip")),
                     segmenters=(Component("none"), Component("u2netp")))
assert StudyConfig.from_dict(config.to_dict()) == config  # what the service does with a stored study
print(sorted(m for m in {HEAVY!r} if m in sys.modules))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout


def test_the_analysis_stack_loads_only_when_the_admin_page_is_opened():
    """A process that serves only participants never loads pandas, scipy, statsmodels or matplotlib
    (about 170 MB): the admin page imports them when it is opened."""
    analysis = ("pandas", "scipy", "statsmodels", "matplotlib")
    code = f"""
import runpy, sys
runpy.run_path({str(ROOT / "survey" / "web" / "app.py")!r}, run_name="app_under_test")
from survey.web.views import participant
print(sorted(m for m in {analysis!r} if m in sys.modules))
from survey.web.views import admin
print(sorted(m for m in {analysis!r} if m in sys.modules))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    before, after = done.stdout.strip().splitlines()[-2:]
    assert before == "[]", before
    assert after != "[]"  # the check can see these modules when they are loaded
