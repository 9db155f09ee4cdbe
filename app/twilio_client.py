"""The official twilio client, pointed at TWILIO_API_BASE_URL (Twilio's own by default, a local
double in tests and staging): twilio-python has no base-URL setting, so an HttpClient subclass
rewrites the host of every request it sends."""

from __future__ import annotations

import logging
from typing import Any

from requests.adapters import HTTPAdapter
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from app.config import Settings

TWILIO_API = "https://api.twilio.com"
# A send that has not been answered by then is 'unknown': looked up before any resend.
REQUEST_TIMEOUT_SECONDS = 10.0
# As many pooled connections as the sender has threads (requests' default pool keeps 10).
POOL_SIZE = 64
# twilio-python logs every request's headers at INFO: keep its log for warnings.
logging.getLogger("twilio.http_client").setLevel(logging.WARNING)


class BaseUrlHttpClient(TwilioHttpClient):
    def __init__(self, base_url: str, timeout: float = REQUEST_TIMEOUT_SECONDS):
        super().__init__(timeout=timeout)
        self.base_url = base_url.rstrip("/")
        if self.session is not None:
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=POOL_SIZE)
            self.session.mount("https://", adapter)
            self.session.mount("http://", adapter)

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
