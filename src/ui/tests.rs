//! Snapshot tests of whole screens (ratatui's TestBackend), at 80x24 and 160x48, of the main
//! states: idle, running, a failed run, an input-bound verdict with stalls, no GPU, the help
//! overlay, and each theme (those with styles). The time is fixed, so frames are deterministic.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use ratatui::backend::TestBackend;
use ratatui::Terminal;

use super::{draw, Theme};
use crate::config::{JobCommand, JobSpec};
use crate::diagnose::regression::Flag;
use crate::event::{GpuStatus, Notice, RunKey};
use crate::report::{Description, Outcome};
use crate::sample::{GpuInfo, GpuSample, GpuUnavailable, HostSample, ProcessSample, Sample, TreeSample};
use crate::state::view::{PastRun, TrendPoint, View};
use crate::state::{ActiveRun, Coalescing, Mode, Spawned, State, Trigger};

fn job(name: &str, command: &str) -> JobSpec {
    let mut spec = JobSpec::ad_hoc(JobCommand::Shell(command.into()), PathBuf::from("/home/me/proj"));
    spec.name = name.into();
    spec
}

fn point(i: usize, ms: f64, outcome: Outcome) -> TrendPoint {
    TrendPoint {
        run_id: format!("run-{i}"),
        duration_ms: ms,
        outcome,
        regression: None,
        started: format!("2026-11-25T10:{:02}:00Z", i % 60),
        trigger: vec!["model.py".into()],
        description: Description {
            verdict: Some("gpu-bound: GPU busy 91 %".into()),
            ..Description::default()
        },
    }
}

/// Two jobs; the second (train) shown, with 40 past runs and some output.
fn base(now: Instant) -> State {
    let coalescing = Coalescing {
        debounce: Duration::from_millis(5),
        debounce_max: Duration::from_millis(500),
    };
    let mut state = State::new(
        vec![job("test", "pytest -x"), job("train", "python train.py")],
        coalescing,
        Mode::Watch,
    );
    state.root = PathBuf::from("/home/me/proj");
    let mut view = View::new(2, 0);
    view.job = 1;
    for i in 0..40 {
        let outcome = match i % 13 {
            5 => Outcome::Fail,
            9 => Outcome::Killed,
            12 => Outcome::Timeout,
            _ => Outcome::Pass,
        };
        let ms = 1200.0 + (i as f64 * 37.0) % 400.0 + if i >= 34 { 1500.0 } else { 0.0 };
        let mut p = point(i, ms, outcome);
        if i == 34 {
            p.regression = Some(Flag::Slower);
        }
        view.jobs[1].trend.push_back(p);
    }
    view.jobs[1].output.push(
        b"\x1b[1mEpoch 3\x1b[0m\nstep  10 loss 0.4123\nstep  20 loss 0.3811\n\x1b[31mwarning: lr high\x1b[0m\nstep  30 loss 0.3502\n",
    );
    state.view = Some(view);
    state.gpus = Some(GpuStatus::Available {
        library: "libnvidia-ml.so.1".into(),
        driver: Some("550.54.15".into()),
        devices: vec![GpuInfo {
            index: 0,
            name: "NVIDIA H100 80GB HBM3".into(),
            mem_total_bytes: Some(85_000_000_000),
            missing: Vec::new(),
        }],
    });
    let _ = now;
    state
}

fn sample(t_ms: f64, util: u32, loader_cpu: f32) -> Sample {
    Sample {
        key: RunKey(1),
        t_ms,
        host: HostSample {
            cpu_pct: 31.0,
            core_pct: vec![100.0, 12.0, 8.0, 30.0],
            mem_used_bytes: 12_000_000_000,
            mem_total_bytes: 64_000_000_000,
            swap_used_bytes: 0,
            load_1m: 1.2,
        },
        tree: TreeSample {
            processes: 5,
            threads: 44,
            cpu_pct: loader_cpu + 20.0,
            rss_bytes: 2_300_000_000,
            read_bytes_per_s: 1e6,
            write_bytes_per_s: 0.0,
            run_queue_delay_pct: Some(4.0),
            top: vec![ProcessSample {
                pid: 4242,
                name: "python".into(),
                cpu_pct: loader_cpu,
                rss_bytes: 1_900_000_000,
                threads: Vec::new(),
            }],
            main_pid: Some(4242),
            ..TreeSample::default()
        },
        gpus: vec![GpuSample {
            index: 0,
            util_pct: Some(util),
            mem_util_pct: Some(5),
            mem_used_bytes: Some(9_000_000_000),
            mem_total_bytes: Some(85_000_000_000),
            power_mw: Some(120_000),
            temp_c: Some(40),
            sm_clock_mhz: Some(1980),
            job_present: Some(true),
            job_mem_bytes: Some(8_500_000_000),
            job_sm_pct: Some(util),
            ..GpuSample::default()
        }],
    }
}

/// The train job running for 12.4 s, its GPU starved for the last 14 samples.
fn running(now: Instant) -> State {
    let mut state = base(now);
    state.jobs[1].active = Some(ActiveRun {
        key: RunKey(1),
        trigger: Trigger::default(),
        spawned: Some(Spawned {
            run_id: "run-now".into(),
            pid: 4242,
            at: now - Duration::from_millis(12_400),
            wall: SystemTime::UNIX_EPOCH,
            log: None,
        }),
        exit: None,
        stop: None,
        usage: Default::default(),
        points: Vec::new(),
        files: Default::default(),
        cluster: Default::default(),
        stall: Default::default(),
        output: Default::default(),
        query: None,
        alongside: Default::default(),
        test_plan: None,
        test_results: None,
        profile: None,
    });
    if let Some(view) = state.view.as_mut() {
        for i in 0..48 {
            let starved = i >= 34;
            let util = if starved { 2 } else { 85 };
            view.jobs[1].sampled(&sample(
                250.0 * (i as f64 + 1.0),
                util,
                if starved { 99.0 } else { 60.0 },
            ));
        }
    }
    state
}

fn render(state: &State, theme: &Theme, width: u16, height: u16, now: Instant) -> ratatui::buffer::Buffer {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("terminal");
    terminal.draw(|frame| draw(frame, state, theme, now)).expect("draw");
    terminal.backend().buffer().clone()
}

/// The screen as text, one line per row.
fn text(buffer: &ratatui::buffer::Buffer) -> String {
    let width = usize::from(buffer.area.width);
    buffer
        .content()
        .chunks(width)
        .map(|row| {
            row.iter()
                .map(|c| c.symbol())
                .collect::<String>()
                .trim_end()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn both_sizes(name: &str, state: &State, now: Instant) {
    let theme = Theme::default_theme(true);
    for (w, h) in [(80, 24), (160, 48)] {
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), text(&render(state, &theme, w, h, now)));
    }
}

#[test]
fn idle() {
    let now = Instant::now();
    let mut state = base(now);
    if let Some(view) = state.view.as_mut() {
        view.jobs[1] = Default::default();
    }
    both_sizes("idle", &state, now);
}

#[test]
fn running_with_a_starved_gpu() {
    let now = Instant::now();
    both_sizes("running", &running(now), now);
}

#[test]
fn failed_run_selected() {
    let now = Instant::now();
    let mut state = base(now);
    if let Some(view) = state.view.as_mut() {
        view.cursor = Some(5);
        view.jobs[1].trend[5].description.metrics = Some("metrics: loss 2.310 (mean 2.402, 20 values)".into());
        view.notice = Some(Notice::warn("`train` failed (exit 1)"));
        // Its samples, as the history gives them back: busy GPU, then idle as it failed.
        let samples = (0..30).map(|i| sample(f64::from(i) * 250.0, if i < 24 { 90 } else { 0 }, 40.0));
        view.jobs[1].past = Some(PastRun::new("run-5".into(), samples.collect()));
    }
    both_sizes("failed", &state, now);
}

#[test]
fn a_selected_run_not_read_yet_says_so() {
    let now = Instant::now();
    let mut state = running(now);
    if let Some(view) = state.view.as_mut() {
        view.cursor = Some(3);
    }
    let text = text(&render(&state, &Theme::default_theme(false), 80, 24, now));
    assert!(text.contains("resources · run 4/40"), "{text}");
    assert!(text.contains("reading its samples from the history"), "{text}");
}

#[test]
fn input_bound_verdict_with_stalls() {
    let now = Instant::now();
    let mut state = running(now);
    state.jobs[1].active = None;
    if let Some(view) = state.view.as_mut() {
        let mut last = point(40, 5200.0, Outcome::Pass);
        last.description = Description {
            verdict: Some("input-bound: GPU busy 18 %, busiest process at 100 % of one core; 4 stalls, 5.3 s".into()),
            hints: vec![
                "one process is at 100 % of a core while the GPU waits: give the data loader more workers".into(),
            ],
            ..Description::default()
        };
        view.jobs[1].trend.push_back(last);
    }
    both_sizes("input_bound", &state, now);
}

#[test]
fn where_the_time_goes_for_a_profiled_run() {
    let now = Instant::now();
    let mut state = running(now);
    state.jobs[1].active = None;
    if let Some(view) = state.view.as_mut() {
        let mut last = point(40, 2400.0, Outcome::Pass);
        let profile = crate::profile::test_profile();
        last.description = Description {
            verdict: Some("cpu-bound: the job's processes used 99 % of one core".into()),
            profile: crate::report::profile_lines(&profile),
            hints: crate::diagnose::python::hints(&profile)
                .into_iter()
                .map(|h| h.text)
                .collect(),
            ..Description::default()
        };
        view.jobs[1].trend.push_back(last);
    }
    let screen = text(&render(&state, &Theme::default_theme(true), 160, 48, now));
    assert!(
        screen.contains("where the time goes (20 samples): 100 % row_features features.py:12"),
        "{screen}"
    );
    assert!(
        screen.contains("100 % idle") && screen.contains("wait threading.py:320"),
        "{screen}"
    );
    assert!(screen.contains("loader 0 % running, waits in get"), "{screen}");
    assert!(screen.contains("features.py:12 in row_features()"), "{screen}");
    insta::assert_snapshot!("where_the_time_goes_160x48", screen);
}

#[test]
fn no_gpu() {
    let now = Instant::now();
    let mut state = base(now);
    state.gpus = Some(GpuStatus::Unavailable(GpuUnavailable {
        reason: "no NVIDIA driver library: cannot load libnvidia-ml.so.1".into(),
        expected: true,
    }));
    both_sizes("no_gpu", &state, now);
}

#[test]
fn help_overlay() {
    let now = Instant::now();
    let mut state = base(now);
    if let Some(view) = state.view.as_mut() {
        view.help = true;
    }
    both_sizes("help", &state, now);
}

#[test]
fn each_theme_colors_runs_by_outcome() {
    let now = Instant::now();
    let state = running(now);
    for (name, _) in super::theme::BUILT_IN {
        let (theme, warning) = Theme::load(name, None, true);
        assert_eq!(warning, None);
        let buffer = render(&state, &theme, 80, 24, now);
        insta::assert_snapshot!(format!("theme_{name}"), format!("{buffer:?}"));
        // The trend's bars are drawn in the outcome colors of this theme.
        let bars: Vec<_> = buffer
            .content()
            .iter()
            .filter(|c| c.symbol() == "█")
            .map(|c| c.fg)
            .collect();
        assert!(bars.contains(&theme.pass.fg.unwrap_or_default()), "{name}");
        assert!(bars.contains(&theme.fail.fg.unwrap_or_default()), "{name}");
    }
}

#[test]
fn the_wheel_acts_on_the_pane_under_the_pointer() {
    use crate::effect::Effect;
    use crate::event::Wheel;
    use crate::state::keys::wheel;
    use crate::ui::layout::Panes;

    let now = Instant::now();
    let mut state = base(now);
    let panes = Panes::new(ratatui::layout::Rect::new(0, 0, 80, 24), false);
    let at = |lines, area: ratatui::layout::Rect| Wheel {
        lines,
        column: area.x + 2,
        row: area.y + 1,
        width: 80,
        height: 24,
    };
    let view = |state: &State| {
        let v = state.view.as_ref().expect("a view");
        (v.cursor, v.scroll)
    };

    let mut effects = Vec::new();
    wheel(&mut state, at(3, panes.output), &mut effects);
    assert_eq!(view(&state), (None, 3), "over the output: scrolls back");
    assert!(effects.is_empty());
    wheel(&mut state, at(3, panes.trend), &mut effects);
    wheel(&mut state, at(3, panes.trend), &mut effects);
    assert_eq!(view(&state), (Some(38), 3), "over the trend: one run per notch");
    let asked: Vec<String> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::LoadSamples { job: 1, run_id } => Some(run_id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(asked, ["run-39", "run-38"], "each selected run's samples are asked for");
    wheel(&mut state, at(-3, panes.trend), &mut effects);
    assert_eq!(view(&state), (Some(39), 3));
    wheel(&mut state, at(-3, panes.trend), &mut effects);
    assert_eq!(view(&state), (None, 3), "past the newest: follows again");
    wheel(&mut state, at(3, panes.resources), &mut effects);
    assert_eq!(view(&state), (None, 3), "elsewhere: nothing");
}

#[test]
fn memory_shows_what_the_processes_last_had_not_the_empty_tree_after_they_exit() {
    let now = Instant::now();
    let mut state = running(now);
    if let Some(view) = state.view.as_mut() {
        let mut after_exit = sample(250.0 * 49.0, 0, 0.0);
        after_exit.tree.processes = 0;
        after_exit.tree.rss_bytes = 0;
        view.jobs[1].sampled(&after_exit);
    }
    let screen = text(&render(&state, &Theme::default_theme(true), 160, 48, now));
    let rss = screen
        .lines()
        .find(|l| l.contains("│rss"))
        .unwrap_or_else(|| panic!("no rss row:\n{screen}"));
    assert!(rss.contains("2.3 GB") && !rss.contains(" 0 B"), "{rss}");
}

#[test]
fn a_shared_gpu_shows_the_jobs_own_share_and_a_mig_gpu_says_so() {
    let now = Instant::now();
    let mut state = running(now);
    if let Some(view) = state.view.as_mut() {
        for sample in view.jobs[1].live.iter_mut() {
            sample.gpus[0].util_pct = Some(90);
            sample.gpus[0].job_sm_pct = Some(4);
            sample.gpus[0].others_sm_pct = Some(85);
            sample.gpus.push(GpuSample {
                index: 1,
                mig: true,
                job_present: Some(true),
                ..GpuSample::default()
            });
        }
    }
    let shared = text(&render(&state, &Theme::default_theme(false), 160, 48, now));
    assert!(shared.contains("gpu0*    4/90%"), "{shared}");
    assert!(shared.contains("gpu1*      MIG"), "{shared}");
    // The fixed twin: the job alone on its GPU shows the device's figure.
    if let Some(view) = state.view.as_mut() {
        for sample in view.jobs[1].live.iter_mut() {
            sample.gpus[0].others_sm_pct = Some(0);
        }
    }
    let alone = text(&render(&state, &Theme::default_theme(false), 160, 48, now));
    assert!(alone.contains("gpu0*      90%"), "{alone}");
}

#[test]
fn a_test_job_shows_its_selection_in_the_header_and_its_tests_in_the_run() {
    use crate::diagnose::per_test::{Selection, SlowTest, SlowerTest, TestsReport};
    let now = Instant::now();
    let mut state = base(now);
    let tests = TestsReport {
        count: 3,
        passed: 3,
        total: Some(212),
        affected: Some(3),
        selection: Selection::First,
        slowest: vec![SlowTest {
            nodeid: "tests/test_b.py::test_load".into(),
            duration_ms: 250.0,
        }],
        slower: vec![SlowerTest {
            nodeid: "tests/test_b.py::test_load".into(),
            ratio: 5.0,
            baseline_ms: 50.0,
        }],
        ..TestsReport::default()
    };
    let run = crate::report::RunIdentity {
        run_id: "run-40".into(),
        job: "train".into(),
        command: "pytest".into(),
        kind: crate::config::JobKind::Test,
        trigger: vec!["src/data.py".into()],
        ts: SystemTime::UNIX_EPOCH,
        log: None,
    };
    let mut last = crate::report::RunFinished::passed_for_test(run, 1300.0);
    last.tests = Some(tests);
    state.jobs[1].last = Some(last.clone());
    state.jobs[1].tests.baselines.insert(
        "tests/test_b.py::test_load".into(),
        vec![50.0, 52.0, 49.0, 51.0, 50.0, 250.0],
    );
    if let Some(view) = state.view.as_mut() {
        view.jobs[1].finished(&last);
        view.cursor = Some(40);
    }
    let shown = text(&render(&state, &Theme::default_theme(false), 160, 48, now));
    assert!(shown.contains("3 of 212 tests (affected)"), "{shown}");
    assert!(shown.contains("slower: tests/test_b.py::test_load"), "{shown}");
    assert!(shown.contains("3 tests: 3 passed (3 of 212 affected first)"), "{shown}");
    assert!(
        shown.contains("slowest: tests/test_b.py::test_load 250.0 ms"),
        "{shown}"
    );
    assert!(shown.contains("↗ tests/test_b.py::test_load ▁▁▁▁▁█ 5.0x"), "{shown}");
    // While the next run goes on, the header says what it runs first.
    let mut running = running(now);
    if let Some(run) = running.jobs[1].active.as_mut() {
        run.test_plan = Some(crate::diagnose::per_test::TestPlan {
            selection: Selection::Only,
            targets: vec![crate::diagnose::per_test::Target {
                target: "tests/test_b.py".into(),
                why: "imports src/data.py".into(),
            }],
            affected_files: None,
        });
    }
    let screen = text(&render(&running, &Theme::default_theme(false), 160, 48, now));
    assert!(screen.contains("running 12.4 s · 1 affected only"), "{screen}");
}

/// The TUI learns of a run through `update`, as every sink does, and warns of a starved GPU
/// exactly when the `stall` event is reported: after a second, never for a shorter blip.
#[test]
fn live_starvation_is_shown_when_the_stall_event_fires() {
    use crate::effect::{Effect, Report};
    use crate::event::Event;
    use crate::state::update::{start_all, update};

    let now = Instant::now();
    let mut state = base(now);
    let key = start_all(&mut state)
        .iter()
        .find_map(|e| match e {
            Effect::StartRun { key, job: 1, .. } => Some(*key),
            _ => None,
        })
        .expect("train starts");
    let spawned = Event::RunSpawned {
        key,
        run_id: "run-now".into(),
        pid: 4242,
        at: now,
        wall: SystemTime::UNIX_EPOCH,
        log: None,
        tests: None,
    };
    update(&mut state, spawned, now);
    let theme = Theme::default_theme(false);
    let mut reported = false;
    // Busy, then starved for half a second (a blip), busy again, then starved for good.
    let utils = [85, 85, 2, 2, 2, 85, 85, 2, 2, 2, 2, 2, 2, 2];
    for (i, util) in utils.into_iter().enumerate() {
        let mut reading = sample(250.0 * (i as f64 + 1.0), util, 60.0);
        reading.key = key;
        let effects = update(&mut state, Event::Sample(Box::new(reading)), now);
        reported |= effects.iter().any(|e| matches!(e, Effect::Report(Report::Stall(_))));
        let screen = text(&render(&state, &theme, 160, 48, now));
        assert_eq!(
            screen.contains("the GPU has been starved"),
            reported,
            "sample {i}:\n{screen}"
        );
        assert_eq!(screen.contains("stalls"), reported, "sample {i}:\n{screen}");
        assert_eq!(screen.contains("running…"), !reported, "sample {i}:\n{screen}");
    }
    assert!(reported, "the last second was a stall");
}
