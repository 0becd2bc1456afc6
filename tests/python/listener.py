#!/usr/bin/env python3
"""Subscribes to a cimguard agent with pywbem's WBEMSubscriptionManager and receives the
indications with pywbem's WBEMListener, printing each as one JSON line.

Usage: listener.py --url URL --ca-certs CA --user NAME --password SECRET
                   --listen-port PORT [--https-cert CERT --https-key KEY]
                   [--query QUERY] [--language WQL|DMTF:CQL] [--keep] [--manager-id ID]
                   [--also URL CA]... [--listen-only | --subscribe-only]

Prints {"subscribed": {"filter": NAME, "destination": NAME}} once the filter, the
destination and the subscription exist, then one line per indication received:
{"class": ..., "properties": {...}} (values as JSON; datetimes as their CIM text). It runs
until its standard input closes; then, unless --keep, it removes what it created.

With --also URL CA (repeatable) it subscribes at those agents too, the same query to the same
listener, each with a subscription manager of its own, as a pywbem user subscribes at every
node of a cluster (one manager cannot: each agent lists the cluster's filters and
destinations, which pywbem takes for its own names already in use).

With --listen-only it subscribes to nothing and only receives (a listener that comes back
after an outage). With --subscribe-only it receives nothing: it subscribes PORT's URL for
good (as --keep) and ends, for a listener of another kind (a benchmark's).
"""

import argparse
import json
import sys
import threading
import warnings

import pywbem
from pywbem import WBEMConnection, WBEMListener, WBEMServer, WBEMSubscriptionManager


def value(v):
    if isinstance(v, pywbem.CIMInstance):
        return {
            "class": v.classname,
            "properties": {name: value(p.value) for name, p in v.properties.items()},
        }
    if isinstance(v, list):
        return [value(x) for x in v]
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, int):
        return int(v)
    return str(v)


LOCK = threading.Lock()


def print_line(obj):
    with LOCK:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def received(indication, host):
    print_line(
        {
            "class": indication.classname,
            "properties": {name: value(p.value) for name, p in indication.properties.items()},
        }
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url")
    parser.add_argument("--ca-certs")
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--listen-port", type=int, required=True)
    parser.add_argument("--https-cert")
    parser.add_argument("--https-key")
    parser.add_argument("--query", default="SELECT * FROM HP_SGAlertIndication")
    parser.add_argument("--language", default="WQL")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--listen-only", action="store_true")
    # Subscribes --listen-port's URL (permanently, as --keep) and ends: another listener
    # (a benchmark's) takes the indications.
    parser.add_argument("--subscribe-only", action="store_true")
    # Owned filters and destinations are named after the manager: two listeners of one
    # cluster need different ones (the subscriptions are the cluster's).
    parser.add_argument("--manager-id", default="cimguardtest")
    parser.add_argument("--also", nargs=2, action="append", default=[],
                        metavar=("URL", "CA"))
    args = parser.parse_args()
    if args.subscribe_only:
        args.keep = True

    https = args.https_cert is not None
    if args.subscribe_only:
        listener = None
    elif https:
        listener = WBEMListener(
            "127.0.0.1",
            https_port=args.listen_port,
            certfile=args.https_cert,
            keyfile=args.https_key,
        )
    else:
        listener = WBEMListener("127.0.0.1", http_port=args.listen_port)
    if listener is not None:
        listener.add_callback(received)
        listener.start()

    managers = []
    if not args.listen_only:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            servers = [(args.url, args.ca_certs)] + [tuple(a) for a in args.also]
            for index, (url, ca) in enumerate(servers):
                manager_id = args.manager_id if index == 0 else f"{args.manager_id}n{index}"
                manager = WBEMSubscriptionManager(subscription_manager_id=manager_id)
                conn = WBEMConnection(
                    url,
                    (args.user, args.password),
                    ca_certs=ca,
                    timeout=60,
                )
                server_id = manager.add_server(WBEMServer(conn))
                managers.append((manager, server_id))
                scheme = "https" if https else "http"
                destination = manager.add_destination(
                    server_id,
                    f"{scheme}://127.0.0.1:{args.listen_port}",
                    owned=not args.keep,
                    destination_id="dest" if not args.keep else None,
                    name=None if not args.keep else f"cimguardtest-{args.listen_port}",
                )
                filt = manager.add_filter(
                    server_id,
                    "root/cimv2",
                    args.query,
                    query_language=args.language,
                    owned=not args.keep,
                    filter_id="filter" if not args.keep else None,
                    name=None if not args.keep else f"cimguardtest-{args.listen_port}",
                )
                manager.add_subscriptions(
                    server_id, filt.path, [destination.path], owned=not args.keep
                )
        print_line(
            {
                "subscribed": {
                    "filter": str(filt["Name"]),
                    "destination": str(destination["Name"]),
                }
            }
        )
    else:
        print_line({"listening": args.listen_port})
    if args.subscribe_only:
        return

    # Until the test closes standard input.
    sys.stdin.read()
    if not args.keep:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for manager, server_id in managers:
                manager.remove_server(server_id)
    listener.stop()


if __name__ == "__main__":
    try:
        main()
    except BaseException:
        import os
        import traceback

        traceback.print_exc()
        sys.stderr.flush()
        # The listener's server thread would keep the process alive.
        os._exit(1)
