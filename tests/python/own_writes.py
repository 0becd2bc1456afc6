#!/usr/bin/env python3
"""Reads one's own subscription writes back from the agent that took them, under load.

Usage: own_writes.py --url URL --ca-certs CA --user NAME --password SECRET
                     --tag TAG [--threads N] [--rounds R]

Each of N threads, on its own pywbem connection, R times: creates a CIM_IndicationFilter
named TAG-THREAD-ROUND, reads it back with GetInstance, finds it in EnumerateInstanceNames,
modifies its Query and reads the new one back, deletes it, and then must be told
CIM_ERR_NOT_FOUND by GetInstance. Every such read is the writer's own, on the node that took
the write, right after it was answered.

Prints one JSON line: {"rounds": DONE, "errors": ["what was wrong", ...]}; exits 0 either way
(the caller asserts).
"""

import argparse
import json
import sys
import threading
import warnings

from pywbem import CIM_ERR_NOT_FOUND, CIMError, CIMInstance, WBEMConnection

INTEROP = "root/interop"
FIRST_QUERY = "SELECT * FROM CIM_InstModification"
SECOND_QUERY = "SELECT * FROM CIM_InstCreation"


def work(args, thread, done, errors, lock):
    conn = WBEMConnection(
        args.url,
        (args.user, args.password),
        default_namespace=INTEROP,
        ca_certs=args.ca_certs,
        timeout=60,
    )

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
            done[0] += 1


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
    done = [0]
    errors = []
    lock = threading.Lock()
    threads = [
        threading.Thread(target=work, args=(args, t, done, errors, lock))
        for t in range(args.threads)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    json.dump({"rounds": done[0], "errors": errors}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
