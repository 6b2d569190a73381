"""Every key this app keeps in Streamlit's session state or URL, in one place.

Session state is not durable (lost on reload); answers never live here, only UI flags.
"""

TOKEN_PARAM = "p"  # URL query parameter carrying the participant's unguessable token
DECLINED = "declined_consent"
TOKEN = "participant_token"  # copy of the URL token, restored if the back button drops it
ADMIN_OK = "admin_signed_in"
ADMIN_UNBLIND = "admin_unblind"
