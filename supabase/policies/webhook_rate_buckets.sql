-- private.webhook_rate_buckets: the webhook endpoints' shared rate limits. Not exposed: only
-- the service and the worker (system sessions) use it.

revoke all on private.webhook_rate_buckets from public, anon, authenticated, service_role;
