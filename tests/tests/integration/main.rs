//! End-to-end tests: a real server on port 0 over a throwaway database,
//! phones running the shared client engine over HTTP.
//!
//! Every storage scenario runs on SQLite, and again on PostgreSQL when
//! `AIDSYNC_TEST_POSTGRES_URL` names a server (otherwise those tests print
//! that they were skipped).

#![allow(clippy::unwrap_used)]

mod attachments;
mod auth;
mod backup;
mod bad_input;
mod carried;
mod common;
mod coordinator;
mod donor;
mod events;
mod grn;
mod group_commit;
mod metrics;
mod projections;
mod servers;
mod sync_story;
mod units;
mod web;

/// Runs an async scenario `fn(&TestDb)` as one SQLite test and one
/// PostgreSQL test.
macro_rules! on_both_backends {
    ($scenario:path => $sqlite:ident, $postgres:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sqlite() {
            let db = aidsync_tests::harness::TestDb::sqlite().unwrap();
            $scenario(&db).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $postgres() {
            let Some(db) = aidsync_tests::harness::TestDb::postgres(stringify!($postgres))
                .await
                .unwrap()
            else {
                return;
            };
            $scenario(&db).await;
            db.cleanup().await.unwrap();
        }
    };
}

on_both_backends!(sync_story::two_phones_offline_on_one_shipment => sqlite_two_phones_offline_on_one_shipment, postgres_two_phones_offline_on_one_shipment);
on_both_backends!(sync_story::retried_sync_is_a_no_op => sqlite_retried_sync_is_a_no_op, postgres_retried_sync_is_a_no_op);
on_both_backends!(sync_story::restart_loses_nothing_acknowledged => sqlite_restart_loses_nothing_acknowledged, postgres_restart_loses_nothing_acknowledged);
on_both_backends!(sync_story::lagging_phone_catches_up_and_new_shipments_arrive => sqlite_lagging_phone_catches_up, postgres_lagging_phone_catches_up);
on_both_backends!(sync_story::facilities_are_scoped_and_managed_by_admins => sqlite_facilities_are_scoped, postgres_facilities_are_scoped);
on_both_backends!(sync_story::web_app_is_served_beside_the_api => sqlite_web_app_is_served, postgres_web_app_is_served);
on_both_backends!(bad_input::bad_sync_requests_are_refused_and_change_nothing => sqlite_bad_sync_requests_change_nothing, postgres_bad_sync_requests_change_nothing);
on_both_backends!(auth::authorization_matrix => sqlite_authorization_matrix, postgres_authorization_matrix);
on_both_backends!(auth::login_issues_a_device_and_refuses_bad_passwords => sqlite_login_issues_a_device, postgres_login_issues_a_device);
on_both_backends!(auth::revoked_and_expired_phones_keep_their_outbox => sqlite_revoked_and_expired_phones_keep_their_outbox, postgres_revoked_and_expired_phones_keep_their_outbox);
on_both_backends!(auth::brute_force_and_floods_are_throttled => sqlite_brute_force_and_floods_are_throttled, postgres_brute_force_and_floods_are_throttled);
on_both_backends!(auth::oversized_and_over_rate_requests_are_refused => sqlite_oversized_and_over_rate_requests_are_refused, postgres_oversized_and_over_rate_requests_are_refused);
on_both_backends!(bad_input::impersonation_is_refused => sqlite_impersonation_is_refused, postgres_impersonation_is_refused);
on_both_backends!(bad_input::bad_json_requests_are_refused => sqlite_bad_json_requests_are_refused, postgres_bad_json_requests_are_refused);
on_both_backends!(bad_input::one_bad_document_does_not_block_the_others => sqlite_one_bad_document_does_not_block_the_others, postgres_one_bad_document_does_not_block_the_others);
on_both_backends!(projections::fixed_mix => sqlite_projections_fixed_mix, postgres_projections_fixed_mix);
on_both_backends!(coordinator::reviews_settle_discrepancies_and_reach_phones => sqlite_reviews_settle_discrepancies, postgres_reviews_settle_discrepancies);
on_both_backends!(coordinator::manifests_import_all_or_nothing => sqlite_manifests_import_all_or_nothing, postgres_manifests_import_all_or_nothing);
on_both_backends!(coordinator::reports_filter_scope_and_export => sqlite_reports_filter_scope_and_export, postgres_reports_filter_scope_and_export);
on_both_backends!(coordinator::dashboards_hear_of_syncs_live => sqlite_dashboards_hear_of_syncs_live, postgres_dashboards_hear_of_syncs_live);
on_both_backends!(coordinator::totals_never_let_surplus_fill_a_gap => sqlite_totals_never_let_surplus_fill_a_gap, postgres_totals_never_let_surplus_fill_a_gap);
on_both_backends!(events::streams_end_when_an_admin_revokes_the_device => sqlite_events_end_when_an_admin_revokes_the_device, postgres_events_end_when_an_admin_revokes_the_device);
on_both_backends!(events::streams_end_at_logout => sqlite_events_end_at_logout, postgres_events_end_at_logout);
on_both_backends!(events::streams_end_when_the_password_is_reset => sqlite_events_end_when_the_password_is_reset, postgres_events_end_when_the_password_is_reset);
on_both_backends!(events::streams_end_when_the_token_expires => sqlite_events_end_when_the_token_expires, postgres_events_end_when_the_token_expires);
on_both_backends!(events::streams_end_when_another_process_revokes_the_device => sqlite_events_end_when_another_process_revokes_the_device, postgres_events_end_when_another_process_revokes_the_device);
on_both_backends!(metrics::syncs_and_refusals_are_counted => sqlite_syncs_and_refusals_are_counted, postgres_syncs_and_refusals_are_counted);
on_both_backends!(servers::phones_and_dashboards_span_two_servers => sqlite_phones_and_dashboards_span_two_servers, postgres_phones_and_dashboards_span_two_servers);
on_both_backends!(servers::login_failures_count_across_servers => sqlite_login_failures_count_across_servers, postgres_login_failures_count_across_servers);
on_both_backends!(group_commit::syncs_that_arrive_together_commit_together => sqlite_syncs_that_arrive_together_commit_together, postgres_syncs_that_arrive_together_commit_together);
on_both_backends!(servers::two_servers_start_at_once => sqlite_two_servers_start_at_once, postgres_two_servers_start_at_once);
on_both_backends!(attachments::photos_upload_resumably_once_and_only_in_scope => sqlite_photos_upload_resumably_once_and_only_in_scope, postgres_photos_upload_resumably_once_and_only_in_scope);
on_both_backends!(attachments::wrong_bytes_and_limits_are_refused => sqlite_wrong_bytes_and_limits_are_refused, postgres_wrong_bytes_and_limits_are_refused);
on_both_backends!(attachments::schema_1_shipments_are_upgraded_at_start => sqlite_schema_1_shipments_are_upgraded_at_start, postgres_schema_1_shipments_are_upgraded_at_start);
on_both_backends!(attachments::thumbnails_and_the_donor_export => sqlite_thumbnails_and_the_donor_export, postgres_thumbnails_and_the_donor_export);
on_both_backends!(attachments::a_file_survives_a_kill_after_its_last_chunk => sqlite_a_file_survives_a_kill_after_its_last_chunk, postgres_a_file_survives_a_kill_after_its_last_chunk);
on_both_backends!(grn::the_goods_received_note_is_a_pdf_with_everything_signed => sqlite_goods_received_note_pdf, postgres_goods_received_note_pdf);
on_both_backends!(donor::the_donor_report_lists_every_discrepancy_with_its_evidence => sqlite_donor_report, postgres_donor_report);
on_both_backends!(units::units_go_from_receipt_to_the_asset_register => sqlite_units_to_asset_register, postgres_units_to_asset_register);
on_both_backends!(carried::a_hand_carried_file_syncs_once_as_its_phone => sqlite_hand_carried_file, postgres_hand_carried_file);
