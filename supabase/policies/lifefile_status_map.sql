-- private.lifefile_status_map: Lifefile status -> ticket status. Not exposed: operators edit it.

revoke all on private.lifefile_status_map from public, anon, authenticated, service_role;
