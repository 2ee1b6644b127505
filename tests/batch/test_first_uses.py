"""What the command pays while it waits for the read-ahead (``runner.first_uses``) instead of
on the run's busy threads later (issue 14, p20)."""
from __future__ import annotations

import subprocess
import sys

from yibao.core import runner

# A fresh interpreter: the test process has long imported numpy.ma
WAITING = """
import sys
import pyarrow.parquet as pq
from yibao.core import runner
from pathlib import Path
from yibao.core.sources import Source

class Ahead:
    def stop(self, paths):
        return set(paths)

    def taken(self, path):
        return None

    def tables(self, paths):
        print("MA", "numpy.ma" in sys.modules)
        return [pq.read_table(str(p), columns=["claim_id"]) for p in paths]

sources = [Source(Path(sys.argv[1]))]
runner._read_in_memory(sources, ["claim_id"], Ahead())
"""


def test_numpy_ma_is_imported_while_the_read_ahead_is_waited_for(claims_file):
    """pyarrow's first ``pa.array`` of a numpy array imports numpy.ma (≈ 7.5 ms): by the
    time the command waits for the read-ahead's tables it is imported, not on the provider
    thread later."""
    done = subprocess.run([sys.executable, "-c", WAITING, str(claims_file)],
                          capture_output=True, text=True, check=True)
    assert "MA True" in done.stdout.split("\n"), done.stdout + done.stderr
