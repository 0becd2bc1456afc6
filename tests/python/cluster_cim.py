#!/usr/bin/env python3
"""One CIM operation on a cimguard node's agent through pywbem, answered as JSON.

Usage: cluster_cim.py --url URL --ca-certs CA --user NAME --password SECRET OPERATION

OPERATION is a JSON object:
  {"op": "enumerate", "class": "HP_SGNode"}
      -> [{"path": {"class": ..., "keys": {...}}, "properties": {...}}, ...]
     ("namespace": "root/interop" for another namespace than root/cimv2)
  {"op": "get", "path": PATH}
      -> {"path": PATH, "properties": {...}}
  {"op": "delete", "path": PATH}
      -> {"deleted": true}
  {"op": "associators", "path": PATH, "assoc_class": ..., "result_class": ...}
      -> [PATH, ...] (the associated instances' paths)
  {"op": "references", "path": PATH, "result_class": ...}
      -> [PATH, ...]
  {"op": "subscribe", "name": NAME, "query": WQL, "destination": URL,
   "properties": {"OnFatalErrorPolicy": ["uint16", 4], ...}}
      -> PATH of the new CIM_IndicationSubscription in root/interop, made with a filter
         (SourceNamespaces root/cimv2) and a destination both named NAME, and the
         subscription's extra properties
  {"op": "metrics"}
      -> {"status": HTTP_STATUS, "type": CONTENT_TYPE, "text": BODY} (GET /metrics)
  {"op": "invoke", "path": PATH, "method": "RequestStateChange",
   "params": {"RequestedState": ["uint16", 3], "NodeName": ["string", "n2"]}}
      -> {"return": N, "out": {...}}
PATH is {"class": ..., "keys": {...}} with string keys (reference keys are not needed here).

A CIM error prints {"error": CODE, "description": TEXT} and exits 0: the caller asserts it.
Values are printed as JSON: integers, booleans, strings, lists, null; references as PATHs,
with "host" when the reference names the host that serves its instance.
"""

import argparse
import json
import sys
import warnings

import pywbem
from pywbem import CIMError, CIMInstanceName, WBEMConnection

NAMESPACE = "root/cimv2"


def to_path(path):
    return CIMInstanceName(path["class"], keybindings=path["keys"], namespace=NAMESPACE)


def from_path(path):
    keys = {}
    for name, value in path.keybindings.items():
        keys[name] = from_value(value)
    return {"class": path.classname, "keys": keys}


def from_value(value):
    if isinstance(value, CIMInstanceName):
        # A reference says on which host its instance is served.
        reference = from_path(value)
        if value.host is not None:
            reference["host"] = value.host
        return reference
    if isinstance(value, list):
        return [from_value(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    return str(value)


TYPES = {
    "uint16": pywbem.Uint16,
    "uint32": pywbem.Uint32,
    "uint64": pywbem.Uint64,
    "string": str,
    "boolean": bool,
    "datetime": pywbem.CIMDateTime,
    "strings": lambda values: [str(v) for v in values],
}


def metrics(args):
    """GET /metrics with the connection's credentials: {"status": CODE, "text": BODY}."""
    import requests

    answer = requests.get(
        args.url + "/metrics",
        auth=(args.user, args.password),
        verify=args.ca_certs,
        timeout=30,
    )
    return {
        "status": answer.status_code,
        "type": answer.headers.get("Content-Type"),
        "text": answer.text,
    }


def subscribe(conn, op):
    """A filter, a destination and the subscription between them, as a console makes them
    with plain CreateInstance (its own policies), in root/interop."""
    interop = "root/interop"

    def create(classname, properties):
        instance = pywbem.CIMInstance(classname, properties=properties)
        return conn.CreateInstance(instance, namespace=interop)

    filt = create(
        "CIM_IndicationFilter",
        {
            "Name": op["name"],
            "Query": op["query"],
            "QueryLanguage": "WQL",
            "SourceNamespaces": ["root/cimv2"],
        },
    )
    destination = create(
        "CIM_ListenerDestinationCIMXML",
        {"Name": op["name"], "Destination": op["destination"]},
    )
    properties = {"Filter": filt, "Handler": destination}
    for name, (kind, value) in op.get("properties", {}).items():
        properties[name] = TYPES[kind](value)
    return create("CIM_IndicationSubscription", properties)


def run(conn, op):
    kind = op["op"]
    if kind == "enumerate":
        found = conn.EnumerateInstances(op["class"], namespace=op.get("namespace", NAMESPACE))
        return [
            {
                "path": from_path(instance.path),
                "properties": {
                    name: from_value(prop.value) for name, prop in instance.properties.items()
                },
            }
            for instance in found
        ]
    if kind == "get":
        instance = conn.GetInstance(to_path(op["path"]))
        return {
            "path": from_path(instance.path),
            "properties": {
                name: from_value(prop.value) for name, prop in instance.properties.items()
            },
        }
    if kind == "delete":
        conn.DeleteInstance(to_path(op["path"]))
        return {"deleted": True}
    if kind == "associators":
        found = conn.AssociatorNames(
            to_path(op["path"]),
            AssocClass=op.get("assoc_class"),
            ResultClass=op.get("result_class"),
        )
        return [from_path(p) for p in found]
    if kind == "references":
        found = conn.ReferenceNames(to_path(op["path"]), ResultClass=op.get("result_class"))
        return [from_path(p) for p in found]
    if kind == "subscribe":
        return from_path(subscribe(conn, op))
    if kind == "invoke":
        params = [
            (name, TYPES[kind_](value)) for name, (kind_, value) in op.get("params", {}).items()
        ]
        result, out = conn.InvokeMethod(op["method"], to_path(op["path"]), params)
        return {"return": int(result), "out": {k: from_value(v) for k, v in out.items()}}
    raise SystemExit(f"unknown operation {kind}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--ca-certs", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("operation")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    conn = WBEMConnection(
        args.url,
        (args.user, args.password),
        default_namespace=NAMESPACE,
        ca_certs=args.ca_certs,
        timeout=30,
    )
    op = json.loads(args.operation)
    if op["op"] == "metrics":
        json.dump(metrics(args), sys.stdout)
        print()
        return
    try:
        answer = run(conn, op)
    except CIMError as error:
        answer = {"error": error.status_code, "description": error.status_description}
    json.dump(answer, sys.stdout)
    print()


if __name__ == "__main__":
    main()
