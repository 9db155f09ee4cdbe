-- The messaging tables in private (opt-outs, the Twilio inbox, the shared send budget, the
-- placeholder and error-code catalogues): not exposed; only the service, the worker and
-- operators (system sessions) use them.

revoke all on private.message_opt_outs from public, anon, authenticated, service_role;
revoke all on private.twilio_webhook_events from public, anon, authenticated, service_role;
revoke all on private.twilio_send_budget from public, anon, authenticated, service_role;
revoke all on private.messaging_placeholders from public, anon, authenticated, service_role;
revoke all on private.twilio_error_actions from public, anon, authenticated, service_role;
