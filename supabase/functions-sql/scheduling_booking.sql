-- Scheduling: request_reservation (patients, anonymous ones included, ask for a place) with its
-- input checks and the anonymous booking caps, and its API wrapper.

-- RPC: requests and reservations ---------------------------------------------------------

-- One optional text field of request_reservation's p_details: null when absent, else a string
-- of at most p_max_length characters. Raises 22023 otherwise.
create or replace function private.request_detail_text(
    p_details jsonb, p_key text, p_max_length integer
)
returns text
language plpgsql immutable
set search_path = ''
as $fn$
declare
    v_value text;
begin
    if not p_details ? p_key or pg_catalog.jsonb_typeof(p_details -> p_key) = 'null' then
        return null;
    elsif pg_catalog.jsonb_typeof(p_details -> p_key) <> 'string' then
        raise exception 'p_details.% must be a string', p_key using errcode = '22023';
    end if;
    v_value := pg_catalog.btrim(p_details ->> p_key);
    if pg_catalog.length(v_value) > p_max_length then
        raise exception 'p_details.% is longer than % characters', p_key, p_max_length
            using errcode = '22023', hint = 'Shorten it.';
    end if;
    return nullif(v_value, '');
end
$fn$;

-- The address of the client of this API request: x-real-ip when the gateway sets it, else the
-- first address of x-forwarded-for (PostgREST passes the request headers as JSON in the setting
-- request.headers). Null without request headers (the service, psql, the worker). An address
-- that is not an IP address is kept as written (lower case), so it is still capped.
create or replace function private.request_client_address()
returns text
language plpgsql stable
set search_path = ''
as $fn$
declare
    v_headers jsonb := nullif(pg_catalog.current_setting('request.headers', true), '')::jsonb;
    v_address text;
begin
    if v_headers is null or pg_catalog.jsonb_typeof(v_headers) <> 'object' then
        return null;
    end if;
    v_address := coalesce(
        nullif(pg_catalog.btrim(v_headers ->> 'x-real-ip'), ''),
        nullif(pg_catalog.btrim(pg_catalog.split_part(v_headers ->> 'x-forwarded-for', ',', 1)), '')
    );
    if v_address is null then
        return null;
    end if;
    begin
        return pg_catalog.host(v_address::inet);
    exception when invalid_text_representation then
        return pg_catalog.lower(pg_catalog.left(v_address, 100));
    end;
end
$fn$;

-- Refuses an anonymous request past the booking caps of private.limits, counting the pending,
-- unexpired anonymous holds (private.anonymous_booking_holds) of phone p_phone (on slot
-- p_slot_id, with practitioner p_profile_id) and of client address p_address (when known).
-- Called by private.request_reservation (security definer), which then records the new hold.
-- Raises CH009 naming the cap that was reached.
create or replace function private.enforce_anonymous_booking_caps(
    p_slot_id uuid, p_profile_id uuid, p_phone text, p_address text
)
returns void
language plpgsql
set search_path = ''
as $fn$
declare
    v_on_slot integer;
    v_with_practitioner integer;
    v_from_address integer;
    v_cap integer;
begin
    -- Requests of one phone (then one address) take turns, so two at once cannot both pass a
    -- count. Always phone before address, and both before the slot row: no lock cycle.
    perform pg_catalog.pg_advisory_xact_lock(
        pg_catalog.hashtextextended('carehub.booking_phone:' || p_phone, 0)
    );
    if p_address is not null then
        perform pg_catalog.pg_advisory_xact_lock(
            pg_catalog.hashtextextended('carehub.booking_address:' || p_address, 0)
        );
    end if;

    select
        (count(*) filter (where r.slot_id = p_slot_id))::integer,
        (count(*) filter (where r.profile_id = p_profile_id))::integer
    into v_on_slot, v_with_practitioner
    from private.anonymous_booking_holds as h
    inner join public.reservation_request as r on h.request_id = r.id
    where
        h.phone = p_phone
        and r.status = 'pending'
        and r.expires_at > pg_catalog.now();
    v_cap := private.limit_value('booking_phone_holds_per_slot');
    if v_on_slot >= v_cap then
        raise exception 'phone number % has reached the limit of % pending request(s) for '
            'one time slot (booking_phone_holds_per_slot) (CH009)', p_phone, v_cap
            using errcode = 'CH009',
            hint = 'Wait for the practitioner to answer, or sign in to book.';
    end if;
    v_cap := private.limit_value('booking_phone_holds_per_practitioner');
    if v_with_practitioner >= v_cap then
        raise exception 'phone number % has reached the limit of % pending request(s) with '
            'one practitioner (booking_phone_holds_per_practitioner) (CH009)', p_phone, v_cap
            using errcode = 'CH009',
            hint = 'Wait for the practitioner to answer, or sign in to book.';
    end if;
    if p_address is not null then
        select count(*)::integer into v_from_address
        from private.anonymous_booking_holds as h
        inner join public.reservation_request as r on h.request_id = r.id
        where
            h.client_address = p_address
            and r.status = 'pending'
            and r.expires_at > pg_catalog.now();
        v_cap := private.limit_value('booking_address_holds_total');
        if v_from_address >= v_cap then
            raise exception 'your network address has reached the limit of % pending '
                'request(s) (booking_address_holds_total) (CH009)', v_cap
                using errcode = 'CH009',
                hint = 'Wait for the practitioners to answer, or sign in to book.';
        end if;
    end if;
end
$fn$;

-- request_reservation(p_slot_id, p_patient_name, p_patient_phone, p_details) returns jsonb
-- Asks for a place in slot p_slot_id. The place is held for 30 minutes (never past the slot's
-- start) while the practitioner decides; a practitioner who does not require approval
-- (profile.appointment_approval_required = false) gets the reservation confirmed at once,
-- except for anonymous callers (role anon): their requests always wait for the practitioner,
-- and they are capped (private.limits): pending holds per phone number per slot and per
-- practitioner, and per client address in total (see private.enforce_anonymous_booking_caps).
-- Calls without an API role (the service, the WhatsApp bot as service_role, psql) are not
-- capped.
-- p_details (a JSON object, every key optional): email, age (integer 0-150), gender,
-- chief_complaint, symptoms, medical_history, current_medications, allergies, urgency_level
-- ('low', 'normal', 'high', 'urgent'), preferred_contact_method ('whatsapp', 'phone',
-- 'email'); other keys are refused. A signed-in caller's patient_id is auth.uid(); anon
-- callers (WhatsApp and web patients without an account) book with name and phone only.
-- Returns {"request_id": uuid, "reservation_id": uuid or null, "status": "pending" |
-- "confirmed"}.
-- Raises 22023 (invalid input: name, phone in E.164, details), P0002 (no such slot), CH005
-- (slot blocked, started, expired, or its service withdrawn), CH002 (slot full), CH009
-- (anonymous booking cap reached; the message names it).
-- Executable by anon ON PURPOSE (through public.request_reservation): patients without an
-- account book through it. Hence every input is validated here, and it writes only a pending
-- request (or, for a signed-in patient in auto-confirm mode, its reservation) for that slot.
create or replace function private.request_reservation(
    p_slot_id uuid, p_patient_name text, p_patient_phone text, p_details jsonb default '{}'
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    c_text_max constant integer := 4000;
    v_details jsonb := coalesce(p_details, '{}');
    v_name text := pg_catalog.btrim(p_patient_name);
    -- Phones arrive as typed ("+34 600-111 222"); keep the digits and the leading plus.
    v_phone text := pg_catalog.regexp_replace(coalesce(p_patient_phone, ''), '[\s().-]', '', 'g');
    v_unknown text;
    v_email text;
    v_age integer;
    v_urgency text;
    v_contact text;
    v_anonymous boolean := pg_catalog.current_setting('role', true) = 'anon';
    v_address text;
    v_profile_id uuid;
    v_approval_required boolean;
    v_service_active boolean;
    v_request_id uuid;
    v_reservation_id uuid;
begin
    if p_slot_id is null then
        raise exception 'p_slot_id is required' using errcode = '22023';
    elsif v_name is null or v_name = '' then
        raise exception 'the patient''s name is required' using errcode = '22023';
    elsif pg_catalog.length(v_name) > 255 or v_name ~ '[[:cntrl:]]' then
        raise exception 'the patient''s name must be one line of at most 255 characters'
            using errcode = '22023';
    elsif v_phone !~ '^\+[1-9][0-9]{6,14}$' then
        raise exception 'the patient''s phone % is not an international number', p_patient_phone
            using errcode = '22023', hint = 'Write it with its country code, e.g. +34600111222.';
    elsif pg_catalog.jsonb_typeof(v_details) <> 'object' then
        raise exception 'p_details must be a JSON object' using errcode = '22023';
    end if;

    select pg_catalog.string_agg(k.key, ', ' order by k.key) into v_unknown
    from pg_catalog.jsonb_object_keys(v_details) as k (key)
    where k.key <> all (array[
        'email', 'age', 'gender', 'chief_complaint', 'symptoms', 'medical_history',
        'current_medications', 'allergies', 'urgency_level', 'preferred_contact_method'
    ]);
    if v_unknown is not null then
        raise exception 'p_details has unknown field(s): %', v_unknown
            using errcode = '22023',
            hint = 'Known fields: email, age, gender, chief_complaint, symptoms, '
            || 'medical_history, current_medications, allergies, urgency_level, '
            || 'preferred_contact_method.';
    end if;
    v_email := private.request_detail_text(v_details, 'email', 255);
    if v_email !~ '^[^@\s]+@[^@\s]+\.[^@\s]+$' then
        raise exception 'p_details.email % is not an email address', v_email
            using errcode = '22023';
    end if;
    if v_details ? 'age' and pg_catalog.jsonb_typeof(v_details -> 'age') <> 'null' then
        if pg_catalog.jsonb_typeof(v_details -> 'age') <> 'number'
            or (v_details ->> 'age') !~ '^[0-9]{1,3}$'
            or (v_details ->> 'age')::integer > 150 then
            raise exception 'p_details.age must be a whole number from 0 to 150'
                using errcode = '22023';
        end if;
        v_age := (v_details ->> 'age')::integer;
    end if;
    v_urgency := coalesce(private.request_detail_text(v_details, 'urgency_level', 20), 'normal');
    if v_urgency not in ('low', 'normal', 'high', 'urgent') then
        raise exception 'p_details.urgency_level must be low, normal, high or urgent, not %',
            v_urgency
            using errcode = '22023';
    end if;
    v_contact := coalesce(
        private.request_detail_text(v_details, 'preferred_contact_method', 20), 'whatsapp'
    );
    if v_contact not in ('whatsapp', 'phone', 'email') then
        raise exception 'p_details.preferred_contact_method must be whatsapp, phone or email, '
            'not %', v_contact
            using errcode = '22023';
    end if;

    select s.profile_id, p.appointment_approval_required, m.is_active
    into v_profile_id, v_approval_required, v_service_active
    from public.time_slot as s
    inner join public.profile as p on s.profile_id = p.id
    inner join public.medical_service as m on s.service_id = m.id
    where s.id = p_slot_id;
    if not found then
        raise exception 'time slot % does not exist', p_slot_id
            using errcode = 'P0002', hint = 'Pick a slot from the list of available slots.';
    elsif not v_service_active then
        raise exception 'the service of time slot % is no longer offered (CH005)', p_slot_id
            using errcode = 'CH005', hint = 'Choose a slot of another service.';
    end if;
    if v_anonymous then
        v_address := private.request_client_address();
        perform private.enforce_anonymous_booking_caps(
            p_slot_id, v_profile_id, v_phone, v_address
        );
    end if;

    -- The insert trigger takes the hold (or raises CH002 / CH005).
    insert into public.reservation_request (
        slot_id, patient_id, patient_name, patient_phone, patient_email, patient_age,
        patient_gender, chief_complaint, symptoms, medical_history, current_medications,
        allergies, urgency_level, preferred_contact_method, requested_time
    )
    values (
        p_slot_id,
        case when pg_catalog.current_setting('role', true) = 'authenticated'
                then (select auth.uid())
        end,
        v_name,
        v_phone,
        v_email,
        v_age,
        private.request_detail_text(v_details, 'gender', 20),
        private.request_detail_text(v_details, 'chief_complaint', c_text_max),
        private.request_detail_text(v_details, 'symptoms', c_text_max),
        private.request_detail_text(v_details, 'medical_history', c_text_max),
        private.request_detail_text(v_details, 'current_medications', c_text_max),
        private.request_detail_text(v_details, 'allergies', c_text_max),
        v_urgency,
        v_contact,
        pg_catalog.now()  -- replaced by the slot's start time in the trigger
    )
    returning id into v_request_id;

    if v_anonymous then
        insert into private.anonymous_booking_holds (request_id, phone, client_address)
        values (v_request_id, v_phone, v_address);
    elsif not v_approval_required then
        -- The decision trigger turns the hold into a confirmed reservation.
        update public.reservation_request set status = 'approved'
        where id = v_request_id;
        select r.id into v_reservation_id
        from public.reservation as r
        where r.request_id = v_request_id;
    end if;

    return pg_catalog.jsonb_build_object(
        'request_id', v_request_id,
        'reservation_id', v_reservation_id,
        'status', case when v_reservation_id is null then 'pending' else 'confirmed' end
    );
end
$fn$;

-- RPC: the API (security invoker) --------------------------------------------------------

-- The functions frontends, the WhatsApp service and the worker call. Each is a security
-- invoker wrapper of the private function of the same name, which is documented above and
-- does the checked, privileged work (Supabase advisors: no security definer function in an
-- exposed schema).

create or replace function public.request_reservation(
    p_slot_id uuid, p_patient_name text, p_patient_phone text, p_details jsonb default '{}'
)
returns jsonb
language sql
set search_path = ''
as $fn$
    select private.request_reservation(p_slot_id, p_patient_name, p_patient_phone, p_details)
$fn$;

revoke execute on function private.request_detail_text(jsonb, text, integer) from public;
revoke execute on function private.request_client_address() from public;
revoke execute on function private.enforce_anonymous_booking_caps(uuid, uuid, text, text)
from public;
revoke execute on function private.request_reservation(uuid, text, text, jsonb) from public;
-- The API wrappers in public call these as the caller; anon only books.
grant execute on function private.request_reservation(uuid, text, text, jsonb)
to anon, authenticated, service_role;

revoke execute on function public.request_reservation(uuid, text, text, jsonb) from public;
-- request_reservation is open to anon: patients without an account book through it.
grant execute on function public.request_reservation(uuid, text, text, jsonb)
to anon, authenticated, service_role;
