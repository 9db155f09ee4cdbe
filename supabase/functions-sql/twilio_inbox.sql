-- The Twilio inbox, one more inbox of the shared mechanism (app/webhooks/inbox.py): status
-- callbacks and inbound messages stored before the 2xx, deduplicated on (MessageSid,
-- MessageStatus) for callbacks and on MessageSid for inbound messages, processed by the worker.

-- Store one request of kind p_kind ('status' or 'inbound') with its form parameters p_params
-- and the delivery id of the callback's URL; returns (event id, status, duplicate, error) as
-- every provider's storing call does.
create or replace function private.receive_twilio_delivery(
    p_kind text, p_params jsonb, p_delivery_id text, p_client_addr text
)
returns table (event_id uuid, event_status text, duplicate boolean, error text)
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_sid text := nullif(p_params ->> 'MessageSid', '');
    v_key text;
    v_delivery uuid;
begin
    v_key := case
        when p_kind = 'status' then
            'status:' || coalesce(v_sid, '-') || ':' || coalesce(p_params ->> 'MessageStatus', '-')
        else 'inbound:' || coalesce(v_sid, pg_catalog.md5(p_params::text))
    end;
    if p_delivery_id ~ '^[0-9a-fA-F-]{36}$' then
        v_delivery := p_delivery_id::uuid;
    end if;
    insert into private.twilio_webhook_events (
        kind, message_sid, message_status, delivery_id, from_address, to_address, error_code,
        params, client_addr, dedupe_key
    ) values (
        p_kind, v_sid, nullif(p_params ->> 'MessageStatus', ''), v_delivery,
        nullif(p_params ->> 'From', ''), nullif(p_params ->> 'To', ''),
        case when p_params ->> 'ErrorCode' ~ '^[0-9]{1,9}$' then (p_params ->> 'ErrorCode')::integer end,
        p_params, p_client_addr, v_key
    )
    on conflict (dedupe_key) do nothing
    returning id, status, false, null::text into event_id, event_status, duplicate, error;
    if event_id is null then
        select e.id, e.status, true, null::text into event_id, event_status, duplicate, error
        from private.twilio_webhook_events as e where e.dedupe_key = v_key;
    end if;
    return next;
end
$fn$;

-- An inbound message: STOP (Twilio's OptOutType or the keywords) opts the number out of the
-- channel it wrote on, START opts it back in, HELP is recorded (Twilio answers it); any other
-- reply is recorded and, when the number is exactly one patient's, posted (as that patient) to
-- their most recently active open ticket's thread for the care team. Returns the note.
create or replace function private.process_twilio_inbound(p_event private.twilio_webhook_events)
returns text
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_channel text := case when p_event.from_address like 'whatsapp:%' then 'whatsapp' else 'sms' end;
    v_number text := pg_catalog.replace(p_event.from_address, 'whatsapp:', '');
    v_body text := coalesce(p_event.params ->> 'Body', '');
    v_word text := pg_catalog.upper(pg_catalog.btrim(coalesce(p_event.params ->> 'Body', '')));
    v_type text := pg_catalog.upper(coalesce(p_event.params ->> 'OptOutType', ''));
    v_patient uuid;
    v_thread uuid;
    v_ticket uuid;
begin
    if v_type = 'STOP' or v_word in (
        'STOP', 'STOPALL', 'UNSUBSCRIBE', 'CANCEL', 'END', 'QUIT', 'REVOKE', 'OPTOUT'
    ) then
        perform private.opt_out_address(v_number, v_channel, 'inbound ' || v_word);
        return 'opted out of ' || v_channel;
    elsif v_type = 'START' or v_word in ('START', 'YES', 'UNSTOP') then
        delete from private.message_opt_outs as o
        where o.address = v_number and o.channel = v_channel;
        return 'opted back in to ' || v_channel;
    elsif v_type = 'HELP' or v_word in ('HELP', 'INFO') then
        return 'help request (answered by Twilio)';
    end if;
    select pg_catalog.min(p.id::text)::uuid into v_patient
    from public.profile as p where p.phone = v_number and p.role = 'patient'
    having pg_catalog.count(*) = 1;
    if v_patient is null then
        return 'reply recorded (no single patient has this number)';
    end if;
    select t.id, th.id into v_ticket, v_thread
    from public.healthcare_tickets as t
    inner join public.ticket_statuses as s on s.ticket_type = t.ticket_type and s.status = t.status
    inner join public.chat_threads as th on th.ticket_id = t.id
    where t.patient_id = v_patient and not s.is_terminal
    order by t.updated_at desc
    limit 1;
    if v_thread is null then
        return 'reply recorded (the patient has no open ticket)';
    end if;
    begin
        insert into public.chat_messages (thread_id, sender_id, body, kind, metadata)
        values (
            v_thread, v_patient, pg_catalog.left(v_body, 1600), 'text',
            pg_catalog.jsonb_build_object('via', v_channel, 'twilio_event_id', p_event.id)
        );
    exception when sqlstate 'CH004' then
        return 'reply recorded (ticket ' || v_ticket || ' refuses messages)';
    end;
    return 'reply posted to ticket ' || v_ticket;
end
$fn$;

-- Process up to p_limit pending Twilio events in arrival order (skip locked: lanes and workers
-- share the inbox); returns how many.
create or replace function private.process_twilio_events(p_limit integer default 100)
returns integer
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_event private.twilio_webhook_events;
    v_note text;
    v_done integer := 0;
begin
    for v_event in
        select e.* from private.twilio_webhook_events as e
        where e.status = 'pending'
        order by e.seq
        limit p_limit
        for update skip locked
    loop
        v_done := v_done + 1;
        if v_event.kind = 'status' then
            v_note := private.apply_delivery_status(
                v_event.delivery_id, v_event.message_sid, v_event.message_status,
                v_event.error_code, nullif(v_event.params ->> 'ErrorMessage', '')
            );
            if v_note = 'no delivery' and v_event.delivery_id is not null then
                v_note := private.apply_delivery_status(
                    null, v_event.message_sid, v_event.message_status,
                    v_event.error_code, nullif(v_event.params ->> 'ErrorMessage', '')
                );
            end if;
        else
            v_note := private.process_twilio_inbound(v_event);
        end if;
        update private.twilio_webhook_events as e
        set
            status = case when v_note = 'no delivery' then 'ignored' else 'processed' end,
            attempts = e.attempts + 1, processed_at = pg_catalog.now(), note = v_note
        where e.id = v_event.id;
    end loop;
    return v_done;
end
$fn$;

revoke execute on function private.receive_twilio_delivery(text, jsonb, text, text) from public;
revoke execute on function private.process_twilio_inbound(private.twilio_webhook_events)
from public;
revoke execute on function private.process_twilio_events(integer) from public;
