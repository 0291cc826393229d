"""Summarise a GPU check (benchmarks/gpu_check.sh) as Markdown for docs/gpu-runs.md.

    python benchmarks/gpu_report.py --check-dir $OUT --run results/gpu > $OUT/summary.md

Reads, in the check's folder: phases.tsv (phase, start and end epoch seconds, exit code),
nvidia_smi.csv (`nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used,power.draw
--format=csv,nounits -lms ...`), bench_sampling*.csv and gpu_check.log (versions, phi and bf16
lines); in the run's folder: benchmarks/**/*.tsv (a rule's wall time `s`; the file is written
when the job ends, so its mtime - s is when it started), the training logs' last
"waited ... for batches" lines, and the metrics tables. GPU utilisation is nvidia-smi's
utilization.gpu: the share of time at least one kernel ran, averaged per sample.
"""

import argparse
import csv
import re
from datetime import datetime
from pathlib import Path

STUDY_TARGET_S = 600  # issue 14: the gpu.yaml study completes in <= 10 minutes
CALIBRATION_TABLES = ("mcmc", "coverage", "localization", "ablation", "recommendation", "targets")
WAIT = re.compile(r"waited ([\d.]+) s for batches of ([\d.]+) s in the training loop")


def smi_samples(path: Path) -> list[tuple[float, float, float]]:
    """(epoch seconds, GPU utilisation %, memory used MiB) per nvidia-smi sample."""
    rows = []
    if not path.exists():
        return rows
    with path.open() as handle:
        for row in csv.reader(handle):
            if len(row) < 3 or not row[1].strip().replace(".", "").isdigit():
                continue  # header or a broken line
            stamp = datetime.strptime(row[0].strip(), "%Y/%m/%d %H:%M:%S.%f").timestamp()
            rows.append((stamp, float(row[1]), float(row[2])))
    return rows


def mean_util(samples, start: float, end: float) -> str:
    """Mean utilisation and peak memory of the samples in [start, end]."""
    inside = [(u, m) for t, u, m in samples if start <= t <= end]
    if not inside:
        return "no samples"
    util = sum(u for u, _ in inside) / len(inside)
    return f"{util:.0f} % (peak {max(m for _, m in inside) / 1024:.1f} GiB, {len(inside)} samples)"


def rule_windows(run: Path) -> dict[str, tuple[float, float]]:
    """{rule: (first start, last end)} from the run's Snakemake benchmark files."""
    windows: dict[str, tuple[float, float]] = {}
    for tsv in sorted((run / "benchmarks").rglob("*.tsv")):
        lines = tsv.read_text().splitlines()
        if len(lines) < 2:
            continue
        seconds = float(lines[1].split("\t")[0])
        end = tsv.stat().st_mtime
        rel = tsv.relative_to(run / "benchmarks").parts
        while len(rel) > 1 and rel[0].startswith(("seed_", "sigma_y_")):
            rel = rel[1:]  # per psi seed / per KDE width folders: the rule is below them
        rule = rel[0] if len(rel) > 1 else tsv.stem
        if rel[:2] == ("calibration", "ablation") and len(rel) > 2:
            rule = "ablation"  # calibration/ablation/{sampler}.tsv
        lo, hi = windows.get(rule, (end - seconds, end))
        windows[rule] = (min(lo, end - seconds), max(hi, end))
    return windows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check-dir", type=Path, required=True)
    parser.add_argument("--run", type=Path, default=Path("results/gpu"))
    args = parser.parse_args()
    out, run = args.check_dir, args.run
    print(f"## GPU check {datetime.now().strftime('%Y-%m-%d %H:%M')}\n")
    log = (
        (out / "gpu_check.log").read_text(errors="replace")
        if (out / "gpu_check.log").exists()
        else ""
    )
    for line in log.splitlines():
        if line.startswith(("versions:", "device:", "commit:")):
            print(f"- {line}")
    samples = smi_samples(out / "nvidia_smi.csv")
    print("\n| phase | exit | seconds | GPU utilisation |\n|---|---|---|---|")
    phases = {}
    if (out / "phases.tsv").exists():
        for name, start, end, code in csv.reader((out / "phases.tsv").open(), delimiter="\t"):
            phases[name] = (float(start), float(end))
            seconds = float(end) - float(start)
            print(
                f"| {name} | {code} | {seconds:.0f} | {mean_util(samples, float(start), float(end))} |"
            )
    if "study" in phases:
        seconds = phases["study"][1] - phases["study"][0]
        ok = "met" if seconds <= STUDY_TARGET_S else "MISSED"
        print(f"\n- study: {seconds:.0f} s, target <= {STUDY_TARGET_S} s: {ok}")
    tables = [f"calibration_{name}.csv" for name in CALIBRATION_TABLES]
    missing = [t for t in tables if not (run / "metrics" / t).exists()]
    print(
        f"- calibration tables: {len(tables) - len(missing)} of {len(tables)} produced"
        + (f" (missing: {', '.join(missing)})" if missing else "")
    )
    windows = rule_windows(run) if (run / "benchmarks").exists() else {}
    if windows:
        print(
            "\n| study rule (all its jobs) | seconds, first start to last end | GPU utilisation |"
        )
        print("|---|---|---|")
        for rule in ("train_phi", "infer_phi", "train_psi", "posterior", "ablation"):
            if rule in windows:
                lo, hi = windows[rule]
                print(f"| {rule} | {hi - lo:.0f} | {mean_util(samples, lo, hi)} |")
    for name in ("train_phi", "train_psi"):
        for path in sorted((run / "logs").rglob(f"{name}.log")):  # per KDE width / psi seed
            waits = WAIT.findall(path.read_text())
            if waits:
                data, total = map(float, waits[-1])
                print(
                    f"\n- {path.relative_to(run)}: waited {data:.1f} s for batches of "
                    f"{total:.1f} s in the loop ({100 * data / total:.1f} %)"
                )
    for name in sorted(out.glob("bench_sampling*.csv")):
        rows = list(csv.DictReader(name.open()))
        if rows:
            print(f"\n{name.name}: seconds per image, K = {rows[0]['k']}, {rows[0]['model']}\n")
            print("| sampler | precision | compiled | s/image |\n|---|---|---|---|")
            for r in rows:
                print(
                    f"| {r['sampler']} S={r['steps']} | {r['precision']} | {r['compiled']} | "
                    f"{float(r['seconds_per_image']):.3f} |"
                )
    keep = ("inference,", "training:", "bf16 vs fp32", "fp32 vs fp32", "target", "MISSED")
    lines = [
        line for line in log.splitlines() if line.strip().startswith(keep) or ": bf16 vs" in line
    ]
    if lines:
        print("\nbenchmark lines:\n")
        print("\n".join(f"    {line}" for line in lines))
    for table in ("calibration_targets", "calibration_ablation", "psi", "phi_targets"):
        path = run / "metrics" / f"{table}.csv"
        print(
            f"\n{table}.csv: "
            + (
                "\n\n    " + path.read_text().replace("\n", "\n    ")
                if path.exists()
                else "MISSING"
            )
        )


if __name__ == "__main__":
    main()
