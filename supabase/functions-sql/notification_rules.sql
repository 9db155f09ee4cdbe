-- Notification rules and their templates: placeholders, rendering, SMS segment counting and the
-- validation that runs when a rule is saved (unknown placeholder: 22023 naming it; an SMS text
-- that can render past 3 segments: 22023 with the count).

-- The placeholder names in p_template, in order of appearance, each once.
create or replace function private.template_placeholders(p_template text)
returns text[]
language sql immutable
set search_path = ''
as $fn$
    select coalesce(array_agg(distinct m[1]), '{}')
    from pg_catalog.regexp_matches(coalesce(p_template, ''), '\{([^{}]*)\}', 'g') as m
$fn$;

-- Whether every character of p_text is in the GSM-7 alphabet (basic set and extension table);
-- one other character makes the whole message UCS-2.
create or replace function private.is_gsm7(p_text text)
returns boolean
language sql immutable
set search_path = ''
as $fn$
    select coalesce(p_text, '') ~ (
        '^[A-Za-z0-9 @£$¥èéùìòÇØøÅå_ÆæßÉ!"#¤%&''()*+,\-./:;<=>?¡ÄÖÑÜ§¿äöñüà'
        || E'\n\r\f^{}\\\\\\[~\\]|€]*$'
    )
$fn$;

-- How many SMS segments p_text takes: GSM-7 160 (153 per part when split), UCS-2 70 (67);
-- the extension characters of GSM-7 count twice.
create or replace function private.sms_segments(p_text text)
returns integer
language sql immutable
set search_path = ''
as $fn$
    with measured as (
        select
            private.is_gsm7(p_text) as gsm,
            case
                when private.is_gsm7(p_text)
                    then pg_catalog.length(coalesce(p_text, ''))
                    + pg_catalog.length(pg_catalog.regexp_replace(
                        coalesce(p_text, ''), E'[^\\^{}\\\\\\[~\\]|€\f]', '', 'g'
                    ))
                else pg_catalog.length(coalesce(p_text, ''))
            end as units
    )
    select case
        when units = 0 then 0
        when gsm and units <= 160 then 1
        when gsm then ceil(units / 153.0)::integer
        when units <= 70 then 1
        else ceil(units / 67.0)::integer
    end
    from measured
$fn$;

-- p_template with each {placeholder} replaced by its value in p_values (none renders as
-- nothing). PHI placeholders render only when p_allow_phi (chat, or a rule allowed PHI).
create or replace function private.render_template(
    p_template text, p_values jsonb, p_allow_phi boolean
)
returns text
language plpgsql stable
set search_path = ''
as $fn$
declare
    v_text text := p_template;
    v_name text;
    v_phi boolean;
begin
    if v_text is null then
        return null;
    end if;
    foreach v_name in array private.template_placeholders(p_template) loop
        select ph.is_phi into v_phi from private.messaging_placeholders as ph where ph.name = v_name;
        v_text := pg_catalog.replace(
            v_text, '{' || v_name || '}',
            case when coalesce(v_phi, true) and not p_allow_phi then '' else
                coalesce(p_values ->> v_name, '') end
        );
    end loop;
    -- A missing value must not leave a double space or a space before punctuation.
    return pg_catalog.btrim(pg_catalog.regexp_replace(
        pg_catalog.regexp_replace(v_text, ' {2,}', ' ', 'g'), ' ([.,:;!?])', '\1', 'g'
    ));
end
$fn$;

-- The longest text p_template can render to (each placeholder at its longest).
create or replace function private.template_worst_case(p_template text, p_allow_phi boolean)
returns text
language sql stable
set search_path = ''
as $fn$
    select private.render_template(
        p_template,
        coalesce(
            (select pg_catalog.jsonb_object_agg(ph.name, pg_catalog.repeat('x', ph.max_length))
             from private.messaging_placeholders as ph),
            '{}'
        ),
        p_allow_phi
    )
$fn$;

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

revoke execute on function private.template_placeholders(text) from public;
revoke execute on function private.is_gsm7(text) from public;
revoke execute on function private.sms_segments(text) from public;
revoke execute on function private.render_template(text, jsonb, boolean) from public;
revoke execute on function private.template_worst_case(text, boolean) from public;
revoke execute on function private.validate_notification_rule() from public;
grant execute on function private.template_placeholders(text) to authenticated, service_role;
grant execute on function private.is_gsm7(text) to authenticated, service_role;
grant execute on function private.sms_segments(text) to authenticated, service_role;
grant execute on function private.render_template(text, jsonb, boolean) to service_role;
grant execute on function private.template_worst_case(text, boolean) to service_role;

drop trigger if exists validate_notification_rule on public.notification_rules;
create trigger validate_notification_rule
before insert or update on public.notification_rules
for each row execute function private.validate_notification_rule();
