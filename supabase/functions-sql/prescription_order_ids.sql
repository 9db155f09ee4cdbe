-- A Lifefile order belongs to exactly one prescription: who may write a prescription's
-- external_order_id and rx_number, and their uniqueness among live prescriptions.

-- Whether prescription p_prescription_id is live and another live prescription already holds
-- Lifefile order p_order_id, or rx number p_rx_number at pharmacy p_pharmacy_id; says which id
-- clashes ('external_order_id' or 'rx_number'), null when neither does (or when
-- p_prescription_id is not live). Live: linked to a ticket that is neither cancelled nor
-- failed. Takes a transaction lock per id first, so two transactions writing the same id queue
-- and the second sees the first's commit (a partial unique index cannot see the ticket's
-- status).
create or replace function private.clashing_lifefile_id(
    p_prescription_id uuid, p_pharmacy_id uuid, p_order_id text, p_rx_number text
)
returns text
language plpgsql
set search_path = ''
as $fn$
begin
    if not exists (
        select from public.healthcare_tickets as t
        where t.prescription_id = p_prescription_id and t.status not in ('cancelled', 'failed')
    ) then
        return null;
    end if;
    if p_order_id is not null then
        perform pg_catalog.pg_advisory_xact_lock(
            pg_catalog.hashtextextended('lifefile_order:' || p_order_id, 0)
        );
        if exists (
            select
            from public.prescriptions as p
            inner join public.healthcare_tickets as t on t.prescription_id = p.id
            where
                p.external_order_id = p_order_id
                and p.id <> p_prescription_id
                and t.status not in ('cancelled', 'failed')
        ) then
            return 'external_order_id';
        end if;
    end if;
    if p_rx_number is not null then
        perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended(
            'lifefile_rx:' || coalesce(p_pharmacy_id::text, '') || ':' || p_rx_number, 0
        ));
        if exists (
            select
            from public.prescriptions as p
            inner join public.healthcare_tickets as t on t.prescription_id = p.id
            where
                p.rx_number = p_rx_number
                and p.pharmacy_id is not distinct from p_pharmacy_id
                and p.id <> p_prescription_id
                and t.status not in ('cancelled', 'failed')
        ) then
            return 'rx_number';
        end if;
    end if;
    return null;
end
$fn$;

-- Trigger (prescriptions, before update of external_order_id, rx_number, pharmacy_id): a
-- signed-in user (the prescribing doctor, whom RLS lets write) sets each id at most once,
-- while it is empty; after that only the system (the integration that submits the order)
-- changes it (CH007). Whoever writes, an id another live prescription holds is refused (23505)
-- when this one is live too (linked to a ticket neither cancelled nor failed; a new
-- prescription is linked to nothing yet, and linking is checked by
-- check_linked_prescription_lifefile_ids).
-- Security definer: the writer may not see the other prescriptions it is checked against.
create or replace function private.guard_prescription_lifefile_ids()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_clash text;
begin
    if private.is_api_request() then
        if
            old.external_order_id is not null
            and new.external_order_id is distinct from old.external_order_id
            then
            raise exception
                'prescription % already has Lifefile order %; only the pharmacy integration '
                'changes it (CH007)', old.id, old.external_order_id
                using errcode = 'CH007',
                hint = 'Ask the pharmacy or an admin to correct the order id.';
        end if;
        if old.rx_number is not null and new.rx_number is distinct from old.rx_number then
            raise exception
                'prescription % already has rx number %; only the pharmacy integration '
                'changes it (CH007)', old.id, old.rx_number
                using errcode = 'CH007',
                hint = 'Ask the pharmacy or an admin to correct the rx number.';
        end if;
    end if;
    if new.external_order_id is null and new.rx_number is null then
        return new;
    end if;
    v_clash := private.clashing_lifefile_id(
        new.id, new.pharmacy_id,
        case
            when new.external_order_id is distinct from old.external_order_id
                then new.external_order_id
        end,
        case
            when
                new.rx_number is distinct from old.rx_number
                or new.pharmacy_id is distinct from old.pharmacy_id
                then new.rx_number
        end
    );
    if v_clash is not null then
        raise exception
            'another live prescription already has this Lifefile %: a Lifefile order belongs '
            'to one prescription', pg_catalog.replace(v_clash, '_', ' ')
            using errcode = '23505',
            hint = 'Check the id against the pharmacy''s order; cancel the other ticket first '
            || 'if it was sent by mistake.';
    end if;
    return new;
end
$fn$;

-- Trigger (healthcare_tickets, after insert or update of prescription_id): a prescription
-- becomes live when a ticket links it, so its Lifefile ids must not clash then either.
create or replace function private.check_linked_prescription_lifefile_ids()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_prescription public.prescriptions;
    v_clash text;
begin
    select p.* into v_prescription from public.prescriptions as p where p.id = new.prescription_id;
    if not found then
        return null;
    end if;
    v_clash := private.clashing_lifefile_id(
        v_prescription.id, v_prescription.pharmacy_id, v_prescription.external_order_id,
        v_prescription.rx_number
    );
    if v_clash is not null then
        raise exception
            'prescription % has a Lifefile % another live prescription already has: a '
            'Lifefile order belongs to one prescription', v_prescription.id,
            pg_catalog.replace(v_clash, '_', ' ')
            using errcode = '23505',
            hint = 'Correct the prescription''s id before linking it.';
    end if;
    return null;
end
$fn$;

revoke execute on function private.clashing_lifefile_id(uuid, uuid, text, text) from public;
revoke execute on function private.guard_prescription_lifefile_ids() from public;
revoke execute on function private.check_linked_prescription_lifefile_ids() from public;

drop trigger if exists guard_prescription_lifefile_ids on public.prescriptions;
create trigger guard_prescription_lifefile_ids
before update of external_order_id, rx_number, pharmacy_id on public.prescriptions
for each row execute function private.guard_prescription_lifefile_ids();

drop trigger if exists check_linked_prescription_lifefile_ids on public.healthcare_tickets;
create trigger check_linked_prescription_lifefile_ids
after insert or update of prescription_id on public.healthcare_tickets
for each row
when (new.prescription_id is not null)
execute function private.check_linked_prescription_lifefile_ids();
