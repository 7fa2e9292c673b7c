//! One module per memectl verb.

pub mod validate;
