#!/usr/bin/env bash
# GPU check of issue 14 in one call on a machine with one CUDA GPU (H100/H200 class, 16 cores):
# the GPU tests, the CUDA benchmarks and the study `snakemake --cores all --configfile
# config/gpu.yaml`, with nvidia-smi sampling the GPU's utilisation all along; then a Markdown
# summary for docs/gpu-runs.md and a tarball of the metrics tables and figures.
#
#   bash benchmarks/gpu_check.sh                 # everything, within --budget seconds (570)
#   bash benchmarks/gpu_check.sh --dry-run       # CPU-side checks and the plan only (no GPU)
#   bash benchmarks/gpu_check.sh --phases study,bf16 --budget 500   # resume / a second call
#
# Phases, in this order, most needed first (each under `timeout`; they share the budget):
#   preflight  (always, CPU) the modules import (benchmarks/gpu_env.py check), config/gpu.yaml
#              validates, `snakemake -n` passes; versions of torch, CUDA, the GPU and driver
#   study      snakemake --cores all --keep-going --rerun-incomplete --configfile config/gpu.yaml
#              (the time left less 60 s for bf16; a rerun resumes where a stopped one left off)
#   bf16       bench_bf16.py: posterior mean / std, bf16 vs fp32, psi's trained weights <= 90 s
#   bench      bench_sampling.py (eager: fp32 / bf16 x ancestral T, ddim 20, dpmpp_2m 20)
#              and bench_phi.py on the paper-scale models of config/gpu.yaml       <= 120 + 40 s
#   tests      pytest -m gpu tests/ (tests that need CUDA; skipped elsewhere)         <= 120 s
#   compile    bench_sampling.py --compiled-only (torch.compile: bf16 then fp32)       the rest
#   report     (always) gpu_report.py -> summary.md; results tarball
# Outputs go to $OUT when set (the device tool's folder: at most 8 files come back), else to
# results/gpu_check/: gpu_check.log (everything printed), phases.tsv, nvidia_smi.csv,
# bench_sampling.csv, bench_sampling_compiled.csv, summary.md and gpu_results.tar.gz (metrics
# CSVs, figure PNGs, training logs, rule benchmarks of results/gpu/).
#
# Installs nothing from a network: where a module is missing (a bare GPU image lacks
# snakemake, jsonschema, arviz, scoringrules), it installs the wheels of a carried `.whl/`
# folder offline (pip --no-index) into /tmp/gpu_check_site, made beforehand on a machine with
# PyPI by `python benchmarks/gpu_env.py wheels .whl` (~27 MiB); diffloc itself runs from src/.
#
# Exit codes: 0 every phase ran and passed; 2 a CPU-side check failed (modules, config,
# `snakemake -n`); 3 no CUDA GPU visible (after the CPU-side checks passed; --dry-run exits 0
# there); 4 a GPU phase failed, timed out or had no time left (the others still ran: see the
# log); 64 bad arguments.
set -uo pipefail # no -e: a failing phase is recorded and the next phases still run

cd "$(dirname "$0")/.." || exit 64
REPO=$PWD
DRY=0
BUDGET=${GPU_CHECK_BUDGET:-570} # the device tool's limit per call is 600 s
PHASES=study,bf16,bench,tests,compile
RESERVE=20 # seconds kept for the report and the tarball
while (($#)); do
    case $1 in
    --dry-run) DRY=1 ;;
    --budget)
        BUDGET=${2:-}
        shift
        ;;
    --phases)
        PHASES=${2:-}
        shift
        ;;
    -h | --help)
        sed -n '2,/^set -uo/p' "$0" | sed '$d'
        exit 0
        ;;
    *)
        echo "unknown argument: $1 (see --help)" >&2
        exit 64
        ;;
    esac
    shift
done
[[ $BUDGET =~ ^[0-9]+$ ]] || {
    echo "--budget needs seconds, got '$BUDGET'" >&2
    exit 64
}
for phase in ${PHASES//,/ }; do
    case $phase in
    study | bf16 | bench | tests | compile) ;;
    *)
        echo "unknown phase '$phase' (study, bf16, bench, tests, compile)" >&2
        exit 64
        ;;
    esac
done

START=$(date +%s)
DEADLINE=$((START + BUDGET))
OUTDIR=${OUT:-$REPO/results/gpu_check}
mkdir -p "$OUTDIR"
LOG=$OUTDIR/gpu_check.log
: >"$LOG"
exec > >(tee -a "$LOG") 2>&1
TEE_PID=$!
PY=${PYTHON:-python3}
RUN=results/gpu
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
export PYTHONPATH=$REPO/src${PYTHONPATH:+:$PYTHONPATH}
FAILED=()
SMI_PID=

wants() { [[ ,$PHASES, == *,$1,* ]]; }
now() { date +%s.%N; }

# run_phase NAME CAP COMMAND...: run COMMAND under timeout min(CAP, time left - RESERVE)
run_phase() {
    local name=$1 cap=$2
    shift 2
    local left=$((DEADLINE - $(date +%s) - RESERVE))
    if ((left < 20)); then
        echo "== $name: SKIPPED, no time left in the ${BUDGET} s budget"
        FAILED+=("$name(no time)")
        return
    fi
    local limit=$((cap < left ? cap : left)) t0 rc
    if ((limit < 20)); then
        echo "== $name: SKIPPED, ${limit} s left for it"
        FAILED+=("$name(no time)")
        return
    fi
    echo "== $name: start $(date -Is), timeout ${limit} s: $*"
    t0=$(now)
    timeout --signal=INT --kill-after=20 "$limit" "$@"
    rc=$?
    printf '%s\t%s\t%s\t%s\n' "$name" "$t0" "$(now)" "$rc" >>"$OUTDIR/phases.tsv"
    echo "== $name: exit $rc after $(awk "BEGIN { printf \"%.0f\", $(now) - $t0 }") s$( ((rc == 124)) && echo ' (TIMED OUT)')"
    ((rc == 0)) || FAILED+=("$name(exit $rc)")
}

finish() {
    local code=$1
    [[ -n $SMI_PID ]] && kill "$SMI_PID" 2>/dev/null
    if ((DRY == 0)) && [[ -f $OUTDIR/phases.tsv ]]; then
        echo "== report"
        "$PY" benchmarks/gpu_report.py --check-dir "$OUTDIR" --run "$RUN" >"$OUTDIR/summary.md" 2>&1
        cat "$OUTDIR/summary.md"
        if [[ -d $RUN ]]; then
            (cd "$RUN" && find metrics figures calibration logs benchmarks -maxdepth 4 \
                \( -name '*.csv' -o -name '*.png' -o -name 'train_*.log' -o -name '*.tsv' \) \
                -print0 2>/dev/null | tar --null -czf "$OUTDIR/gpu_results.tar.gz" -T - 2>/dev/null)
            ls -l "$OUTDIR"
        fi
    fi
    echo "== gpu_check: exit $code after $(($(date +%s) - START)) s${FAILED[*]:+; not passed: ${FAILED[*]}}"
    exec >&- 2>&-
    wait "$TEE_PID" 2>/dev/null # the log is complete before the caller collects it
    exit "$code"
}

echo "== gpu_check $(date -Is): phases ${PHASES}, budget ${BUDGET} s, outputs in ${OUTDIR}"
if git rev-parse HEAD >/dev/null 2>&1; then
    echo "commit: $(git rev-parse HEAD)$(git diff --quiet HEAD || echo ' (with local changes)')"
else
    echo "commit: unknown (no git metadata here)"
fi

# ----- preflight (CPU) -----------------------------------------------------------------------
if ! "$PY" benchmarks/gpu_env.py check; then
    if compgen -G "$REPO/.whl/*.whl" >/dev/null; then
        echo "installing the carried wheels of .whl/ (offline) into /tmp/gpu_check_site"
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target /tmp/gpu_check_site "$REPO"/.whl/*.whl || finish 2
        export PYTHONPATH=/tmp/gpu_check_site:$PYTHONPATH
        "$PY" benchmarks/gpu_env.py check || finish 2
    else
        echo "PREFLIGHT FAILED: modules missing and no .whl/ folder to install them from"
        finish 2
    fi
fi
"$PY" - <<'EOF' || finish 2
import torch, snakemake
from diffloc.config import load_config
load_config("config/gpu.yaml", "workflow/schemas/config.schema.yaml")
cuda = torch.cuda.is_available()
gpu = f"{torch.cuda.get_device_name(0)}, {torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB" if cuda else "no CUDA GPU"
print(f"versions: torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, snakemake {snakemake.__version__}")
print(f"device: {gpu}")
print("config/gpu.yaml validates")
EOF
command -v nvidia-smi >/dev/null &&
    echo "device: driver $(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1), $(nproc) CPU cores"
"$PY" -m snakemake -n --cores all --quiet --configfile config/gpu.yaml || {
    echo "PREFLIGHT FAILED: snakemake -n --configfile config/gpu.yaml"
    finish 2
}
echo "snakemake -n --configfile config/gpu.yaml passes"
if ((DRY)); then
    echo "dry run: the CPU-side checks passed; a GPU run would do: ${PHASES} (budget ${BUDGET} s)"
    finish 0
fi
if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "NO CUDA GPU VISIBLE: the CPU-side checks passed; the phases ${PHASES} need a GPU"
    finish 3
fi

# ----- GPU phases ----------------------------------------------------------------------------
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used,power.draw \
        --format=csv,nounits -lms 1000 >"$OUTDIR/nvidia_smi.csv" 2>/dev/null &
    SMI_PID=$!
fi
if wants study; then
    left=$((DEADLINE - $(date +%s) - RESERVE))
    wants bf16 && left=$((left - 60)) # kept for the bf16 check on the trained weights
    run_phase study "$left" "$PY" -m snakemake --cores all --keep-going --rerun-incomplete \
        --configfile config/gpu.yaml
fi
if wants bf16; then
    if [[ -f $RUN/models/seed_0/psi.pt && -f $RUN/yhat/sigma_y_3/test/0000.npz ]]; then
        run_phase bf16 90 "$PY" benchmarks/bench_bf16.py --model "$RUN/models/seed_0/psi.pt" \
            --yhat "$RUN/yhat/sigma_y_3/test/0000.npz"
    else
        echo "no trained psi in $RUN: the bf16 check runs on RANDOM weights (code path only)"
        run_phase bf16 90 "$PY" benchmarks/bench_bf16.py
    fi
fi
if wants bench; then
    run_phase bench_sampling 120 "$PY" benchmarks/bench_sampling.py --cuda-only \
        --csv "$OUTDIR/bench_sampling.csv"
    run_phase bench_phi 40 "$PY" benchmarks/bench_phi.py --config config/gpu.yaml --device cuda --bf16
fi
wants tests && run_phase tests 120 "$PY" -m pytest -q -p no:cacheprovider -m gpu tests/
wants compile && run_phase compile 600 "$PY" benchmarks/bench_sampling.py --cuda-only \
    --compiled-only --csv "$OUTDIR/bench_sampling_compiled.csv"
finish $((${#FAILED[@]} ? 4 : 0))
