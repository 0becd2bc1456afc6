#!/usr/bin/env python3
"""Times pywbem's MOF compiler on the full DMTF CIM schema 2.41: the anchor figure that
BENCHMARKS.md compares cimguard's MOF compiler against.

Usage (from the workspace root, with pywbem installed in the interpreter's environment):

    .venv/bin/python scripts/bench-pywbem-mof.py [SCHEMA_DIR] [RUNS]

SCHEMA_DIR defaults to ../shared/dmtf/cim-schema-2.41, RUNS to 3. Each run builds a fresh
compiler over an in-memory repository (MOFWBEMConnection without a server), so no run reuses
the classes of the one before. It prints one line per run and the best and median times.
"""

import os
import statistics
import sys
import time

import pywbem
from pywbem import MOFCompiler, MOFWBEMConnection

ENTRY_FILE = "cim_schema_2.41.0.mof"
NAMESPACE = "root/cimv2"


def compile_once(schema_dir):
    """Compiles the schema once into a fresh in-memory repository; returns (seconds, classes)."""
    repository = MOFWBEMConnection()
    compiler = MOFCompiler(repository, search_paths=[schema_dir], verbose=False)
    start = time.perf_counter()
    compiler.compile_file(os.path.join(schema_dir, ENTRY_FILE), NAMESPACE)
    elapsed = time.perf_counter() - start
    classes = len(repository.classes[NAMESPACE])
    return elapsed, classes


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default_dir = os.path.join(here, "..", "..", "shared", "dmtf", "cim-schema-2.41")
    schema_dir = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else default_dir)
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    print(f"pywbem {pywbem.__version__}, python {sys.version.split()[0]}, schema {schema_dir}")
    times = []
    for run in range(1, runs + 1):
        elapsed, classes = compile_once(schema_dir)
        times.append(elapsed)
        print(f"run {run}: {elapsed:.2f} s, {classes} classes")
    print(f"best {min(times):.2f} s, median {statistics.median(times):.2f} s over {runs} runs")


if __name__ == "__main__":
    main()
