-- carehub: no-transaction
-- The backfill's order-id check looks up the other prescriptions holding a legacy
-- prescription's rx number at the same pharmacy; without this it reads every prescription of
-- the pharmacy for each one. Built without blocking writers (prescriptions is large).
create index concurrently if not exists prescriptions_pharmacy_rx_number_idx
on public.prescriptions (pharmacy_id, rx_number) where rx_number is not null;
