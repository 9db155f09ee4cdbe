-- Named queries every webhook endpoint shares (app/webhooks/inbox.py): the shared rate limits
-- and waking the worker. Each provider's own storing and processing calls are in its file.

-- name: take_webhook_token
-- Take one token from a rate-limit bucket; whether the request may go on, and else when.
select
    t.allowed,
    t.retry_after
from private.take_webhook_token(%(bucket)s, %(capacity)s, %(per_second)s) as t;

-- name: wake_webhook_worker
-- Tell the worker new events wait on a channel (its own transaction, after the storing one).
select pg_notify(%(channel)s, 'received');

-- name: prune_webhook_rate_buckets
-- Forget rate-limit buckets untouched for an hour (the worker's sweep); returns how many.
select private.prune_webhook_rate_buckets();
