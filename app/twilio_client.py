"""The official twilio client, pointed at TWILIO_API_BASE_URL (Twilio's own by default, a local
double in tests and staging): twilio-python has no base-URL setting, so an HttpClient subclass
rewrites the host of every request it sends."""

from __future__ import annotations

from typing import Any

from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from app.config import Settings

TWILIO_API = "https://api.twilio.com"
# A send that has not been answered by then is 'unknown': looked up before any resend.
REQUEST_TIMEOUT_SECONDS = 10.0


class BaseUrlHttpClient(TwilioHttpClient):
    def __init__(self, base_url: str, timeout: float = REQUEST_TIMEOUT_SECONDS):
        super().__init__(timeout=timeout)
        self.base_url = base_url.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any):  # type: ignore[override]
        if url.startswith(TWILIO_API) and self.base_url != TWILIO_API:
            url = self.base_url + url[len(TWILIO_API) :]
        return super().request(method, url, *args, **kwargs)


def make_client(settings: Settings) -> Client | None:
    """The client, or None when SMS and WhatsApp are not configured."""
    if not settings.twilio_account_sid or not settings.twilio_auth_token:
        return None
    return Client(
        settings.twilio_account_sid,
        settings.twilio_auth_token,
        http_client=BaseUrlHttpClient(settings.twilio_api_base_url),
    )
