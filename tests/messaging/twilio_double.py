"""A local Twilio double: an HTTP server speaking the Messages API as twilio-python uses it.

POST /2010-04-01/Accounts/{sid}/Messages.json takes the form parameters (To, From or
MessagingServiceSid, Body or ContentSid + ContentVariables, StatusCallback) and answers 201 with
the message JSON (an SM... sid, status queued), or Twilio's error JSON ({"code", "message",
"more_info", "status"}) for the numbers told to fail; GET Messages.json lists messages (To,
DateSent> filters) and GET Messages/{sid}.json fetches one. Status callbacks are signed exactly
as Twilio signs them (RequestValidator.compute_signature over the full URL and the sorted form)
and can be sent out of order and twice.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from twilio.request_validator import RequestValidator

ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "double-auth-token"
ERRORS = {
    21211: (400, "The 'To' number is not a valid phone number."),
    21614: (400, "'To' number is not a valid mobile number"),
    21408: (400, "Permission to send an SMS has not been enabled for the region"),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21611: (400, "This 'From' number has exceeded the maximum number of queued messages"),
    20429: (429, "Too Many Requests"),
    30003: (400, "Unreachable destination handset"),
    30005: (400, "Unknown destination handset"),
    30006: (400, "Landline or unreachable carrier"),
    30008: (400, "Unknown error"),
    63014: (400, "The user blocked the WhatsApp sender"),
    63016: (400, "Failed to send freeform message because you are outside the allowed window"),
    20500: (500, "Internal Server Error"),
}

Poster = Callable[[str, dict[str, str], dict[str, str]], Any]


class TwilioDouble:
    def __init__(self, latency: float = 0.0):
        self.latency = latency
        self.messages: dict[str, dict[str, Any]] = {}
        self.order: list[str] = []
        self.requests: list[dict[str, str]] = []
        self.received_at: dict[str, float] = {}  # sid -> when the create request arrived
        # To (or Body text) -> error code answered instead of a 201, once or always.
        self.fail_always: dict[str, int] = {}
        self.fail_once: dict[str, list[int]] = {}
        # To numbers whose message is created but whose answer never comes (a lost response).
        self.drop_response: set[str] = set()
        self.lock = threading.Lock()
        self.callback_poster: Poster = _urllib_post
        self.auto_callbacks: tuple[str, ...] = ()
        self.server = _Server(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> TwilioDouble:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- what tests look at ----------------------------------------------------------------

    def sent_to(self, to: str) -> list[dict[str, Any]]:
        with self.lock:
            return [self.messages[s] for s in self.order if self.messages[s]["to"] == to]

    def count(self) -> int:
        with self.lock:
            return len(self.order)

    # -- status callbacks ------------------------------------------------------------------

    def callback(self, sid: str, status: str, error_code: int | None = None) -> Any:
        """Send one signed status callback of message ``sid``."""
        message = self.messages[sid]
        url = message["status_callback"]
        params = {
            "MessageSid": sid,
            "MessageStatus": status,
            "AccountSid": ACCOUNT_SID,
            "From": message["from"] or "",
            "To": message["to"],
        }
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        signature = RequestValidator(AUTH_TOKEN).compute_signature(url, params)
        with self.lock:
            message["status"] = status
        return self.callback_poster(url, params, {"X-Twilio-Signature": signature})

    def inbound(self, url: str, from_: str, body: str, opt_out_type: str | None = None) -> Any:
        params = {
            "MessageSid": "SM" + secrets.token_hex(16),
            "AccountSid": ACCOUNT_SID,
            "From": from_,
            "To": "+15550001111",
            "Body": body,
        }
        if opt_out_type:
            params["OptOutType"] = opt_out_type
        signature = RequestValidator(AUTH_TOKEN).compute_signature(url, params)
        return self.callback_poster(url, params, {"X-Twilio-Signature": signature})

    # -- the HTTP side ---------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:
                pass

            def _answer(self, status: int, payload: object) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
                path = urllib.parse.urlparse(self.path).path
                if not path.endswith("/Messages.json"):
                    self._answer(404, {"code": 20404, "message": "not found", "status": 404})
                    return
                if double.latency:
                    time.sleep(double.latency)
                double._create(self, form)

            def do_GET(self) -> None:
                parsed = urllib.parse.urlparse(self.path)
                query = dict(urllib.parse.parse_qsl(parsed.query))
                if parsed.path.endswith("/Messages.json"):
                    after = query.get("DateSent>")
                    since = datetime.fromisoformat(after) if after else None
                    if since is not None and since.tzinfo is None:
                        since = since.replace(tzinfo=UTC)
                    with double.lock:
                        found = [
                            double.messages[s]
                            for s in double.order
                            if ("To" not in query or double.messages[s]["to"] == query["To"])
                            and (
                                since is None
                                or parsedate_to_datetime(double.messages[s]["date_sent"]) >= since
                            )
                        ]
                    self._answer(
                        200,
                        {
                            "messages": found,
                            "page": 0,
                            "page_size": 200,
                            "next_page_uri": None,
                            "previous_page_uri": None,
                            "first_page_uri": parsed.path,
                            "uri": parsed.path,
                            "start": 0,
                            "end": max(len(found) - 1, 0),
                        },
                    )
                    return
                sid = parsed.path.rsplit("/", 1)[-1].removesuffix(".json")
                message = double.messages.get(sid)
                if message is None:
                    self._answer(
                        404,
                        {
                            "code": 20404,
                            "message": f"The requested resource {parsed.path} was not found",
                            "more_info": "https://www.twilio.com/docs/errors/20404",
                            "status": 404,
                        },
                    )
                    return
                self._answer(200, message)

        return Handler

    def _create(self, handler: Any, form: dict[str, str]) -> None:
        to = form.get("To", "")
        with self.lock:
            self.requests.append(form)
            code = self.fail_always.get(to)
            if code is None and self.fail_once.get(to):
                code = self.fail_once[to].pop(0)
        number = to.removeprefix("whatsapp:")
        if code is None and not (number.startswith("+") and number[1:].isdigit()):
            code = 21211
        if code is not None:
            status, message = ERRORS[code]
            handler._answer(
                status,
                {
                    "code": code,
                    "message": message,
                    "more_info": f"https://www.twilio.com/docs/errors/{code}",
                    "status": status,
                },
            )
            return
        sid = "SM" + secrets.token_hex(16)
        now = format_datetime(datetime.now(UTC), usegmt=True)
        message = {
            "sid": sid,
            "account_sid": ACCOUNT_SID,
            "to": to,
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "body": form.get("Body", ""),
            "content_sid": form.get("ContentSid"),
            "content_variables": form.get("ContentVariables"),
            "status": "queued",
            "num_segments": "1",
            "direction": "outbound-api",
            "date_created": now,
            "date_updated": now,
            "date_sent": now,
            "error_code": None,
            "error_message": None,
            "price": None,
            "status_callback": form.get("StatusCallback"),
            "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json",
        }
        received_at = time.time()
        with self.lock:
            self.messages[sid] = message
            self.received_at[sid] = received_at
            self.order.append(sid)
            dropped = to in self.drop_response
        if dropped:
            handler.close_connection = True
            handler.connection.close()  # the message exists; the client never hears so
            return
        handler._answer(201, message)
        for status in self.auto_callbacks:
            if message["status_callback"]:
                threading.Thread(target=self.callback, args=(sid, status), daemon=True).start()


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # Twilio takes many connections at once; so does the double


def _urllib_post(url: str, params: dict[str, str], headers: dict[str, str]) -> int:
    import urllib.request

    if not url.startswith(("http://", "https://")):
        raise ValueError(f"a status callback is an http(s) URL, not {url!r}")
    request = urllib.request.Request(  # noqa: S310 (http(s) only, checked above)
        url, data=urllib.parse.urlencode(params).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
