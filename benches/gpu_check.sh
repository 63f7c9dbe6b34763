#!/usr/bin/env bash
# A one-shot real-GPU check of looptop's GPU verdicts.
#
#   benches/gpu_check.sh pack [DIR]     build the release looptop and the training_step example,
#                                       strip and xz them, and put them with this script in DIR
#                                       (default target/gpu-check): copy DIR to the GPU machine
#   DIR/gpu_check.sh run                on a machine with an NVIDIA GPU and its driver, nothing
#                                       else (no network, no toolkit, no Python): runs looptop
#                                       over four loops of training_step --device cuda and over
#                                       nvidia-smi, and prints expected vs observed verdicts,
#                                       stall time and GPU shares; about 1 minute on one GPU
#   benches/gpu_check.sh run --fake     the same check here, against the fake NVML library
#                                       (tests/fake-nvml), each loop scripting the readings a
#                                       real GPU would give; uses target/debug binaries unless
#                                       --looptop/--example name others
#
# Options of `run`: --looptop PATH, --example PATH (training_step), --fake-lib PATH (the fake
# libnvidia-ml; built with cargo when not given), --keep (keep the scratch directory).
# Exit status: 0 when every loop got its expected verdict and hints, 1 otherwise.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"

die() { echo "gpu_check: $*" >&2; exit 2; }

pack() {
    local out="${1:-$repo/target/gpu-check}"
    command -v xz >/dev/null || die "pack needs xz"
    (cd "$repo" && cargo build --release --locked --bin looptop --example training_step)
    local release="${CARGO_TARGET_DIR:-$repo/target}"
    local dir
    for dir in "$release/${CARGO_BUILD_TARGET:-}/release" "$release/release"; do
        [[ -x "$dir/looptop" ]] && break
    done
    [[ -x "$dir/looptop" ]] || die "no release looptop under $release"
    mkdir -p "$out"
    strip -o "$out/looptop" "$dir/looptop"
    strip -o "$out/training_step" "$dir/examples/training_step"
    xz -9 -f "$out/looptop" "$out/training_step"
    cp "$here/gpu_check.sh" "$out/"
    ls -l "$out"
    echo "copy $out to the GPU machine and run: ./gpu_check.sh run"
}

# Decompresses NAME.xz next to this script once; prints the binary's path.
unpacked() {
    local name="$1"
    if [[ -x "$here/$name" ]]; then
        echo "$here/$name"
    elif [[ -f "$here/$name.xz" ]]; then
        command -v xz >/dev/null || die "$name.xz needs xz to unpack (or unpack it elsewhere)"
        xz -dkf "$here/$name.xz" && chmod +x "$here/$name" && echo "$here/$name"
    else
        echo ""
    fi
}

run() {
    local fake=0 keep=0 looptop="" example="" fake_lib=""
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --fake) fake=1 ;;
            --keep) keep=1 ;;
            --looptop) looptop="$2"; shift ;;
            --example) example="$2"; shift ;;
            --fake-lib) fake_lib="$2"; shift ;;
            *) die "unknown option $1 (--fake, --looptop PATH, --example PATH, --fake-lib PATH, --keep)" ;;
        esac
        shift
    done
    local target="${CARGO_TARGET_DIR:-$repo/target}"
    local debug="$target/${CARGO_BUILD_TARGET:-}/debug"
    [[ -x "$debug/looptop" ]] || debug="$target/debug"
    [[ -n "$looptop" ]] || looptop="$(unpacked looptop)"
    [[ -n "$looptop" ]] || looptop="$debug/looptop"
    [[ -n "$example" ]] || example="$(unpacked training_step)"
    [[ -n "$example" ]] || example="$debug/examples/training_step"
    [[ -x "$looptop" ]] || die "no looptop binary at $looptop (build it, or pass --looptop)"
    [[ -x "$example" ]] || die "no training_step example at $example (cargo build --example training_step, or --example)"

    # Global: the EXIT trap runs after this function has returned.
    scratch="$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")"
    [[ $keep -eq 1 ]] || trap 'rm -rf "$scratch"' EXIT
    export XDG_DATA_HOME="$scratch/data" NO_COLOR=1
    local script="$scratch/nvml.script"
    if [[ $fake -eq 1 ]]; then
        if [[ -z "$fake_lib" ]]; then
            (cd "$repo" && cargo build -q -p fake-nvml)
            fake_lib="$(ls "$target"/*/debug/libfake_nvml.so "$target"/debug/libfake_nvml.so 2>/dev/null | head -1 || true)"
        fi
        [[ -f "$fake_lib" ]] || die "no fake NVML library (pass --fake-lib PATH)"
        export LOOPTOP_NVML_LIB="$fake_lib" FAKE_NVML_SCRIPT="$script"
        printf 'count = 1\ngpu.0.name = Fake H100\ngpu.0.mem_total = 80000000000\n' >"$script"
        echo "mode: fake NVML ($fake_lib)"
    else
        command -v nvidia-smi >/dev/null || die "no nvidia-smi: is the NVIDIA driver installed? (--fake to check against the fake NVML)"
        nvidia-smi --query-gpu=index,name,driver_version --format=csv,noheader
    fi

    local started=$SECONDS failures=0
    printf '\n%-13s %-30s %-12s %9s %7s %8s %8s %s\n' loop expected observed stall_ms busy% job_sm% smi_util% hints
    # name | expected verdict | expected hint ("-": none) | training_step arguments | fake readings
    local loops=(
        "starved|input-bound|-|--device cuda --steps 120 --load-ms 40 --compute-ms 2|gpu.0.util = 3;gpu.0.gpm_sm_active = 2;gpu.0.proc_util = \$\$:3:1"
        "gpu-bound|gpu-bound|-|--device cuda --steps 150 --load-ms 1 --compute-ms 40|gpu.0.util = 97;gpu.0.gpm_sm_active = 93;gpu.0.proc_util = \$\$:95:20"
        "small-kernels|gpu-bound|small-kernels|--device cuda --steps 150 --load-ms 1 --compute-ms 40 --blocks 1|gpu.0.util = 98;gpu.0.gpm_sm_active = 3;gpu.0.proc_util = \$\$:97:1"
        "unused|gpu-unused|model-not-on-gpu|--device cpu --steps 100 --load-ms 1 --compute-ms 40|"
    )
    local entry name expected hint args readings
    for entry in "${loops[@]}"; do
        IFS='|' read -r name expected hint args readings <<<"$entry"
        local project="$scratch/$name"
        mkdir -p "$project"
        local cmd="$example $args"
        if [[ $fake -eq 1 ]]; then
            # The job puts itself on the fake GPU (except the unused loop) with the readings a real
            # GPU gives for this loop, then runs the same loop on the CPU.
            local lines="" line
            IFS=';' read -ra parts <<<"$readings"
            for line in "${parts[@]}"; do lines+="echo \"$line\" >> $script; "; done
            if [[ "$name" == unused ]]; then
                lines+="echo 'gpu.0.procs = 1:1000' >> $script; "
            else
                lines+="echo \"gpu.0.procs = \$\$:2000000000\" >> $script; "
            fi
            cmd="${lines}exec $example ${args/--device cuda/--device cpu}"
        else
            nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits -i 0 -lms 250 >"$project/smi.csv" &
            local smi=$!
        fi
        (cd "$project" && "$looptop" run --once --json -- "$cmd" >"$project/events.jsonl" 2>"$project/stderr.txt") || true
        local smi_util="-"
        if [[ $fake -eq 0 ]]; then
            kill "$smi" 2>/dev/null || true
            wait "$smi" 2>/dev/null || true
            smi_util="$(awk -F, '$1 ~ /^ *[0-9]+ *$/ { s += $1; n++ } END { if (n) printf "%.0f", s / n; else print "-" }' "$project/smi.csv")"
        fi
        local row
        row="$(cd "$project" && "$looptop" query "SELECT verdict, round(coalesce(stall_ms, 0)) AS stall_ms, \
            coalesce(round(gpu_busy_pct)::VARCHAR, '-') AS busy, \
            coalesce((SELECT round(avg(job_sm_pct))::VARCHAR FROM gpu_samples g WHERE g.run_id = r.run_id AND g.job_present), '-') AS job_sm, \
            coalesce(array_to_string(hint_ids, ' '), '') AS hints FROM runs r ORDER BY started_at DESC LIMIT 1" --csv | tail -n 1)" \
            || row="(no run recorded: see $project/stderr.txt),0,-,-,"
        local observed stall busy job_sm hints
        IFS=',' read -r observed stall busy job_sm hints <<<"$row"
        local ok=1
        [[ "$observed" == "$expected" ]] || ok=0
        [[ "$hint" == "-" || " $hints " == *" $hint "* ]] || ok=0
        [[ $ok -eq 1 ]] || failures=$((failures + 1))
        local want="$expected"
        [[ "$hint" == "-" ]] || want+=" + $hint"
        printf '%-13s %-30s %-12s %9s %7s %8s %8s %s%s\n' "$name" "$want" "$observed" "$stall" "$busy" "$job_sm" \
            "$smi_util" "${hints:--}" "$([[ $ok -eq 1 ]] || echo '   <-- MISMATCH')"
    done
    echo
    echo "took $((SECONDS - started)) s; $failures of ${#loops[@]} loops differ from the expected verdict"
    [[ $keep -eq 0 ]] || echo "kept $scratch"
    [[ $failures -eq 0 ]]
}

case "${1:-}" in
    pack) shift; pack "$@" ;;
    run) shift; run "$@" ;;
    *) die "usage: gpu_check.sh pack [DIR] | run [--fake] [--looptop PATH] [--example PATH] [--fake-lib PATH] [--keep]" ;;
esac
