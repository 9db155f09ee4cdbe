-- Scheduling queries the worker runs: each is one call of a SQL function that does the work.

-- name: expire_reservation_requests
-- Expire pending requests whose hold ran out (their places are released); returns how many.
select public.expire_reservation_requests();

-- name: expire_time_slots
-- Mark started slots that are not blocked as expired; returns how many.
select public.expire_time_slots();
