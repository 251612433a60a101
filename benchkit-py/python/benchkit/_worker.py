"""Entry point of supervised workers started from Python: ``python -m benchkit._worker``.

The supervisor (in the notebook's process) starts this program, writes the job to its stdin
and reads its reports; a crash here becomes a record there.
"""

from benchkit._native import worker_main

if __name__ == "__main__":
    worker_main()
