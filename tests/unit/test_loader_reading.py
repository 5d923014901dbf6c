"""Reading the topology file: a file that never ends (a pipe, `pgtopo validate <(...)`) is read no
further than one byte past the limit, then refused."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from pgtopo.errors import SpecError
from pgtopo.loader import MAX_BYTES, load_topology


def test_a_pipe_longer_than_the_limit_is_refused_without_reading_it_to_the_end(tmp_path: Path) -> None:
    path = tmp_path / "pipe.yaml"
    os.mkfifo(path)
    chunk, total = b"#" * 65536, 4 * MAX_BYTES
    written = [0]
    cut_off = threading.Event()

    def write() -> None:
        with open(path, "wb", buffering=0) as pipe:
            try:
                while written[0] < total:
                    written[0] += pipe.write(chunk) or 0
            except BrokenPipeError:
                cut_off.set()  # the loader closed its end: it stopped reading

    writer = threading.Thread(target=write)
    writer.start()
    try:
        with pytest.raises(SpecError) as info:
            load_topology(path, {})
    finally:
        writer.join()
    assert info.value.problems == [f"{path}: cannot read: larger than {MAX_BYTES} bytes"]
    assert cut_off.is_set() and written[0] < total
