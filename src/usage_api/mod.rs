//! The usage monitoring API's domain (SPEC §9, seeds/003): product events that
//! the platform's services and clients report (`sql_generation`,
//! `dashboard_publish`, …), stored in `app_events`. Not to be confused with
//! telemetry, which is tool events extracted from transcripts.

pub mod event;
pub mod intake;
pub mod posthog;

pub use event::NewAppEvent;
pub use intake::{Intake, Refused};
