"""The canonical form check of the walk's chunks, inline or in worker processes.

At a million events the check costs more than fetching and hashing (benchmarks/chain.py), so
on a machine with more than one CPU a long walk hands its chunks to worker processes and goes
on fetching and hashing; it takes their answers in chunk order, so it stops at the same first
bad event as with the check inline.

The workers are plain child processes (``python -c ... serve()``) that read chunks of stored
texts on their standard input and answer on their standard output. Not multiprocessing's: a
spawned child imports the caller's main module again (a script without a ``__main__`` guard
would run twice), a forked one inherits locks held by the caller's other threads (the web
server's, the scheduler's). A request is two unsigned 64-bit integers (the number of texts,
the number of bytes), one such integer per text (its length) and the texts joined; the answer
is one signed 64-bit integer, the index of the first non-canonical text or -1 (the machine's
byte order: both ends run on it). Should a worker fail, its chunks are checked inline: the
answers are the same either way.
"""
from __future__ import annotations

import os
import queue
import struct
import subprocess
import sys
import threading
from bisect import bisect_right
from collections import deque
from itertools import accumulate
from operator import itemgetter
from pathlib import Path

from audit.fast_form import first_non_canonical

# Workers check the form only when at least this many events need it: starting them costs
# about 0.1 s of the walk's time, what the inline check needs for some 30,000 events.
PARALLEL_FORM_EVENTS = 100_000
MAX_FORM_WORKERS = 4

_SEQ = itemgetter(0)
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)  # the folder holding audit/
_SERVE = ("import sys; sys.path.insert(0, sys.argv[1]); "
          "from audit.form_workers import serve; serve()")
_HEADER = struct.Struct("=QQ")  # texts, bytes
_ANSWER = struct.Struct("=q")  # index of the first non-canonical text, or -1
_NONE = -1


def form_workers(events_to_check: int) -> int:
    """How many worker processes should check the form of ``events_to_check`` events: none
    (inline) for a short walk, on one CPU, or without a Python interpreter to start (an
    embedding server's sys.executable is not one)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if (events_to_check < PARALLEL_FORM_EVENTS or (cpus or 1) < 2
            or not Path(sys.executable or "-").name.lower().startswith("python")):
        return 0
    return min(cpus, MAX_FORM_WORKERS)


class FormChecks:
    """For each chunk of rows ``(seq, prev_hash, hash, canonical bytes)``, in the order they
    were submitted: the index of the first row whose text is not canonical, or None. Rows up
    to seq ``form_known_through`` are not checked (they were, by an earlier walk). With
    ``workers``, chunks go round to the workers and up to ``workers + 1`` are in flight."""

    def __init__(self, workers: int, form_known_through: int):
        self._through = form_known_through
        self._workers = _start_workers(workers)
        self._ahead = len(self._workers) + 1 if self._workers else 0
        self._queue: deque[tuple[list[tuple], int, list, _Worker | None]] = deque()
        self._submitted = 0

    def submit(self, rows: list[tuple]) -> None:
        skip = bisect_right(rows, self._through, key=_SEQ)
        texts = [row[3] for row in rows[skip:]]
        worker = None
        # a NULL text (None) is a problem the walk finds at once: no worker needed
        if texts and self._workers and None not in texts:
            worker = self._workers[self._submitted % len(self._workers)]
            worker.send(texts)
            self._submitted += 1
        self._queue.append((rows, skip, texts, worker))

    def due(self) -> bool:
        """Whether an answer must be taken before the next chunk is submitted."""
        return len(self._queue) > self._ahead

    def pending(self) -> bool:
        return bool(self._queue)

    def next_answer(self) -> tuple[list[tuple], int | None]:
        """The oldest chunk's rows and the index of its first non-canonical row (or None)."""
        rows, skip, texts, worker = self._queue.popleft()
        answer = worker.receive() if worker is not None else None
        if answer is None or not _NONE <= answer < len(texts):  # no worker, or it failed
            bad = first_non_canonical(texts) if texts else None
        else:
            bad = None if answer == _NONE else answer
        return rows, None if bad is None else skip + bad

    def close(self) -> None:
        """Stop the workers (at once when the walk stopped early)."""
        for worker in self._workers:
            worker.close()
        self._workers = []


def _start_workers(count: int) -> list[_Worker]:
    workers = []
    try:
        for _ in range(count):
            workers.append(_Worker())
    except OSError:  # no more processes: as many as started
        pass
    return workers


class _Worker:
    """One child process; a thread writes the requests, so that the walk never waits for a
    busy worker to read them."""

    def __init__(self):
        self._process = subprocess.Popen([sys.executable, "-c", _SERVE, _PACKAGE_ROOT],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        self._feeder = threading.Thread(target=self._feed, name="audit-form-feeder",
                                        daemon=True)
        self._feeder.start()
        self._failed = False
        self._unanswered = 0

    def send(self, texts: list[bytes]) -> None:
        self._requests.put(texts)
        self._unanswered += 1

    def receive(self) -> int | None:
        """The answer to the oldest unanswered request (-1: all canonical), or None if the
        worker failed."""
        self._unanswered -= 1
        if self._failed:
            return None
        answer = self._process.stdout.read(_ANSWER.size)
        if len(answer) != _ANSWER.size:  # the worker died
            self._failed = True
            return None
        return _ANSWER.unpack(answer)[0]

    def close(self) -> None:
        self._requests.put(None)
        if self._unanswered:  # the walk stopped early: the answers are not wanted
            self._process.kill()
        self._feeder.join()
        self._process.wait()
        self._process.stdout.close()

    def _feed(self) -> None:
        stdin = self._process.stdin
        try:
            while (texts := self._requests.get()) is not None:
                joined = b"".join(texts)
                stdin.write(_HEADER.pack(len(texts), len(joined)))
                stdin.write(struct.pack(f"={len(texts)}Q", *map(len, texts)))
                stdin.write(joined)
                stdin.flush()
        except OSError:  # the worker died or was stopped; receive() tells
            pass
        finally:
            try:
                stdin.close()  # the worker's end of input: it exits
            except OSError:
                pass


def serve() -> None:
    """The worker's loop: answer each request until standard input ends."""
    requests, answers = sys.stdin.buffer, sys.stdout.buffer
    while len(header := requests.read(_HEADER.size)) == _HEADER.size:
        count, size = _HEADER.unpack(header)
        lengths = requests.read(8 * count)
        joined = requests.read(size)
        if len(lengths) != 8 * count or len(joined) != size:
            return  # cut off: the walk has stopped
        ends = list(accumulate(struct.unpack(f"={count}Q", lengths)))
        texts = list(map(joined.__getitem__, map(slice, [0, *ends], ends)))
        bad = first_non_canonical(texts)
        answers.write(_ANSWER.pack(_NONE if bad is None else bad))
        answers.flush()
