-- storage.objects, bucket 'ticket-files': objects live under '<ticket id>/<folder>/<file name>';
-- the ticket's parties read them (download, signed URLs); uploads go to the folder of one's own
-- part (private.may_upload_ticket_file: results/ by the diagnostics centre while the order is
-- in_progress or results_ready, images/ by the patient to their open consultation, documents/
-- by the fulfiller). No update or delete policy: nothing is overwritten or removed through the
-- API (no upsert either, which needs update), since clinical records are kept. Other buckets
-- are left to their own policies.

drop policy if exists "Ticket parties can read ticket files" on storage.objects;
create policy "Ticket parties can read ticket files"
on storage.objects for select to authenticated
using (bucket_id = 'ticket-files' and private.may_read_ticket_file(name));

drop policy if exists "Ticket parties can upload ticket files to their folder"
on storage.objects;
create policy "Ticket parties can upload ticket files to their folder"
on storage.objects for insert to authenticated
with check (bucket_id = 'ticket-files' and private.may_upload_ticket_file(name));
