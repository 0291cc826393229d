"""diffloc.runtime: what a job's log says about its SLURM allocation, GPUs and torch device."""

import logging

import pytest
import torch

from diffloc import runtime

SLURM_GPU_STEP = {
    "SLURM_JOB_ID": "4242",
    "SLURM_JOB_GPUS": "1",
    "SLURM_STEP_GPUS": "1",
    "CUDA_VISIBLE_DEVICES": "0",
    "GPU_DEVICE_ORDINAL": "0",
    "SLURM_CPUS_PER_TASK": "4",  # not an allocation variable: never reported
}


def test_a_slurm_gpu_job_reports_its_job_and_gpus():
    line = runtime.describe_allocation(torch.device("cpu"), SLURM_GPU_STEP)
    assert line == (
        "allocation: SLURM_JOB_ID=4242 SLURM_JOB_GPUS=1 SLURM_STEP_GPUS=1 "
        "CUDA_VISIBLE_DEVICES=0 GPU_DEVICE_ORDINAL=0 torch_device=cpu"
    )
    fields = runtime.parse_allocation(f"2024-01-01 INFO {line}")
    assert fields == {
        **{k: SLURM_GPU_STEP[k] for k in runtime.ALLOCATION_VARS},
        "torch_device": "cpu",
    }


def test_outside_slurm_every_variable_reads_unset():
    line = runtime.describe_allocation(torch.device("cpu"), {"CUDA_VISIBLE_DEVICES": ""})
    fields = runtime.parse_allocation(line)
    assert set(fields) == {*runtime.ALLOCATION_VARS, "torch_device"}
    assert all(fields[k] == runtime.UNSET for k in runtime.ALLOCATION_VARS)


def test_log_allocation_reads_the_process_environment(monkeypatch, caplog):
    for name in runtime.ALLOCATION_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SLURM_JOB_ID", "17")
    logger = logging.getLogger("test.runtime")
    with caplog.at_level(logging.INFO, logger="test.runtime"):
        line = runtime.log_allocation(logger, torch.device("cpu"))
    assert "SLURM_JOB_ID=17 " in line and "CUDA_VISIBLE_DEVICES=- " in line
    assert [r.getMessage() for r in caplog.records] == [line]


def test_a_gpu_allocated_but_unused_is_warned_about(monkeypatch, caplog):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    with caplog.at_level(logging.INFO, logger="test.runtime"):
        runtime.log_allocation(logging.getLogger("test.runtime"), torch.device("cpu"))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "GPUs 0,1 were allocated but torch runs on cpu" in warnings[0]


def test_parse_allocation_rejects_other_lines():
    with pytest.raises(ValueError, match="not an allocation line"):
        runtime.parse_allocation("INFO phi: 1234 parameters")


def test_grouped_inputs_come_back_by_group_in_order():
    named = {
        "posterior__isolated_100": ["a0", "a1"],
        "posterior__test": "t0",  # a single file comes back as a list
        "maps__default__isolated_100": ["m0"],
        "maps__paper__isolated_100": ["p0"],
        "model": "psi.pt",
    }
    assert runtime.grouped(named, "posterior") == {"isolated_100": ["a0", "a1"], "test": ["t0"]}
    assert list(runtime.grouped(named, "posterior")) == ["isolated_100", "test"]
    assert runtime.grouped(named, "maps") == {
        "default": {"isolated_100": ["m0"]},
        "paper": {"isolated_100": ["p0"]},
    }
    with pytest.raises(KeyError, match=r"no inputs named npz__<group>.*'model'"):
        runtime.grouped(named, "npz")


def test_job_log_writes_records_and_the_traceback_of_a_failure(tmp_path):
    path = tmp_path / "job.log"
    with runtime.job_log(path) as log:
        log.info("hello %d", 7)
        logging.getLogger("diffloc.some.stage").warning("from a stage module")
    with pytest.raises(ValueError, match="boom"), runtime.job_log(path):
        raise ValueError("boom")
    text = path.read_text()
    assert "hello 7" in text and "from a stage module" in text
    assert "job failed" in text and "ValueError: boom" in text and "Traceback" in text
    # the handler is removed afterwards: later records do not reach the file
    logging.getLogger("diffloc").warning("after the job")
    assert "after the job" not in path.read_text()
