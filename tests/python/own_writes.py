#!/usr/bin/env python3
"""Reads one's own subscription writes back from the agent that took them, under load.

Usage: own_writes.py --url URL --ca-certs CA --user NAME --password SECRET
                     --tag TAG [--threads N] [--rounds R]

Each of N threads, on its own pywbem connection, R times: creates a CIM_IndicationFilter
named TAG-THREAD-ROUND, reads it back with GetInstance, finds it in EnumerateInstanceNames,
modifies its Query and reads the new one back, deletes it, and then must be told
CIM_ERR_NOT_FOUND by GetInstance. Every such read is the writer's own, on the node that took
the write, right after it was answered.

Prints one JSON line: {"rounds": DONE, "errors": ["what was wrong", ...], "slowest":
[OPERATION, SECONDS]}; exits 0 either way (the caller asserts). A thread that meets anything
else than a CIMError reports it and ends.
"""

import argparse
import json
import sys
import threading
import time
import warnings

from pywbem import CIM_ERR_NOT_FOUND, CIMError, CIMInstance, WBEMConnection

INTEROP = "root/interop"
FIRST_QUERY = "SELECT * FROM CIM_InstModification"
SECOND_QUERY = "SELECT * FROM CIM_InstCreation"


class Timed:
    """Calls a connection's operations by name, keeping the longest one's name and seconds."""

    def __init__(self, conn, slowest, lock):
        self.conn = conn
        self.slowest = slowest
        self.lock = lock

    def __getattr__(self, operation):
        method = getattr(self.conn, operation)

        def timed(*args, **kwargs):
            start = time.monotonic()
            try:
                return method(*args, **kwargs)
            finally:
                took = time.monotonic() - start
                with self.lock:
                    if took > self.slowest[1]:
                        self.slowest[:] = [operation, round(took, 3)]

        return timed


def work(args, thread, state):
    """One thread's rounds; anything raised, not only a CIMError, is reported as an error."""
    try:
        rounds(args, thread, state)
    except Exception as error:  # noqa: BLE001: the caller must see every failure
        with state["lock"]:
            state["errors"].append(f"thread {thread}: {type(error).__name__}: {error}")


def rounds(args, thread, state):
    errors, lock = state["errors"], state["lock"]
    raw = WBEMConnection(
        args.url,
        (args.user, args.password),
        default_namespace=INTEROP,
        ca_certs=args.ca_certs,
        timeout=60,
    )
    conn = Timed(raw, state["slowest"], lock)

    def wrong(round_, what):
        with lock:
            errors.append(f"thread {thread} round {round_}: {what}")

    for round_ in range(args.rounds):
        name = f"{args.tag}-{thread}-{round_}"
        instance = CIMInstance(
            "CIM_IndicationFilter",
            properties={
                "Name": name,
                "QueryLanguage": "WQL",
                "Query": FIRST_QUERY,
            },
        )
        try:
            path = conn.CreateInstance(instance, namespace=INTEROP)
        except CIMError as error:
            wrong(round_, f"CreateInstance: {error}")
            continue
        try:
            read = conn.GetInstance(path)
            if read["Name"] != name or read["Query"] != FIRST_QUERY:
                wrong(round_, f"GetInstance after create read {read.tomof()}")
            names = conn.EnumerateInstanceNames("CIM_IndicationFilter", namespace=INTEROP)
            if not any(n["Name"] == name for n in names):
                wrong(round_, "EnumerateInstanceNames after create lacks it")
            read["Query"] = SECOND_QUERY
            read.path = path
            conn.ModifyInstance(read, PropertyList=["Query"])
            read = conn.GetInstance(path)
            if read["Query"] != SECOND_QUERY:
                wrong(round_, f"GetInstance after modify read Query {read['Query']!r}")
        except CIMError as error:
            wrong(round_, f"after create: {error}")
        try:
            conn.DeleteInstance(path)
        except CIMError as error:
            wrong(round_, f"DeleteInstance: {error}")
            continue
        try:
            conn.GetInstance(path)
            wrong(round_, "GetInstance after delete found it")
        except CIMError as error:
            if error.status_code != CIM_ERR_NOT_FOUND:
                wrong(round_, f"GetInstance after delete: {error}")
        with lock:
            state["done"] += 1


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--ca-certs", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--tag", required=True)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    state = {"done": 0, "errors": [], "slowest": ["none", 0.0], "lock": threading.Lock()}
    threads = [
        threading.Thread(target=work, args=(args, t, state)) for t in range(args.threads)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    summary = {
        "rounds": state["done"],
        "errors": state["errors"],
        "slowest": state["slowest"],
    }
    json.dump(summary, sys.stdout)
    print()


if __name__ == "__main__":
    main()
