"""Ticket files in Supabase Storage: the emulated storage schema, the private bucket, who may
upload into which folder and read what (attacked as each party and a stranger), and
ticket_attachments, registered only for an object that exists in that ticket's folder."""

from __future__ import annotations

import psycopg
import pytest

from tests.careflows.helpers import register, upload
from tests.helpers import as_anon, as_user, create_user
from tests.tickets.factories import make_world, raises_sqlstate, set_status, ticket_at

SHA = "ab" * 32


def test_the_bootstrap_recreates_the_storage_schema_as_supabase_defines_it(
    conn: psycopg.Connection,
) -> None:
    columns = {
        table: {
            name
            for (name,) in conn.execute(
                "select column_name from information_schema.columns"
                " where table_schema = 'storage' and table_name = %s",
                [table],
            )
        }
        for table in ("buckets", "objects")
    }
    assert {"id", "name", "owner_id", "public", "file_size_limit", "allowed_mime_types"} <= (
        columns["buckets"]
    )
    assert {
        "id", "bucket_id", "name", "owner_id", "metadata", "user_metadata", "version",
        "path_tokens", "created_at", "updated_at", "last_accessed_at",
    } <= columns["objects"]  # fmt: skip
    row = conn.execute(
        "select storage.foldername('t/results/scan.final.pdf'),"
        " storage.filename('t/results/scan.final.pdf'),"
        " storage.extension('t/results/scan.final.pdf'),"
        " (select relrowsecurity from pg_class where oid = 'storage.objects'::regclass)"
    ).fetchone()
    assert row == (["t", "results"], "scan.final.pdf", "pdf", True)
    conn.execute(
        "insert into storage.objects (bucket_id, name) values ('ticket-files', 'a/b/c.pdf')"
    )
    assert conn.execute(
        "select path_tokens from storage.objects where name = 'a/b/c.pdf'"
    ).fetchone() == (["a", "b", "c.pdf"],)


def test_the_ticket_files_bucket_is_private_with_a_size_limit_and_clinical_types(
    conn: psycopg.Connection,
) -> None:
    assert conn.execute(
        "select public, file_size_limit, allowed_mime_types from storage.buckets"
        " where id = 'ticket-files'"
    ).fetchone() == (
        False,
        50 * 1024 * 1024,
        ["application/pdf", "image/png", "image/jpeg", "application/dicom"],
    )


def test_the_centre_uploads_results_only_while_the_order_is_in_progress_or_results_ready(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    order = ticket_at(conn, world, "diagnostic", "sent")
    with raises_sqlstate("42501"):
        upload(conn, world.diagnostics.staff, f"{order}/results/early.pdf")
    set_status(conn, order, "in_progress")
    upload(conn, world.diagnostics.staff, f"{order}/results/cbc.pdf")
    register(conn, world.diagnostics.staff, f"{order}/results/cbc.pdf")
    set_status(conn, order, "results_ready")
    upload(conn, world.diagnostics.owner, f"{order}/results/cbc-2.pdf")
    set_status(conn, order, "completed")
    with raises_sqlstate("42501"):
        upload(conn, world.diagnostics.staff, f"{order}/results/late.pdf")


@pytest.mark.parametrize("who", ["patient", "doctor", "other_centre", "stranger", "pharmacy"])
def test_nobody_but_the_centre_uploads_results(conn: psycopg.Connection, who: str) -> None:
    world = make_world(conn)
    order = ticket_at(conn, world, "diagnostic", "in_progress")
    user = {
        "patient": world.patient,
        "doctor": world.doctor.owner,
        "other_centre": create_user(conn, "diagnostics"),
        "stranger": world.other_patient,
        "pharmacy": world.pharmacy.staff,
    }[who]
    with raises_sqlstate("42501"):
        upload(conn, user, f"{order}/results/fake.pdf")


def test_anonymous_callers_neither_upload_nor_read_ticket_files(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    order = ticket_at(conn, world, "diagnostic", "in_progress")
    upload(conn, world.diagnostics.staff, f"{order}/results/cbc.pdf")
    with as_anon(conn) as c, raises_sqlstate("42501"):
        c.execute(
            "insert into storage.objects (bucket_id, name) values ('ticket-files', %s)",
            [f"{order}/results/anon.pdf"],
        )
    with as_anon(conn) as c:
        assert c.execute("select count(*) from storage.objects").fetchone() == (0,)
        assert c.execute("update storage.objects set metadata = '{}'").rowcount == 0


def test_the_patient_uploads_images_to_their_open_consultation_only(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    consultation = ticket_at(conn, world, "consultation", "accepted")
    upload(conn, world.patient, f"{consultation}/images/rash.jpg", mimetype="image/jpeg")
    # Another folder, another patient's consultation, a closed one, the GP into images/.
    for user, name in (
        (world.patient, f"{consultation}/results/rash.jpg"),
        (world.patient, f"{consultation}/rash.jpg"),
        (world.other_patient, f"{consultation}/images/x.jpg"),
        (world.gp.staff, f"{consultation}/images/x.jpg"),
    ):
        with raises_sqlstate("42501"):
            upload(conn, user, name)
    set_status(conn, consultation, "completed")
    with raises_sqlstate("42501"):
        upload(conn, world.patient, f"{consultation}/images/later.jpg")


def test_a_fulfiller_uploads_documents_and_a_drafts_fulfiller_does_not(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    referral = ticket_at(conn, world, "referral", "accepted")
    upload(conn, world.specialist.staff, f"{referral}/documents/letter.pdf")
    draft = ticket_at(conn, world, "referral")
    with raises_sqlstate("42501"):
        upload(conn, world.specialist.staff, f"{draft}/documents/letter.pdf")
    with raises_sqlstate("42501"):
        upload(conn, world.patient, f"{referral}/documents/letter.pdf")


def test_parties_read_ticket_files_and_strangers_see_none(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    order = ticket_at(conn, world, "diagnostic", "in_progress")
    upload(conn, world.diagnostics.staff, f"{order}/results/cbc.pdf")
    query = "select name from storage.objects where bucket_id = 'ticket-files'"
    for user in (
        world.patient, world.doctor.owner, world.doctor.staff, world.diagnostics.owner,
        world.admin,
    ):  # fmt: skip
        with as_user(conn, user) as c:
            assert c.execute(query).fetchall() == [(f"{order}/results/cbc.pdf",)]
    for user in (world.other_patient, world.pharmacy.staff, world.gp.owner):
        with as_user(conn, user) as c:
            assert c.execute(query).fetchall() == []
    with as_anon(conn) as c:
        assert c.execute(query).fetchall() == []


def test_nobody_overwrites_or_deletes_a_ticket_file_through_the_api(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    order = ticket_at(conn, world, "diagnostic", "in_progress")
    upload(conn, world.diagnostics.staff, f"{order}/results/cbc.pdf")
    for user in (world.diagnostics.staff, world.doctor.owner, world.patient, world.admin):
        with as_user(conn, user) as c:
            assert (
                c.execute(
                    "update storage.objects set metadata = '{}' where bucket_id = 'ticket-files'"
                ).rowcount
                == 0
            )
            assert (
                c.execute("delete from storage.objects where bucket_id = 'ticket-files'").rowcount
                == 0
            )
    # An upsert of the same name (insert ... on conflict do update) is refused too.
    with raises_sqlstate("23505"):
        upload(conn, world.diagnostics.staff, f"{order}/results/cbc.pdf")
    assert conn.execute("select count(*) from storage.objects").fetchone() == (1,)


def test_registering_lists_the_file_with_its_kind_type_and_size_from_storage(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    order = ticket_at(conn, world, "diagnostic", "in_progress")
    name = f"{order}/results/cbc.pdf"
    upload(conn, world.diagnostics.staff, name, size=4096)
    row = register(conn, world.diagnostics.staff, name, SHA.upper())
    assert row["ticket_id"] == order
    assert (row["kind"], row["content_type"], row["size_bytes"], row["sha256"]) == (
        "result", "application/pdf", 4096, SHA,
    )  # fmt: skip
    assert row["uploaded_by"] == world.diagnostics.staff
    assert register(conn, world.diagnostics.staff, name)["id"] == row["id"]  # a retry: same row
    for user in (world.patient, world.doctor.staff):
        with as_user(conn, user) as c:
            assert c.execute(
                "select kind from public.ticket_attachments where ticket_id = %s", [order]
            ).fetchall() == [("result",)]
    for user in (world.other_patient, world.pharmacy.owner):
        with as_user(conn, user) as c:
            assert c.execute("select count(*) from public.ticket_attachments").fetchone() == (0,)


def test_an_attachment_names_only_an_object_of_the_callers_in_that_tickets_folder(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    order = ticket_at(conn, world, "diagnostic", "in_progress")
    other = ticket_at(conn, world, "diagnostic", "in_progress", patient_id=world.other_patient)
    upload(conn, world.diagnostics.staff, f"{order}/results/cbc.pdf")
    # Nothing uploaded there; someone else's upload; another bucket; a folder of no kind.
    conn.execute(
        "insert into storage.buckets (id, name) values ('avatars', 'avatars');"
        " insert into storage.objects (bucket_id, name, owner_id) values"
        f" ('avatars', '{other}/results/x.pdf', '{world.diagnostics.staff}'),"
        f" ('ticket-files', '{other}/misc/x.pdf', '{world.diagnostics.staff}')"
    )
    for user, name in (
        (world.diagnostics.staff, f"{order}/results/missing.pdf"),
        (world.diagnostics.owner, f"{order}/results/cbc.pdf"),
        (world.patient, f"{order}/results/cbc.pdf"),
        (world.diagnostics.staff, f"{other}/results/x.pdf"),
        (world.diagnostics.staff, f"{other}/misc/x.pdf"),
        (world.other_patient, f"{order}/results/cbc.pdf"),
    ):
        with raises_sqlstate("CH008"):
            register(conn, user, name)
    with raises_sqlstate("22023"):
        register(conn, world.diagnostics.staff, f"{order}/results/cbc.pdf", "not-a-digest")
    # The table itself is not writable through the API.
    with as_user(conn, world.diagnostics.staff) as c, raises_sqlstate("42501"):
        c.execute(
            "insert into public.ticket_attachments (ticket_id, object_name, kind, uploaded_by)"
            " values (%s, %s, 'result', %s)",
            [order, f"{order}/results/missing.pdf", world.diagnostics.staff],
        )
    with as_anon(conn) as c, raises_sqlstate("42501"):
        c.execute("select public.register_ticket_attachment('x/y/z')")


def test_a_new_result_notifies_the_patient_and_the_ordering_doctor(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    order = ticket_at(conn, world, "diagnostic", "in_progress")
    name = f"{order}/results/cbc.pdf"
    upload(conn, world.diagnostics.staff, name)
    register(conn, world.diagnostics.staff, name)
    notified = {
        r
        for (r,) in conn.execute(
            "select recipient_id from public.notifications"
            " where ticket_id = %s and type = 'diagnostic_result_added'",
            [order],
        )
    }
    assert notified == {world.patient, world.doctor.owner, world.doctor.staff}
