//! End-to-end tests: the real looptop binary, real files and inotify, real processes.

mod config;
mod examples;
mod harness;
mod history;
mod output;
mod stopping;
mod watching;
