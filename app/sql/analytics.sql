-- Analytics queries the worker, the service and the CLI run; most are one call of a SQL
-- function (supabase/functions-sql/analytics_rollups.sql, operations_report.sql).

-- name: refresh_fulfillment_analytics
-- Recompute up to %(batch_size)s dirty markings; returns how many it consumed.
select r.consumed
from private.refresh_fulfillment_analytics(%(batch_size)s) as r (consumed);

-- name: recompute_fulfillment_analytics
-- Full recompute of one pharmacy (all when null) over a period (open ends when null).
select r.written
from private.recompute_fulfillment_analytics(
    %(from_date)s, %(to_date)s, %(pharmacy_id)s
) as r (written);

-- name: analytics_status
-- Freshness only, for monitoring: when the rollups were last brought up to date, and how many
-- distinct periods wait for a recompute.
select
    s.last_recompute_at,
    (
        select count(*) from (
            select distinct
                d.pharmacy_id,
                d.grain,
                d.period_start
            from private.fulfillment_dirty_periods as d
        ) as p
    ) as dirty_periods
from private.fulfillment_analytics_state as s;
