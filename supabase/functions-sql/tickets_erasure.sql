-- Erasing a ticket: the one way a ticket and its append-only history are deleted, recorded in
-- private.ticket_erasures. No API role (not even service_role) may delete tickets; a DBA runs
-- this for a documented legal erasure request.

-- erase_ticket(p_ticket_id, p_reason, p_requested_by): deletes the ticket with its timeline,
-- thread, messages, notifications and tracking (their foreign keys cascade), after recording
-- who erased it (session_user), why, on whose request, and how many timeline rows and messages
-- went with it. The prescription stays (its own erasure is the prescribing practice's).
-- Returns the audit row. Raises P0002 when the ticket does not exist, 22023 without a reason or
-- requester. Executable by nobody but its owner (the DBA): not granted to any API role.
create or replace function private.erase_ticket(
    p_ticket_id uuid, p_reason text, p_requested_by text
)
returns private.ticket_erasures
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_ticket public.healthcare_tickets;
    v_erasure private.ticket_erasures;
begin
    if coalesce(pg_catalog.btrim(p_reason), '') = ''
        or coalesce(pg_catalog.btrim(p_requested_by), '') = '' then
        raise exception 'an erasure needs a reason and the name of who requested it'
            using errcode = '22023',
            hint = 'e.g. erase_ticket(id, ''GDPR art. 17 request #123'', ''patient by email'').';
    end if;
    select t.* into v_ticket from public.healthcare_tickets as t
    where t.id = p_ticket_id
    for update;
    if not found then
        raise exception 'ticket % does not exist', p_ticket_id
            using errcode = 'P0002', hint = 'See private.ticket_erasures for erased tickets.';
    end if;
    insert into private.ticket_erasures (
        ticket_id, ticket_type, patient_id, reason, requested_by, erased_by, timeline_rows,
        messages
    )
    select
        v_ticket.id,
        v_ticket.ticket_type,
        v_ticket.patient_id,
        p_reason,
        p_requested_by,
        session_user,
        (select count(*) from public.ticket_timeline as tl where tl.ticket_id = v_ticket.id),
        (
            select count(*) from public.chat_messages as m
            inner join public.chat_threads as th on m.thread_id = th.id
            where th.ticket_id = v_ticket.id
        )
    returning * into v_erasure;
    delete from public.healthcare_tickets as t where t.id = v_ticket.id;
    return v_erasure;
end
$fn$;

revoke execute on function private.erase_ticket(uuid, text, text) from public;
