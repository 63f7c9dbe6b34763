//! looptop watches a project, reruns the targeted step when files change, and times every loop.
//!
//! Data flows one way. Sources (`sources::watcher`, `sources::runner`, `sources::sampler` for
//! CPU, memory and GPUs, `sources::profiler` for the job's Python stacks, signal handling in
//! `app`) send typed `event::Event`s on one channel.
//! `state::update` is a pure function of the state, an event and the time; it returns
//! `effect::Effect`s, which `app::run_loop` carries out: starting and signalling runs, and
//! handing `effect::Report`s to a sink (`headless::Printer` for `looptop run`, and the history
//! in `store`, an embedded DuckDB file that also answers `looptop history`, `stats`, `query` and
//! `export`). Configuration (`config`) is read and checked before the loop starts.

pub mod app;
pub mod cli;
pub mod commands;
pub mod config;
pub mod diagnose;
pub mod effect;
pub mod event;
pub mod format;
pub mod headless;
pub mod profile;
pub mod report;
pub mod sample;
pub mod scaffold;
pub mod sources;
pub mod state;
pub mod store;
pub mod text;
pub mod tui;
pub mod ui;
