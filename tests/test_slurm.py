"""The whole study on a tiny config through a real SLURM cluster with `snakemake --profile slurm`.

Needs a running cluster with accounting (`bash .ci/slurm-up` brings one up on localhost, with
fake GPUs). Skips when there is none, unless DIFFLOC_REQUIRE_SLURM=1 (set by .ci/run), which
turns the skip into a failure.
"""

import csv
import datetime
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from snakemake.io import WILDCARD_REGEX

from conftest import REPO, load_workflow, tiny
from diffloc.config import splits
from diffloc.data.files import REBUILD_HINT
from diffloc.runtime import parse_allocation

TIMEOUT_S = 1200  # the whole tiny study; a hung job or status check fails the test instead
FAILURE_TIMEOUT_S = 240  # one job that fails: submission, failure, report
GPU_VARS = ("SLURM_STEP_GPUS", "SLURM_JOB_GPUS", "CUDA_VISIBLE_DEVICES")
SACCT_FIELDS = "JobID,Comment,State,AllocTRES"


def slurm_problem() -> str | None:
    """Why no SLURM cluster with accounting can be used here, or None when one can."""
    for tool in ("sbatch", "sacct", "scontrol", "sinfo"):
        if shutil.which(tool) is None:
            return f"SLURM is not installed ({tool} not found)"
    for command in (["scontrol", "ping"], ["sacct", "-n", "-X"]):
        proc = subprocess.run(command, capture_output=True, text=True, timeout=30)
        if proc.returncode != 0 or "DOWN" in proc.stdout:
            return f"no SLURM cluster responds to `{' '.join(command)}`: {proc.stdout}{proc.stderr}"
    return None


@pytest.fixture(scope="module")
def slurm() -> None:
    problem = slurm_problem()
    if problem is None:
        return
    if os.environ.get("DIFFLOC_REQUIRE_SLURM") == "1":
        pytest.fail(f"DIFFLOC_REQUIRE_SLURM=1 but {problem}; run `bash .ci/slurm-up` first")
    pytest.skip(f"{problem} (`bash .ci/slurm-up` starts a local cluster)")


def node_cpus() -> int:
    """CPUs of the smallest node: rules asking for more threads are capped to it."""
    out = subprocess.run(["sinfo", "-h", "-o", "%c"], capture_output=True, text=True, check=True)
    return min(int(c) for c in out.stdout.split())


def run_profile(
    workdir: Path, configfile: Path, targets: tuple[str, ...] = (), timeout_s: int = TIMEOUT_S
) -> subprocess.CompletedProcess:
    """`snakemake --profile slurm` from the repository root on `configfile`, outputs in `workdir`,
    with the profile's own settings (retries included) and SLURM polled every 2 s.

    On timeout Snakemake gets SIGINT first, so that it cancels its SLURM jobs.
    """
    command = [
        *(sys.executable, "-m", "snakemake", "--profile", "slurm"),
        *("--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir)),
        *("--configfile", str(configfile), "--max-threads", str(node_cpus())),
        *("--slurm-init-seconds-before-status-checks", "2"),
        *("--seconds-between-status-checks", "2"),
        *targets,
    ]
    with subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        try:
            out, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
            try:
                out, _ = proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate()
            pytest.fail(f"snakemake --profile slurm ran over {timeout_s} s:\n{out[-5000:]}")
    return subprocess.CompletedProcess(command, proc.returncode, out)


def failures(output: str, workdir: Path) -> str:
    """Snakemake's error blocks, each with the end of the failed job's logs (rule and SLURM)."""
    parts = []
    for block in re.findall(r"^Error in rule .*?(?=^\[|\Z)", output, flags=re.M | re.S):
        parts.append(block)
        logs = re.search(r"^\s+log: (.*?)(?: \(check log|$)", block, flags=re.M)
        for log in logs.group(1).split(", ") if logs else ():
            if (workdir / log).is_file():
                parts.append(
                    "\n".join([f"  ... {log}", *(workdir / log).read_text().splitlines()[-15:]])
                )
    return "\n".join(parts) or output[-6000:]


def job_counts(output: str) -> dict[str, int]:
    """Rule -> number of jobs, from the first `Job stats` table Snakemake prints."""
    table = output.split("Job stats:", 1)[1].split("total", 1)[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, flags=re.M)}


def slurm_jobs(run_id: str, since: str) -> list[dict[str, str]]:
    """sacct records (allocations, no steps) of the SLURM jobs Snakemake named `run_id`."""
    out = subprocess.run(
        ["sacct", "-X", "-P", "-S", since, "--name", run_id, "-o", SACCT_FIELDS],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    records = list(csv.DictReader(io.StringIO(out), delimiter="|"))
    for record in records:
        match = re.fullmatch(r"rule_(\w+?)(?:_wildcards_.*)?", record["Comment"])
        record["rule"] = match.group(1) if match else record["Comment"]
    return records


def allocations(workdir: Path, rule) -> list[dict[str, str]]:
    """The allocation lines (diffloc.runtime) in every log file of `rule`'s jobs."""
    pattern = WILDCARD_REGEX.sub("*", str(rule.log[0]))
    lines = [
        parse_allocation(line)
        for log in sorted(workdir.glob(pattern))
        for line in log.read_text().splitlines()
        if "allocation: " in line
    ]
    assert lines, f"no log of rule {rule.name} ({pattern}) records its allocation"
    return lines


def test_the_study_runs_through_slurm_with_gpus_for_training(slurm, tmp_path, default_config):
    config = tiny(default_config, run="slurm")
    # one psi seed: SLURM's part is the same for every seed (seeds are gathered in
    # test_workflow.py), and each submission costs seconds here
    config["calibration"]["seeds"] = 1
    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    workdir = tmp_path / "work"
    since = (datetime.datetime.now() - datetime.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S")
    started = time.monotonic()
    proc = run_profile(workdir, configfile)
    assert proc.returncode == 0, failures(proc.stdout, workdir)
    print(f"tiny study through SLURM in {time.monotonic() - started:.0f} s")

    # every output of every job exists and is up to date
    summary = subprocess.run(
        [
            *(sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")),
            *("--directory", str(workdir), "--configfile", str(configfile), "--summary"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert summary.returncode == 0, summary.stderr[-3000:]
    rows = list(csv.DictReader(io.StringIO(summary.stdout), delimiter="\t"))
    assert rows and all(row["status"] == "ok" for row in rows), summary.stdout[-3000:]
    assert all((workdir / row["output_file"]).is_file() for row in rows)
    report = (workdir / "results/slurm/report.html").read_text()
    assert "Figure 1" in report and "fig1.png" in report

    # every job of a non-local rule went through SLURM and completed there
    workflow = load_workflow(configfile)
    local = set(workflow._localrules) | {rule.name for rule in workflow.rules if rule.norun}
    expected = {r: n for r, n in job_counts(proc.stdout).items() if r not in local}
    run_id = re.search(r"SLURM run ID: (\S+)", proc.stdout).group(1)
    deadline = time.monotonic() + 60  # slurmctld hands finished jobs to slurmdbd asynchronously
    while True:
        jobs = slurm_jobs(run_id, since)
        counts = {r: sum(j["rule"] == r for j in jobs) for r in {j["rule"] for j in jobs}}
        if counts == expected or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert counts == expected, f"sacct records {counts}, Snakemake ran {expected}"
    assert all(job["State"] == "COMPLETED" for job in jobs), jobs

    # the training rule's job held a GPU from SLURM and its log says which one
    gpu_rules = [r for r in workflow.rules if "gpu" in r.resources and r.name in expected]
    assert "train_phi" in {r.name for r in gpu_rules}
    for rule in gpu_rules:
        held = {
            j["JobID"] for j in jobs if j["rule"] == rule.name and "gres/gpu=1" in j["AllocTRES"]
        }
        assert len(held) == expected[rule.name], f"rule {rule.name}: SLURM jobs without a GPU"
        for line in allocations(workdir, rule):
            assert line["SLURM_JOB_ID"] in held, f"rule {rule.name}: {line} is not a GPU job"
            assert any(line[v] != "-" for v in GPU_VARS), f"rule {rule.name}: no GPU in {line}"


def test_a_deterministic_failure_stops_the_run_once_and_names_its_log(
    slurm, tmp_path, default_config
):
    """A corrupt shard makes its localisation job fail on SLURM: Snakemake must exit non-zero
    promptly, without resubmitting the job (the profile's `retries: 0`), and point at the log
    that says which file is broken and what to do."""
    config = tiny(default_config, run="broken")
    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    workdir = tmp_path / "work"
    # the oracle localisation job reads the test and isolated splits: all present (so not
    # remade, no simulate job) but corrupt; the job stops at the first, the test split
    for name, split in splits(config).items():
        if name == "test" or name.startswith("isolated_"):
            data = workdir / "results" / "broken" / "data" / name
            data.mkdir(parents=True)
            for shard in split.shard_ids():
                (data / f"{shard}.npz").write_bytes(b"not an npz")
                (data / f"{shard}.parquet").write_bytes(b"not a parquet table")
    since = (datetime.datetime.now() - datetime.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S")
    started = time.monotonic()
    target = "results/broken/localizations/sigma_y_3/oracle/test.parquet"
    proc = run_profile(workdir, configfile, (target,), FAILURE_TIMEOUT_S)
    elapsed = time.monotonic() - started
    assert proc.returncode != 0, proc.stdout[-3000:]
    assert elapsed < FAILURE_TIMEOUT_S
    log = "results/broken/logs/sigma_y_3/localize/oracle.log"
    assert log in proc.stdout, proc.stdout[-3000:]
    text = (workdir / log).read_text()
    assert "0000.npz: corrupt or truncated file" in text and REBUILD_HINT in text, text[-2000:]
    assert not (workdir / target).exists()
    run_id = re.search(r"SLURM run ID: (\S+)", proc.stdout).group(1)
    deadline = time.monotonic() + 60
    while not (jobs := slurm_jobs(run_id, since)) and time.monotonic() < deadline:
        time.sleep(2)
    assert [j["rule"] for j in jobs] == ["localize"], f"expected one submission, sacct has {jobs}"
    assert jobs[0]["State"] == "FAILED", jobs
    print(f"failing job reported after {elapsed:.0f} s")
