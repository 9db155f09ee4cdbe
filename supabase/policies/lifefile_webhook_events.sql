-- private.lifefile_webhook_events: the Lifefile inbox. Not exposed: only the service, the
-- worker and operators (system sessions) use it.

revoke all on private.lifefile_webhook_events from public, anon, authenticated, service_role;
