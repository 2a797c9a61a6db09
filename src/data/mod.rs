//! Data sources: the sandbox generator, the production upstream, and the
//! claims partners transmit.

mod direct;
pub mod sandbox;
pub mod transmitted;
pub mod upstream;
