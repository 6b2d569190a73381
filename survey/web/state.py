"""Every key this app keeps in Streamlit's session state or URL, in one place.

Session state is not durable (lost on reload); answers never live here, only UI flags.
"""

TOKEN_PARAM = "p"  # URL query parameter carrying the participant's unguessable token
PREVIEW_PARAM = "preview"  # URL query parameter carrying the admin page's preview key (survey/web/preview.py)
PREVIEW_SANDBOX = "preview_sandbox"  # (study id, session factory of the preview's in-memory copy)
DECLINED = "declined_consent"
TOKEN = "participant_token"  # copy of the URL token, restored if the back button drops it
ADMIN_OK = "admin_signed_in"  # time.monotonic() of the signed-in admin's last action (survey/web/sign_in.py)
ADMIN_BROWSER = "admin_browser_session"  # random id of this browser session, sign-in attempts are counted under it
PREVIEW_ALLOWED = "preview_allowed"  # the study whose preview link this browser session opened (checked once)
ADMIN_UNBLIND = "admin_unblind"
LEAVING = "leaving"  # "Stop and leave" pressed, awaiting confirmation
PRACTICE_FEEDBACK = "practice_feedback"  # what the last wrong comprehension attempt got wrong
PRACTICE_PASSED = "practice_passed"  # the comprehension phase was just passed: say so once
FORM_ERROR = "form_error"  # (form key, message): what the last submit of that form lacked; shown once
SUBMITTED = "submitted_forms"  # (token, form key) of every submit stored: a double click stores nothing twice
SUBMIT_FAILED = "submit_failed"  # the database was unreachable while a submit was stored: say so once
