-- Patient messaging: a text to a ticket thread's patient who has not read a new message for a
-- while (event chat_unread, default 30 minutes). The rule event, its default rule, the
-- delivery's chat_message_id, the trigger that queues it and the send-time check that cancels it
-- once the thread is read; functions and triggers as in supabase/functions-sql/
-- {notification_chat_unread,notification_rules,messaging_send}.sql.

alter table public.notification_rules drop constraint notification_rules_event_check;
alter table public.notification_rules add constraint notification_rules_event_check check (
    event in (
        'ticket_status', 'reservation_confirmed', 'reservation_cancelled',
        'reservation_reminder_24h', 'reservation_reminder_2h', 'reservation_rejected',
        'reservation_request_expired', 'chat_unread'
    )
);

-- The first unread message a chat_unread delivery is about.
alter table public.notification_deliveries
add column chat_message_id uuid references public.chat_messages (id) on delete cascade;
create index notification_deliveries_chat_message_id_idx
on public.notification_deliveries (chat_message_id);

-- BEFORE INSERT OR UPDATE on notification_rules: the rule is valid when saved. Raises 22023
-- naming the unknown placeholder, the segment count of an SMS text past 3 segments, a
-- reservation or chat_unread rule addressed to a provider (or a chat_unread rule posting in the
-- chat), a quiet-hours exemption for a status that is not time-critical; 42501 when someone
-- other than an admin (or the system) allows PHI.
create or replace function private.validate_notification_rule()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_unknown text;
    v_segments integer;
begin
    select u.name into v_unknown
    from pg_catalog.unnest(
        private.template_placeholders(new.sms_template)
        || private.template_placeholders(new.chat_template)
        || new.required_placeholders
        || coalesce(array(
            select pg_catalog.btrim(v.value, '{}')
            from pg_catalog.jsonb_each_text(new.whatsapp_variables) as v
        ), '{}')
    ) as u (name)
    where not exists (select from private.messaging_placeholders as ph where ph.name = u.name)
    limit 1;
    if v_unknown is not null then
        raise exception 'rule %: unknown placeholder {%}', new.name, v_unknown
            using errcode = '22023',
            hint = 'Use one of the names in private.messaging_placeholders (see the README).';
    end if;
    if ('sms' = any(new.channels) or 'whatsapp' = any(new.channels))
        and new.sms_template is null then
        raise exception 'rule %: an SMS or WhatsApp rule needs sms_template', new.name
            using errcode = '22023', hint = 'Write the text sent by SMS (and as WhatsApp text).';
    end if;
    if 'chat' = any(new.channels) and new.chat_template is null then
        raise exception 'rule %: a chat rule needs chat_template', new.name
            using errcode = '22023', hint = 'Write the system message posted in the thread.';
    end if;
    v_segments := private.sms_segments(
        private.template_worst_case(new.sms_template, new.allow_phi)
    );
    if v_segments > 3 then
        raise exception 'rule %: the SMS text can render to % segments (at most 3)',
            new.name, v_segments
            using errcode = '22023',
            hint = 'Shorten the text or drop a placeholder; one non-GSM character makes every '
            || 'segment 70 characters.';
    end if;
    if new.event like 'reservation%' and new.audience <> 'patient' then
        raise exception 'rule %: reservation messages go to the patient only', new.name
            using errcode = '22023', hint = 'Set audience to patient.';
    end if;
    if new.event = 'chat_unread' and (new.audience <> 'patient' or 'chat' = any(new.channels)) then
        raise exception 'rule %: unread-chat messages go to the patient, by SMS, WhatsApp or email',
            new.name
            using errcode = '22023', hint = 'Set audience to patient and drop the chat channel.';
    end if;
    if not new.quiet_hours and not (new.event = 'ticket_status' and new.status = 'out_for_delivery')
    then
        raise exception 'rule %: only time-critical statuses (out_for_delivery) may ignore quiet '
            'hours', new.name
            using errcode = '22023', hint = 'Keep quiet_hours on; the message waits until 08:00.';
    end if;
    if new.allow_phi and (tg_op = 'INSERT' or not old.allow_phi)
        and private.is_api_request() and not private.is_admin() then
        raise exception 'only an admin may allow PHI in a rule''s SMS and WhatsApp texts (42501)'
            using errcode = '42501';
    end if;
    new.updated_at := pg_catalog.now();
    return new;
end
$fn$;

-- Why delivery p_delivery, about to be sent now, must not be (null: send it), re-checked from
-- the current rows: an unread-chat message whose recipient has read the thread since, consent,
-- opt-out, the reservation still confirmed at the same time, the reminder's moment not past.
create or replace function private.send_time_refusal(p_delivery public.notification_deliveries)
returns text
language sql stable
security definer
set search_path = ''
as $fn$
    select case
        when p_delivery.event = 'chat_unread' and exists (
            select from public.chat_messages as cm
            inner join public.chat_thread_members as m on cm.thread_id = m.thread_id
            where
                cm.id = p_delivery.chat_message_id and m.profile_id = p_delivery.recipient_id
                and m.last_read_at >= cm.created_at
        ) then 'thread_read'
        when p_delivery.recipient_id is not null and not exists (
            select from public.profile as p
            where
                p.id = p_delivery.recipient_id and p.sms_opt_in
                and p.preferred_contact_method <> 'none'
        ) then 'no_consent'
        when exists (
            select from private.message_opt_outs as o
            where
                o.address = pg_catalog.replace(p_delivery.address, 'whatsapp:', '')
                and o.channel = p_delivery.channel
        ) then 'opted_out'
        when p_delivery.reservation_id is not null and p_delivery.event <> 'reservation_cancelled'
            and not exists (
                select from public.reservation as r
                where r.id = p_delivery.reservation_id and r.status = 'confirmed'
            ) then 'reservation_not_confirmed'
        when p_delivery.reservation_id is not null and not exists (
            select from public.reservation as r
            inner join public.time_slot as s on r.slot_id = s.id
            where r.id = p_delivery.reservation_id and s.start_time = p_delivery.appointment_time
        ) then 'rescheduled'
        when not private.reminder_still_useful(
            p_delivery.event, pg_catalog.now(), p_delivery.appointment_time
        ) then 'moment_passed'
    end
$fn$;

-- Claim up to p_limit due SMS/WhatsApp deliveries for one sender (skip locked: workers never
-- claim the same row), within the shared send budget p_per_second. Each claimed row becomes
-- 'sending' under a lease (notification_send_lease_seconds) with its body rendered now. A row
-- whose earlier lease expired (its sender crashed or timed out after the request may have left)
-- comes back with lookup = true: the sender looks it up at Twilio before sending it again.
-- Rows that fail the send-time checks become suppressed/cancelled; quiet hours defer them.
-- Only rows of p_channels (the channels this sender is configured for) are claimed: a WhatsApp
-- row waits, queued, until TWILIO_WHATSAPP_FROM is set.
create or replace function private.claim_notification_deliveries(
    p_limit integer,
    p_per_second double precision,
    p_support_phone text,
    p_app_base_url text,
    p_channels text[]
)
returns table (
    id uuid, channel text, address text, body text, content_sid text,
    content_variables jsonb, lookup boolean, created_at timestamptz, attempts integer
)
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_granted integer := private.take_send_tokens(p_limit, p_per_second);
    v_used integer := 0;
    v_delivery public.notification_deliveries;
    v_rule public.notification_rules;
    v_refusal text;
    v_values jsonb;
    v_body text;
    v_missing text;
    v_later timestamptz;
    v_lease interval := pg_catalog.make_interval(
        secs => private.limit_value('notification_send_lease_seconds')
    );
begin
    if v_granted <= 0 then
        return;
    end if;
    for v_delivery in
        select d.* from public.notification_deliveries as d
        where
            d.status in ('queued', 'scheduled', 'sending')
            and d.channel in ('sms', 'whatsapp')
            and d.channel = any(p_channels)
            and d.not_before <= pg_catalog.now()
            and coalesce(d.next_attempt_at, '-infinity') <= pg_catalog.now()
        order by d.not_before
        limit v_granted
        for update skip locked
    loop
        select r.* into v_rule from public.notification_rules as r where r.id = v_delivery.rule_id;
        v_refusal := private.send_time_refusal(v_delivery);
        if v_refusal is not null and v_delivery.status <> 'sending' then
            update public.notification_deliveries as d
            set
                status = case
                    when v_refusal in (
                        'rescheduled', 'moment_passed', 'reservation_not_confirmed', 'thread_read'
                    ) then 'cancelled'
                    else 'suppressed'
                end,
                suppressed_reason = v_refusal, updated_at = pg_catalog.now()
            where d.id = v_delivery.id;
            perform private.sync_reservation_reminder_flags(v_delivery.reservation_id);
            continue;
        end if;
        if v_delivery.status <> 'sending' and coalesce(v_rule.quiet_hours, true) then
            v_later := private.after_quiet_hours(pg_catalog.now(), v_delivery.recipient_timezone);
            if v_later > pg_catalog.now() then
                update public.notification_deliveries as d
                set
                    status = case
                        when private.reminder_still_useful(
                            d.event, v_later, d.appointment_time
                        ) then 'scheduled'
                        else 'cancelled'
                    end,
                    suppressed_reason = case
                        when not private.reminder_still_useful(
                            d.event, v_later, d.appointment_time
                        ) then 'too_late_after_quiet_hours'
                    end,
                    not_before = v_later, updated_at = pg_catalog.now()
                where d.id = v_delivery.id;
                continue;
            end if;
        end if;
        v_body := v_delivery.body;
        if v_delivery.status <> 'sending' then
            v_values := private.notification_values(v_delivery.id, p_support_phone, p_app_base_url);
            select m.name into v_missing
            from pg_catalog.unnest(v_rule.required_placeholders) as m (name)
            where not v_values ? m.name
            limit 1;
            if v_missing is not null then
                update public.notification_deliveries as d
                set
                    status = 'suppressed', suppressed_reason = 'missing_' || v_missing,
                    updated_at = pg_catalog.now()
                where d.id = v_delivery.id;
                continue;
            end if;
            v_body := private.render_template(v_rule.sms_template, v_values, v_rule.allow_phi);
            if v_delivery.content_sid is not null then
                v_delivery.content_variables := coalesce((
                    select pg_catalog.jsonb_object_agg(
                        w.key,
                        private.render_template(w.value, v_values, v_rule.allow_phi)
                    )
                    from pg_catalog.jsonb_each_text(v_rule.whatsapp_variables) as w
                ), '{}');
            end if;
        end if;
        update public.notification_deliveries as d
        set
            status = 'sending',
            attempts = d.attempts + case when d.status = 'sending' then 0 else 1 end,
            next_attempt_at = pg_catalog.now() + v_lease,
            body = v_body,
            content_variables = v_delivery.content_variables,
            segments = private.sms_segments(v_body),
            updated_at = pg_catalog.now()
        where d.id = v_delivery.id;
        v_used := v_used + 1;
        id := v_delivery.id;
        channel := v_delivery.channel;
        address := v_delivery.address;
        body := v_body;
        content_sid := v_delivery.content_sid;
        content_variables := v_delivery.content_variables;
        lookup := v_delivery.status = 'sending';
        created_at := v_delivery.created_at;
        attempts := v_delivery.attempts;
        return next;
    end loop;
    perform private.return_send_tokens(v_granted - v_used);
end
$fn$;

-- AFTER INSERT on chat_messages (not system messages): queue the chat_unread rules' deliveries
-- for the thread's patient, when it is a ticket's thread and they did not send the message.
create or replace function private.queue_chat_unread_notifications()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_ticket public.healthcare_tickets;
    v_rule public.notification_rules;
    v_last_read timestamptz;
    v_phone text;
    v_preferred text;
    v_consent boolean;
    v_timezone text;
    v_first_unread uuid;
    v_channel text;
    v_reason text;
    v_chosen text;
    v_chosen_reason text;
    v_not_before timestamptz;
begin
    if private.request_source() = 'backfill' then
        return null;
    end if;
    select t.* into v_ticket
    from public.chat_threads as th
    inner join public.healthcare_tickets as t on th.ticket_id = t.id
    where th.id = new.thread_id;
    if v_ticket.id is null or v_ticket.patient_id is null
        or v_ticket.patient_id is not distinct from new.sender_id then
        return null;
    end if;
    -- The patient must be a member of the thread.
    select m.last_read_at into v_last_read
    from public.chat_thread_members as m
    where m.thread_id = new.thread_id and m.profile_id = v_ticket.patient_id;
    if not found then
        return null;
    end if;
    -- One waiting delivery per recipient and thread is enough.
    if exists (
        select from public.notification_deliveries as d
        inner join public.chat_messages as cm on d.chat_message_id = cm.id
        where
            d.event = 'chat_unread' and d.recipient_id = v_ticket.patient_id
            and cm.thread_id = new.thread_id
            and d.status in ('queued', 'scheduled', 'sending')
    ) then
        return null;
    end if;
    -- The first message the patient has not read (this one, unless earlier ones are unread).
    select cm.id into v_first_unread
    from public.chat_messages as cm
    where
        cm.thread_id = new.thread_id and cm.kind <> 'system'
        and cm.sender_id is distinct from v_ticket.patient_id
        and cm.created_at > coalesce(v_last_read, '-infinity')
    order by cm.created_at, (cm.id <> new.id)
    limit 1;
    v_first_unread := coalesce(v_first_unread, new.id);

    select p.phone, p.preferred_contact_method, p.sms_opt_in and p.preferred_contact_method <> 'none',
        coalesce(
            p.timezone,
            (select pv.timezone from public.providers as pv
             where pv.id = coalesce(v_ticket.secondary_provider_id, v_ticket.primary_provider_id)),
            'UTC'
        )
    into v_phone, v_preferred, v_consent, v_timezone
    from public.profile as p where p.id = v_ticket.patient_id;

    for v_rule in
        select r.* from public.notification_rules as r
        where r.is_active and r.event = 'chat_unread' and r.audience = 'patient'
        order by r.name
    loop
        -- The preferred channel among the rule's, else the first allowed (as every rule).
        v_chosen := null;
        v_chosen_reason := null;
        foreach v_channel in array array(
            select c from pg_catalog.unnest(v_rule.channels) with ordinality as u (c, n)
            where c in ('sms', 'whatsapp', 'email')
            order by (c = v_preferred) desc, n
        ) loop
            v_reason := case
                when v_channel = 'whatsapp' and v_rule.whatsapp_content_sid is null
                    then 'channel_disabled'
                else private.phone_suppression(v_channel, v_phone, v_consent, false)
            end;
            if v_reason is null then
                v_chosen := v_channel;
                v_chosen_reason := null;
                exit;
            elsif v_chosen is null or v_chosen_reason = 'channel_disabled' then
                v_chosen := v_channel;
                v_chosen_reason := v_reason;
            end if;
        end loop;
        continue when v_chosen is null;

        v_not_before := pg_catalog.now() + pg_catalog.make_interval(mins => v_rule.delay_minutes);
        if v_rule.quiet_hours and v_chosen in ('sms', 'whatsapp') then
            v_not_before := private.after_quiet_hours(v_not_before, v_timezone);
        end if;
        insert into public.notification_deliveries (
            rule_id, event, recipient_id, channel, address, ticket_id, chat_message_id,
            recipient_timezone, dedupe_key, status, suppressed_reason, not_before, error_message
        ) values (
            v_rule.id, 'chat_unread', v_ticket.patient_id, v_chosen,
            case
                when v_chosen = 'whatsapp' and v_phone is not null then 'whatsapp:' || v_phone
                when v_chosen = 'sms' then v_phone
            end,
            v_ticket.id, v_first_unread, v_timezone,
            pg_catalog.format(
                'chat_unread:%s:%s:%s:%s', new.thread_id, v_ticket.patient_id, v_first_unread,
                v_rule.id
            ),
            case
                when v_chosen_reason is not null then 'suppressed'
                when v_not_before > pg_catalog.now() then 'scheduled'
                else 'queued'
            end,
            v_chosen_reason, v_not_before,
            case when v_chosen = 'email' then 'email is not delivered yet: kept queued' end
        )
        on conflict (dedupe_key) do nothing;
    end loop;
    return null;
end
$fn$;

revoke execute on function private.queue_chat_unread_notifications() from public;

drop trigger if exists queue_chat_unread_notifications on public.chat_messages;
create trigger queue_chat_unread_notifications
after insert on public.chat_messages
for each row when (new.kind <> 'system')
execute function private.queue_chat_unread_notifications();

-- The default rule: no PHI, no message text.
insert into public.notification_rules (name, event, channels, sms_template, delay_minutes)
values (
    'Unread chat message', 'chat_unread', '{sms,whatsapp}',
    'You have a new message about your care request. Read it in the app: {app_link}', 30
);
