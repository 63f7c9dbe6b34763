//! End-to-end tests: the real looptop binary, real files and inotify, real processes.

mod config;
mod diagnosis;
mod examples;
mod fake_nvml;
mod gpu;
mod harness;
mod history;
mod init;
mod metrics_and_queries;
mod output;
mod sampling;
mod stopping;
mod trust;
mod tui;
mod watching;
