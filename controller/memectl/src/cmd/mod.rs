//! One module per memectl verb (mini-redis): each owns its flags, what it fetches and its
//! layout; renderers are pure functions of the API types and a [`crate::render::View`].

pub mod completion;
pub mod describe;
pub mod diff;
pub mod get;
pub mod history;
pub mod logs;
pub mod reconcile;
pub mod resume;
pub mod rollback;
pub mod status;
pub mod suspend;
pub mod validate;
pub mod wait;
