"""Chunks of a movie analysed at once by several processes (`diffloc analyze --workers`).

This process and workers - 1 spawned helpers each take the next chunk left until none is; a
helper opens the analysis once (`open_analysis`: card, models, movie, camera). Every chunk runs
on its own pinned torch threads and the results come back in frame order. A chunk is computed by
the same code whichever process runs it, so the outputs do not depend on the number of workers.
Processes, not threads: most of a frame's time outside phi is numpy code that holds the
interpreter lock, so one process with two torch threads leaves the second core mostly idle
during the fits.
"""

import logging
import multiprocessing
import sys
import threading
from collections import deque
from concurrent.futures import ProcessPoolExecutor

import torch
from tqdm import tqdm

from diffloc.analyze.pipeline import ChunkResult
from diffloc.analyze.session import Analysis, open_analysis, run_chunk
from diffloc.runtime import usable_cores

log = logging.getLogger(__name__)

_worker_analysis: Analysis | None = None  # this worker process's open analysis


def auto_workers(threads: int, device: torch.device) -> int:
    """Worker processes that fill the usable cores with `threads` torch threads each; one on a
    CUDA device (the GPU does phi's and psi's work; more processes would each hold a context)."""
    if device.type == "cuda":
        return 1
    return max(1, usable_cores() // max(1, threads))


def _open_worker(open_args: tuple) -> None:
    """Worker initialiser: open the analysis; warnings and errors go to stderr."""
    global _worker_analysis
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("diffloc worker %(process)d %(levelname)s: %(message)s"))
    root = logging.getLogger("diffloc")
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    _worker_analysis = open_analysis(*open_args)


def _run(start: int, stop: int, progress: bool) -> ChunkResult:
    """Analyse frames [start, stop) in a worker."""
    return run_chunk(_worker_analysis, start, stop, progress)


def analyse_chunks(
    analysis: Analysis,
    open_args: tuple,
    bounds: list[tuple[int, int]],
    workers: int,
    progress: bool = True,
) -> list[ChunkResult]:
    """The chunks [start, stop) of `bounds` analysed, returned in their order, by this process
    and min(workers, chunks) - 1 spawned helper processes that each open the analysis from
    `open_args` (the arguments of `open_analysis`). This process starts on the first chunk at
    once, so the helpers' start-up (~4 s of imports) overlaps with work; each takes the next
    chunk left when it finishes one. The first error of any chunk is raised once the running
    chunks have ended; no further chunk starts after it."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    bar = tqdm(
        total=len(bounds), desc="analyze", unit="chunk", disable=not progress, file=sys.stderr
    )
    queue = deque(enumerate(bounds))
    results: list[ChunkResult | None] = [None] * len(bounds)
    errors: list[BaseException] = []
    failed = threading.Event()
    helpers = min(workers, len(bounds)) - 1

    def take() -> tuple[int, tuple[int, int]] | None:
        """The next chunk nobody has taken, or None when there is none or a chunk failed."""
        if failed.is_set():
            return None
        try:
            return queue.popleft()
        except IndexError:
            return None

    def feed(pool: ProcessPoolExecutor) -> None:
        """One helper process's share: the next chunk left, until none is."""
        while (job := take()) is not None:
            i, (start, stop) = job
            try:
                results[i] = pool.submit(_run, start, stop, progress).result()
            except BaseException as error:
                errors.append(error)
                failed.set()
                return
            bar.update()

    def work_here(job: tuple[int, tuple[int, int]] | None) -> None:
        """This process's share: `job`, then the next chunk left, until none is."""
        try:
            while job is not None:
                i, (start, stop) = job
                results[i] = run_chunk(analysis, start, stop, progress)
                bar.update()
                job = take()
        except BaseException:
            failed.set()
            raise

    try:
        first = take()  # this process's, before any helper takes one
        if not helpers:
            work_here(first)
            return results
        log.info("%d chunks on this process and %d helper processes", len(bounds), helpers)
        with ProcessPoolExecutor(
            helpers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_open_worker,
            initargs=(open_args,),
        ) as pool:
            feeders = [
                threading.Thread(target=feed, args=(pool,), daemon=True) for _ in range(helpers)
            ]
            for feeder in feeders:
                feeder.start()
            try:
                work_here(first)
            finally:
                for feeder in feeders:
                    feeder.join()
    finally:
        bar.close()
    if errors:
        raise errors[0]
    return results
