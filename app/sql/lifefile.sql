-- Named queries of the Lifefile webhook: the service stores deliveries, the worker processes
-- them, operators list, show and replay them. Each is one call of a SQL function or one read.

-- name: receive_lifefile_delivery
-- Store one delivery in the inbox; one row per event (id, status, duplicate, error).
select r.event_id, r.event_status, r.duplicate, r.error
from private.receive_lifefile_delivery(
    %(body)s, %(headers)s, %(client_addr)s, %(events)s, %(error)s
) as r;
