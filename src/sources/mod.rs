//! Sources: each turns part of the world into `Event`s on the loop's channel.

pub mod guard;
pub mod ignore_rules;
pub mod imports;
pub mod junit;
pub mod profiler;
pub mod runner;
pub mod sampler;
pub mod spawn;
pub mod test_results;
pub mod watcher;
