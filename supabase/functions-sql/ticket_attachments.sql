-- Ticket files: objects in the private Storage bucket 'ticket-files' under
-- '<ticket id>/<folder>/<file name>', who may upload into which folder, and the
-- ticket_attachments rows that list them for frontends (registered by the uploader through
-- register_ticket_attachment, which checks the object exists in that ticket's folder).

-- The ticket an object name of bucket ticket-files belongs to: its first folder, when the name
-- has the form '<ticket id>/<folder>/<file name>' (exactly three parts, none empty); else null.
create or replace function private.ticket_file_ticket_id(p_name text)
returns uuid
language sql immutable
set search_path = ''
as $fn$
    select case
        when p_name ~ '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}/[^/]+/[^/]+$'
            then pg_catalog.split_part(p_name, '/', 1)::uuid
    end
$fn$;

-- The attachment kind an object name's folder stands for: results/ -> result,
-- images/ -> image, documents/ -> document; null for any other folder or form.
create or replace function private.ticket_file_kind(p_name text)
returns text
language sql immutable
set search_path = ''
as $fn$
    select case pg_catalog.split_part(p_name, '/', 2)
        when 'results' then 'result'
        when 'images' then 'image'
        when 'documents' then 'document'
    end
    where private.ticket_file_ticket_id(p_name) is not null
$fn$;

-- Whether the caller may upload object p_name into bucket ticket-files: a result by a member of
-- the diagnostics centre of a diagnostic order that is in_progress or results_ready; an image by
-- the patient of their consultation while it is open (not terminal); a document by any member of
-- a ticket's fulfiller (once sent) while the ticket is not terminal. One answer for everything
-- else, unknown tickets included.
create or replace function private.may_upload_ticket_file(p_name text)
returns boolean
language sql stable
security definer
set search_path = ''
as $fn$
    select exists (
        select from public.healthcare_tickets as t
        inner join public.ticket_statuses as s
            on t.ticket_type = s.ticket_type and t.status = s.status
        where
            t.id = private.ticket_file_ticket_id(p_name)
            and case private.ticket_file_kind(p_name)
                when 'result' then
                    t.ticket_type = 'diagnostic'
                    and t.status in ('in_progress', 'results_ready')
                    and private.fulfiller_is_party(t.sent_at)
                    and private.is_provider_member(t.secondary_provider_id)
                when 'image' then
                    t.ticket_type = 'consultation'
                    and t.patient_id = (select auth.uid())
                    and not s.is_terminal
                when 'document' then
                    private.fulfiller_is_party(t.sent_at)
                    and private.is_provider_member(t.secondary_provider_id)
                    and not s.is_terminal
                else false
            end
    )
$fn$;

-- Whether the caller may read object p_name of bucket ticket-files: any party of its ticket.
create or replace function private.may_read_ticket_file(p_name text)
returns boolean
language sql stable
security definer
set search_path = ''
as $fn$
    select coalesce(private.is_ticket_party(private.ticket_file_ticket_id(p_name)), false)
$fn$;

-- The work of public.register_ticket_attachment, with the privileges it needs (it reads
-- storage.objects and writes ticket_attachments, which API roles cannot).
create or replace function private.register_ticket_attachment(
    p_object_name text, p_sha256 text default null
)
returns public.ticket_attachments
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_object storage.objects;
    v_ticket_id uuid := private.ticket_file_ticket_id(p_object_name);
    v_kind text := private.ticket_file_kind(p_object_name);
    v_attachment public.ticket_attachments;
begin
    if (select auth.uid()) is null then
        raise exception 'sign in to register ticket files'
            using errcode = '42501', hint = 'Call register_ticket_attachment as the uploader.';
    end if;
    select o.* into v_object from storage.objects as o
    where
        o.bucket_id = 'ticket-files'
        and o.name = p_object_name
        and coalesce(o.owner_id, o.owner::text) = (select auth.uid())::text;
    -- One answer whether the object is missing, someone else's, or outside a ticket folder.
    if v_object.id is null or v_kind is null or not private.is_ticket_party(v_ticket_id) then
        raise exception 'there is no file % of yours in a ticket folder of bucket ticket-files '
            '(CH008)', p_object_name
            using errcode = 'CH008',
            hint = 'Upload to <ticket id>/results|images|documents/<file name> first, then '
            || 'register that name.';
    end if;
    if p_sha256 is not null and p_sha256 !~ '^[0-9a-fA-F]{64}$' then
        raise exception 'sha256 must be 64 hexadecimal characters, not %', p_sha256
            using errcode = '22023', hint = 'Leave it out, or send the file''s SHA-256 in hex.';
    end if;
    insert into public.ticket_attachments (
        ticket_id, bucket_id, object_name, kind, content_type, size_bytes, sha256, uploaded_by
    )
    values (
        v_ticket_id, 'ticket-files', p_object_name, v_kind, v_object.metadata ->> 'mimetype',
        (v_object.metadata ->> 'size')::bigint, pg_catalog.lower(p_sha256), (select auth.uid())
    )
    on conflict (bucket_id, object_name) do nothing
    returning * into v_attachment;
    if v_attachment.id is null then
        -- Registered before (a retry): the same row.
        select a.* into v_attachment from public.ticket_attachments as a
        where a.bucket_id = 'ticket-files' and a.object_name = p_object_name;
    end if;
    return v_attachment;
end
$fn$;

-- register_ticket_attachment(p_object_name, p_sha256 default null): lists the caller's uploaded
-- object p_object_name of bucket ticket-files ('<ticket id>/<folder>/<file name>') in
-- ticket_attachments, with its kind from the folder (results/ -> result, images/ -> image,
-- documents/ -> document), content type and size from the object's metadata, and p_sha256 as
-- the uploader's claim. Returns the attachment row (the same one when called again).
-- Raises 42501 when no user is signed in; CH008 when there is no such object of the caller's in
-- a folder of a ticket they are a party to; 22023 for a malformed sha256.
create or replace function public.register_ticket_attachment(
    p_object_name text, p_sha256 text default null
)
returns public.ticket_attachments
language sql
security invoker
set search_path = ''
as $fn$
    select * from private.register_ticket_attachment(p_object_name, p_sha256)
$fn$;

-- A new result reaches the patient and the ordering doctor's practice.
create or replace function private.notify_ticket_attachment()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_ticket public.healthcare_tickets;
begin
    if new.kind <> 'result' then
        return null;
    end if;
    select t.* into v_ticket from public.healthcare_tickets as t where t.id = new.ticket_id;
    perform private.notify(
        array[v_ticket.patient_id] || private.provider_member_ids(v_ticket.primary_provider_id),
        new.ticket_id, 'diagnostic_result_added', 'New test result',
        pg_catalog.format('A result was added to %s', private.ticket_label(v_ticket)),
        pg_catalog.jsonb_build_object(
            'ticket_id', new.ticket_id, 'attachment_id', new.id, 'kind', new.kind
        )
    );
    return null;
end
$fn$;

revoke execute on function private.ticket_file_ticket_id(text) from public;
revoke execute on function private.ticket_file_kind(text) from public;
revoke execute on function private.may_upload_ticket_file(text) from public;
revoke execute on function private.may_read_ticket_file(text) from public;
revoke execute on function private.register_ticket_attachment(text, text) from public;
revoke execute on function public.register_ticket_attachment(text, text) from public, anon;
revoke execute on function private.notify_ticket_attachment() from public;
grant execute on function private.ticket_file_ticket_id(text) to authenticated, service_role;
grant execute on function private.ticket_file_kind(text) to authenticated, service_role;
grant execute on function private.may_upload_ticket_file(text) to authenticated, service_role;
grant execute on function private.may_read_ticket_file(text) to authenticated, service_role;
grant execute on function private.register_ticket_attachment(
    text, text
) to authenticated, service_role;
grant execute on function public.register_ticket_attachment(
    text, text
) to authenticated, service_role;

drop trigger if exists notify_ticket_attachment on public.ticket_attachments;
create trigger notify_ticket_attachment
after insert on public.ticket_attachments
for each row execute function private.notify_ticket_attachment();
