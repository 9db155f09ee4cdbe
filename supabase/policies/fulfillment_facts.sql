-- private.fulfillment_facts, fulfillment_dirty_periods, fulfillment_analytics_state: the
-- analytics' inputs and bookkeeping. Not exposed: only the triggers, the worker and operators
-- (system sessions) use them.

revoke all on private.fulfillment_facts from public, anon, authenticated, service_role;
revoke all on private.fulfillment_dirty_periods from public, anon, authenticated, service_role;
revoke all on private.fulfillment_analytics_state from public, anon, authenticated, service_role;
