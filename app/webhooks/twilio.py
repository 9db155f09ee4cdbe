"""POST /api/webhooks/twilio/status and /api/webhooks/twilio/inbound: Twilio's delivery status
callbacks and inbound messages, through the shared inbox path (app/webhooks/inbox.py).

Each request is verified with twilio's RequestValidator against the public URL (PUBLIC_BASE_URL
plus the path and query, so a TLS-terminating proxy does not break it), stored in
private.twilio_webhook_events by one SQL call that commits before the answer (deduplicated on
(MessageSid, MessageStatus), inbound on MessageSid), and processed by the worker. Responses:

    204 stored or duplicate (status)      200 empty TwiML (inbound)
    403 bad or missing X-Twilio-Signature (nothing stored)
    413 body too large    429 over the client's rate    503 not configured / database down
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from flask import Blueprint, Flask, Response, current_app, request
from psycopg.types.json import Jsonb
from twilio.request_validator import RequestValidator

from app.config import Settings
from app.health import FEATURES_KEY
from app.queries import load_queries
from app.webhooks import inbox

STATUS_PATH = "/api/webhooks/twilio/status"
INBOUND_PATH = "/api/webhooks/twilio/inbound"
CHANNEL = "twilio_webhook_events"
EXTENSION_KEY = "carehub.twilio"
MAX_BODY_BYTES = 64 * 1024
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
SMS_SETTINGS = (
    "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_PHONE_NUMBER or TWILIO_MESSAGING_SERVICE_SID"
)
WHATSAPP_SETTINGS = "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_WHATSAPP_FROM"

blueprint = Blueprint("twilio_webhook", __name__)
log = logging.getLogger(__name__)
queries = load_queries("messaging.sql")
INBOX = inbox.Inbox(
    provider="twilio",
    channel=CHANNEL,
    store_query=queries.receive_twilio_delivery,
    process_query=queries.process_twilio_events,
)


@dataclass
class TwilioState:
    settings: Settings
    refused_here: inbox.LocalBuckets | None = None
    waker: inbox.WorkerWaker = field(default_factory=lambda: inbox.WorkerWaker(CHANNEL))


def init_app(app: Flask, settings: Settings) -> None:
    limit = settings.lifefile_unauthenticated_rate_limit
    app.extensions[EXTENSION_KEY] = TwilioState(
        settings, inbox.LocalBuckets(limit) if limit else None
    )
    features = app.extensions.setdefault(FEATURES_KEY, {})
    features["sms"] = (
        "enabled" if settings.sms_configured else f"disabled: not configured ({SMS_SETTINGS})"
    )
    features["whatsapp"] = (
        "enabled"
        if settings.whatsapp_configured
        else f"disabled: not configured ({WHATSAPP_SETTINGS})"
    )
    app.register_blueprint(blueprint)


def public_url(settings: Settings) -> str:
    """The URL Twilio signed: the public base, this path and the query string as sent."""
    query = request.query_string.decode("latin-1")
    base = settings.public_base_url or request.host_url.rstrip("/")
    return f"{base}{request.path}" + (f"?{query}" if query else "")


def _receive(kind: str) -> Response | tuple[Response, int]:
    state: TwilioState = current_app.extensions[EXTENSION_KEY]
    settings = state.settings
    if not settings.twilio_auth_token:
        return inbox.error(503, "not configured", f"set {SMS_SETTINGS}")
    if (request.content_length or 0) > MAX_BODY_BYTES:
        return inbox.error(413, "too large", f"at most {MAX_BODY_BYTES} bytes")
    params = request.form.to_dict(flat=True)
    signature = request.headers.get("X-Twilio-Signature", "")
    try:
        valid = bool(signature) and RequestValidator(settings.twilio_auth_token).validate(
            public_url(settings), params, signature
        )
    except Exception:  # a malformed header is a refusal, never a 500
        valid = False
    client = inbox.client_address(
        request.remote_addr, request.headers.get("X-Forwarded-For"), settings.trusted_proxies
    )
    refusal = inbox.admit(
        INBOX, valid, client, None, settings.lifefile_unauthenticated_rate_limit, state.refused_here
    )
    if refusal is not None:
        return refusal
    if not valid:
        log.warning("twilio webhook: refused a request from %s: bad signature", client)
        return inbox.error(403, "forbidden", "the X-Twilio-Signature does not match")
    try:
        inbox.store_and_wake(
            INBOX,
            state.waker,
            {
                "kind": kind,
                "params": Jsonb(params),
                "delivery_id": request.args.get("delivery_id"),
                "client_addr": client,
            },
        )
    except inbox.DATABASE_DOWN as exc:
        return inbox.unavailable(exc, "twilio webhook")
    if kind == "inbound":
        return Response(EMPTY_TWIML, status=200, mimetype="text/xml")
    return Response(status=204)


@blueprint.post(STATUS_PATH)
def status_callback() -> Response | tuple[Response, int]:
    return _receive("status")


@blueprint.post(INBOUND_PATH)
def inbound_message() -> Response | tuple[Response, int]:
    return _receive("inbound")
