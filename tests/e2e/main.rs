//! End-to-end tests: the real looptop binary, real files and inotify, real processes.

mod config;
mod diagnosis;
mod examples;
mod fake_nvml;
mod files_read;
mod first_contact;
mod gpu;
mod harness;
mod history;
mod init;
mod metrics_and_queries;
mod output;
mod per_gpu;
mod profiling;
mod readme;
mod safety;
mod sampling;
mod stopping;
mod test_jobs;
mod threads;
mod trust;
mod tui;
mod watching;
