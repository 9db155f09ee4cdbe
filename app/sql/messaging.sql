-- Named queries of patient messaging: the worker claims, records and delivers; the Twilio
-- endpoints store callbacks; operators list, show, retry and cancel. Each one call or one read.

-- name: claim_notification_deliveries
-- Claim up to %(batch_size)s due SMS/WhatsApp deliveries within the shared send budget.
select
    c.id,
    c.channel,
    c.address,
    c.body,
    c.content_sid,
    c.content_variables,
    c.lookup,
    c.created_at,
    c.attempts
from private.claim_notification_deliveries(
    %(batch_size)s, %(per_second)s, %(support_phone)s, %(app_base_url)s, %(channels)s
) as c;

-- name: record_notification_send
-- Record Twilio's answer to one send; returns the delivery's resulting status.
select private.record_notification_send(
    %(id)s, %(outcome)s, %(sid)s, %(provider_status)s, %(error_code)s, %(error_message)s,
    %(http_status)s
);

-- name: twilio_sid_from_callbacks
-- The sid Twilio's callbacks gave a delivery, if any arrived.
select private.twilio_sid_from_callbacks(%(id)s);

-- name: apply_delivery_status
-- Apply a status learnt from Twilio (lookup, reconciliation), only forward.
select private.apply_delivery_status(
    %(id)s, %(sid)s, %(status)s, %(error_code)s, %(error_message)s
);

-- name: deliver_chat_notifications
-- Post up to %(batch_size)s due chat deliveries into their tickets' threads; returns how many.
select private.deliver_chat_notifications(%(batch_size)s, %(support_phone)s, %(app_base_url)s);

-- name: receive_twilio_delivery
-- Store one Twilio callback or inbound message; one row (id, status, duplicate, error).
select
    r.event_id,
    r.event_status,
    r.duplicate,
    r.error
from private.receive_twilio_delivery(
    %(kind)s, %(params)s, %(delivery_id)s, %(client_addr)s
) as r;

-- name: process_twilio_events
-- Process up to %(batch_size)s pending Twilio events; returns how many.
select private.process_twilio_events(%(batch_size)s);

-- name: deliveries_to_reconcile
-- Messages handed to Twilio since %(since)s that have no final status yet.
select
    d.id,
    d.provider_message_id
from public.notification_deliveries as d
where
    d.status in ('sent', 'sending')
    and d.provider_message_id is not null
    and d.sent_at >= now() - %(since)s::interval
order by d.sent_at
limit %(max_rows)s;

-- name: list_notification_deliveries
-- The newest deliveries, optionally of one status or one ticket.
select
    d.id,
    d.created_at,
    d.status,
    d.channel,
    d.event,
    d.address,
    d.suppressed_reason,
    d.attempts,
    d.not_before,
    d.error_code,
    d.ticket_id,
    d.reservation_id
from public.notification_deliveries as d
where
    (%(status)s::text is null or d.status = %(status)s::text)
    and (%(ticket_id)s::uuid is null or d.ticket_id = %(ticket_id)s::uuid)
order by d.created_at desc
limit %(max_rows)s;

-- name: show_notification_delivery
-- One delivery, everything stored about it, with its rule's name.
with wanted as (select %(id)s::uuid as id)

select
    d.id,
    r.name as rule_name,
    d.event,
    d.status,
    d.suppressed_reason,
    d.channel,
    d.address,
    d.recipient_id,
    d.ticket_id,
    d.reservation_id,
    d.request_id,
    d.appointment_time,
    d.recipient_timezone,
    d.not_before,
    d.attempts,
    d.next_attempt_at,
    d.provider_message_id,
    d.provider_status,
    d.error_code,
    d.error_message,
    d.segments,
    d.body,
    d.content_sid,
    d.dedupe_key,
    d.created_at,
    d.sent_at,
    d.delivered_at,
    d.read_at
from public.notification_deliveries as d
inner join wanted on d.id = wanted.id
left join public.notification_rules as r on d.rule_id = r.id;

-- name: retry_notification_delivery
-- Queue one failed, undelivered, suppressed or cancelled delivery again now.
select
    d.id,
    d.status
from private.retry_notification_delivery(%(id)s) as d;

-- name: retry_notification_deliveries
-- Queue every delivery of one status again now; their ids.
select
    d.id,
    d.status
from (select %(status)s::text as status) as wanted
inner join public.notification_deliveries as x on wanted.status = x.status
cross join lateral private.retry_notification_delivery(x.id) as d;

-- name: cancel_notification_delivery
-- Cancel one delivery not yet handed to Twilio.
select
    d.id,
    d.status
from private.cancel_notification_delivery(%(id)s) as d;

-- name: list_twilio_events
-- The newest Twilio inbox events, optionally of one status.
select
    e.id,
    e.received_at,
    e.kind,
    e.status,
    e.message_sid,
    e.message_status,
    e.delivery_id,
    e.note
from private.twilio_webhook_events as e
where %(status)s::text is null or e.status = %(status)s::text
order by e.seq desc
limit %(max_rows)s;
