//! The Docker labels and object names the controller owns: defined in [`meme_api::labels`] (so
//! memectl shares them) and re-exported here, where the adapter and the reconciler use them.

pub use meme_api::labels::*;
