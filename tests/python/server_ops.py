#!/usr/bin/env python3
"""cimguard's WBEM server driven over HTTPS by pywbem, a client nobody here wrote.

Usage: server_ops.py GROUP --url https://127.0.0.1:PORT --ca-certs CA.pem [options]

Each group (classes, instances, associations, class_result_class, reference_keys, pull,
pull_limits, queries, instance_writes, subscriptions, methods, statistics, wbemserver, access) is a list of checks, each one operation or a few,
positive and negative. Every check runs even when an earlier one failed; the script prints
`ok GROUP/CHECK` or `FAIL GROUP/CHECK: why` for each and exits 1 when any failed, so the Rust
test that runs a group shows every failure at once, with pywbem's own error text.

The script asserts what DSP0200 (operations, status codes) and DSP1033 (the interop
namespace) say a server does; the status codes are named in the messages.
"""

import argparse
import sys
import time
import traceback
import warnings

import pywbem
from pywbem import (
    CIMClass,
    CIMClassName,
    CIMError,
    CIMInstance,
    CIMInstanceName,
    CIMProperty,
    CIMQualifierDeclaration,
    Uint16,
    WBEMConnection,
    WBEMServer,
    WBEMSubscriptionManager,
)

INTEROP = "root/interop"
CIMV2 = "root/cimv2"
# The alias pywbem tries first when it looks for the interop namespace.
INTEROP_ALIAS = "interop"
MISSING_NAMESPACE = "root/nosuch"
MISSING_CLASS = "CIM_NoSuchClass"

# The DSP0200 status codes the checks expect, by their DSP0200 names.
STATUS = {
    1: "CIM_ERR_FAILED",
    2: "CIM_ERR_ACCESS_DENIED",
    3: "CIM_ERR_INVALID_NAMESPACE",
    4: "CIM_ERR_INVALID_PARAMETER",
    5: "CIM_ERR_INVALID_CLASS",
    6: "CIM_ERR_NOT_FOUND",
    7: "CIM_ERR_NOT_SUPPORTED",
    11: "CIM_ERR_ALREADY_EXISTS",
    12: "CIM_ERR_NO_SUCH_PROPERTY",
    14: "CIM_ERR_QUERY_LANGUAGE_NOT_SUPPORTED",
    15: "CIM_ERR_INVALID_QUERY",
    16: "CIM_ERR_METHOD_NOT_AVAILABLE",
    17: "CIM_ERR_METHOD_NOT_FOUND",
    21: "CIM_ERR_INVALID_ENUMERATION_CONTEXT",
    22: "CIM_ERR_INVALID_OPERATION_TIMEOUT",
    26: "CIM_ERR_CONTINUATION_ON_ERROR_NOT_SUPPORTED",
    27: "CIM_ERR_SERVER_LIMITS_EXCEEDED",
}

# Seconds an expired enumeration context may take to be reported as such.
EXPIRY_DEADLINE = 20.0

CHECKS = {}


def check(group):
    """Registers the decorated function as a check of `group`."""

    def register(function):
        CHECKS.setdefault(group, []).append(function)
        return function

    return register


class Failure(Exception):
    """A check's expectation that the server did not meet."""


def expect(condition, message):
    if not condition:
        raise Failure(message)


def status_text(code):
    return f"{code} ({STATUS.get(code, '?')})"


def expect_error(codes, what, call):
    """Runs `call` and expects a CIMError with one of `codes`; returns the error."""
    if isinstance(codes, int):
        codes = (codes,)
    wanted = " or ".join(status_text(c) for c in codes)
    try:
        result = call()
    except CIMError as error:
        if error.status_code not in codes:
            raise Failure(
                f"{what}: expected CIM status {wanted}, got "
                f"{error.status_code} ({error.status_code_name}): {error.status_description}"
            ) from None
        return error
    raise Failure(f"{what}: expected CIM status {wanted}, but it succeeded: {short(result)}")


def short(value, limit=400):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def names_of(items):
    return sorted(str(i).lower() for i in items)


def same_path(left, right):
    """Same class and keys (host and namespace ignored), as DSP0004 compares instance names."""
    if left.classname.lower() != right.classname.lower():
        return False
    left_keys = {k.lower(): v for k, v in left.keybindings.items()}
    right_keys = {k.lower(): v for k, v in right.keybindings.items()}
    return left_keys == right_keys


def in_namespace(path, namespace):
    """A copy of `path` in `namespace`, without host."""
    copy = path.copy()
    copy.host = None
    copy.namespace = namespace
    return copy


def contains_path(paths, wanted):
    return any(same_path(p, wanted) for p in paths)


def local(path):
    """The path without host and namespace, for messages."""
    copy = path.copy()
    copy.host = None
    copy.namespace = None
    return str(copy)


class Context:
    """The connections and arguments a check uses."""

    def __init__(self, arguments):
        self.arguments = arguments
        self.conn = self.connection()
        self.pull_conn = self.connection(use_pull_operations=True)
        self._object_manager_path = None
        self._profile_path = None

    def connection(self, creds=None, use_pull_operations=None, namespace=INTEROP):
        if creds is None and self.arguments.user:
            creds = (self.arguments.user, self.arguments.password)
        return WBEMConnection(
            self.arguments.url,
            creds,
            default_namespace=namespace,
            ca_certs=self.arguments.ca_certs,
            timeout=60,
            use_pull_operations=use_pull_operations,
        )

    def object_manager_path(self):
        if self._object_manager_path is None:
            paths = self.conn.EnumerateInstanceNames("CIM_ObjectManager", namespace=INTEROP)
            expect(len(paths) == 1, f"expected one CIM_ObjectManager, found {short(paths)}")
            self._object_manager_path = paths[0]
        return self._object_manager_path.copy()

    def profile_path(self):
        """The path of the DMTF Profile Registration CIM_RegisteredProfile."""
        if self._profile_path is None:
            found = [
                i.path
                for i in self.conn.EnumerateInstances("CIM_RegisteredProfile", namespace=INTEROP)
                if i.get("RegisteredName") == "Profile Registration"
            ]
            expect(len(found) == 1, f"expected one Profile Registration profile, found {found}")
            self._profile_path = found[0]
        return self._profile_path.copy()

    def system_name(self):
        instance = self.conn.GetInstance(self.object_manager_path())
        return instance["SystemName"]


# --- classes -------------------------------------------------------------------------------


@check("classes")
def get_class_local_only(ctx):
    local_class = ctx.conn.GetClass("CIM_ObjectManager", namespace=INTEROP)
    expect(local_class.classname == "CIM_ObjectManager", f"classname {local_class.classname}")
    expect(
        local_class.superclass == "CIM_WBEMService",
        f"superclass {local_class.superclass}, expected CIM_WBEMService",
    )
    expect(
        "GatherStatisticalData" in local_class.properties,
        f"the class's own property is missing: {sorted(local_class.properties)}",
    )
    expect(
        "SystemName" not in local_class.properties,
        "LocalOnly defaults to true for GetClass, yet the inherited SystemName is there",
    )
    full = ctx.conn.GetClass("CIM_ObjectManager", namespace=INTEROP, LocalOnly=False)
    for name in ("SystemName", "CreationClassName", "Name", "GatherStatisticalData", "Caption"):
        expect(name in full.properties, f"LocalOnly=False lacks {name}: {sorted(full.properties)}")
    expect(
        set(local_class.properties) < set(full.properties),
        "LocalOnly=True should give a strict subset of LocalOnly=False",
    )


@check("classes")
def get_class_include_qualifiers(ctx):
    with_qualifiers = ctx.conn.GetClass(
        "CIM_ObjectManager", namespace=INTEROP, LocalOnly=False, IncludeQualifiers=True
    )
    expect(
        "Description" in with_qualifiers.qualifiers,
        f"IncludeQualifiers=True lacks the Description qualifier: "
        f"{sorted(with_qualifiers.qualifiers)}",
    )
    key = with_qualifiers.properties["Name"].qualifiers.get("Key")
    expect(key is not None and key.value is True, "property Name lacks its Key qualifier")
    without = ctx.conn.GetClass(
        "CIM_ObjectManager", namespace=INTEROP, LocalOnly=False, IncludeQualifiers=False
    )
    expect(
        len(without.qualifiers) == 0,
        f"IncludeQualifiers=False still has class qualifiers {sorted(without.qualifiers)}",
    )
    with_property_qualifiers = [
        p.name for p in without.properties.values() if len(p.qualifiers) > 0
    ]
    expect(
        not with_property_qualifiers,
        f"IncludeQualifiers=False still has qualifiers on {with_property_qualifiers}",
    )


@check("classes")
def get_class_include_class_origin(ctx):
    with_origin = ctx.conn.GetClass(
        "CIM_ObjectManager", namespace=INTEROP, LocalOnly=False, IncludeClassOrigin=True
    )
    caption = with_origin.properties["Caption"]
    expect(
        caption.class_origin == "CIM_ManagedElement",
        f"Caption's class origin is {caption.class_origin}, expected CIM_ManagedElement",
    )
    own = with_origin.properties["GatherStatisticalData"]
    expect(
        own.class_origin == "CIM_ObjectManager",
        f"GatherStatisticalData's class origin is {own.class_origin}, expected CIM_ObjectManager",
    )
    missing = [p.name for p in with_origin.properties.values() if p.class_origin is None]
    expect(not missing, f"IncludeClassOrigin=True: no class origin on {missing}")
    without = ctx.conn.GetClass(
        "CIM_ObjectManager", namespace=INTEROP, LocalOnly=False, IncludeClassOrigin=False
    )
    present = [p.name for p in without.properties.values() if p.class_origin is not None]
    expect(not present, f"IncludeClassOrigin=False: class origin on {present}")


@check("classes")
def get_class_property_list(ctx):
    listed = ctx.conn.GetClass(
        "CIM_ObjectManager", namespace=INTEROP, LocalOnly=False, PropertyList=["Name", "Caption"]
    )
    expect(
        sorted(listed.properties) == ["Caption", "Name"],
        f"PropertyList=[Name, Caption] gave {sorted(listed.properties)}",
    )
    empty = ctx.conn.GetClass(
        "CIM_ObjectManager", namespace=INTEROP, LocalOnly=False, PropertyList=[]
    )
    expect(len(empty.properties) == 0, f"PropertyList=[] gave {sorted(empty.properties)}")
    expect(
        len(empty.methods) > 0,
        "PropertyList filters properties, not methods: the methods are gone",
    )


@check("classes")
def enumerate_classes_top_and_deep(ctx):
    top = ctx.conn.EnumerateClasses(namespace=INTEROP)
    top_names = [c.classname for c in top]
    expect("CIM_ManagedElement" in top_names, f"no CIM_ManagedElement among {top_names}")
    not_top = [c.classname for c in top if c.superclass is not None]
    expect(not not_top, f"without ClassName and DeepInheritance, subclasses came: {not_top}")
    deep = ctx.conn.EnumerateClasses(namespace=INTEROP, DeepInheritance=True)
    deep_names = [c.classname for c in deep]
    for name in ("CIM_ObjectManager", "CIM_RegisteredProfile", "CIM_IndicationFilter"):
        expect(name in deep_names, f"DeepInheritance=True lacks {name}")
    expect(set(top_names) < set(deep_names), "the top classes are not among the deep ones")


@check("classes")
def enumerate_classes_of_a_class(ctx):
    direct = ctx.conn.EnumerateClasses(namespace=INTEROP, ClassName="CIM_WBEMService")
    names = [c.classname for c in direct]
    expect(names == ["CIM_ObjectManager"], f"subclasses of CIM_WBEMService: {names}")
    children = ctx.conn.EnumerateClasses(namespace=INTEROP, ClassName="CIM_ManagedElement")
    wrong = [c.classname for c in children if c.superclass != "CIM_ManagedElement"]
    expect(not wrong, f"DeepInheritance=False returned grandchildren {wrong}")
    expect("CIM_ManagedElement" not in [c.classname for c in children], "the class itself came")
    deep = ctx.conn.EnumerateClasses(
        namespace=INTEROP, ClassName="CIM_ManagedElement", DeepInheritance=True
    )
    expect(
        "CIM_ObjectManager" in [c.classname for c in deep],
        "DeepInheritance=True under CIM_ManagedElement lacks CIM_ObjectManager",
    )


@check("classes")
def enumerate_class_names(ctx):
    top = ctx.conn.EnumerateClassNames(namespace=INTEROP)
    expect("CIM_ManagedElement" in top, f"no CIM_ManagedElement among {top}")
    expect("CIM_ObjectManager" not in top, "a subclass among the top class names")
    shallow = ctx.conn.EnumerateClassNames(namespace=INTEROP, ClassName="CIM_ManagedElement")
    expect("CIM_ObjectManager" not in shallow, "DeepInheritance=False gave a grandchild")
    deep = ctx.conn.EnumerateClassNames(
        namespace=INTEROP, ClassName="CIM_ManagedElement", DeepInheritance=True
    )
    for name in ("CIM_ObjectManager", "CIM_RegisteredProfile", "CIM_Namespace"):
        expect(name in deep, f"deep class names under CIM_ManagedElement lack {name}")
    classes = ctx.conn.EnumerateClasses(
        namespace=INTEROP, ClassName="CIM_ManagedElement", DeepInheritance=True
    )
    expect(
        names_of(deep) == names_of(c.classname for c in classes),
        "EnumerateClassNames and EnumerateClasses disagree",
    )
    everything = ctx.conn.EnumerateClassNames(namespace=CIMV2, DeepInheritance=True)
    expect("CIM_ComputerSystem" in everything, "root/cimv2 lacks CIM_ComputerSystem")


@check("classes")
def qualifiers(ctx):
    key = ctx.conn.GetQualifier("Key", namespace=INTEROP)
    expect(key.name == "Key", f"GetQualifier(Key) gave {key.name}")
    expect(key.type == "boolean", f"Key is declared {key.type}, expected boolean")
    expect(key.scopes.get("PROPERTY") is True, f"Key's scopes {dict(key.scopes)}")
    declarations = ctx.conn.EnumerateQualifiers(namespace=INTEROP)
    names = [q.name for q in declarations]
    for name in ("Key", "Description", "Abstract", "Association", "ValueMap"):
        expect(name in names, f"EnumerateQualifiers lacks {name}: {names}")
    expect_error(
        6, "GetQualifier of an undeclared qualifier",
        lambda: ctx.conn.GetQualifier("NoSuchQualifier", namespace=INTEROP),
    )


@check("classes")
def missing_class(ctx):
    expect_error(
        6, "GetClass of a missing class",
        lambda: ctx.conn.GetClass(MISSING_CLASS, namespace=INTEROP),
    )
    expect_error(
        5, "EnumerateClasses of a missing class",
        lambda: ctx.conn.EnumerateClasses(namespace=INTEROP, ClassName=MISSING_CLASS),
    )
    expect_error(
        5, "EnumerateClassNames of a missing class",
        lambda: ctx.conn.EnumerateClassNames(namespace=INTEROP, ClassName=MISSING_CLASS),
    )


@check("classes")
def missing_namespace(ctx):
    expect_error(
        3, "GetClass in a missing namespace",
        lambda: ctx.conn.GetClass("CIM_ManagedElement", namespace=MISSING_NAMESPACE),
    )
    expect_error(
        3, "EnumerateClassNames in a missing namespace",
        lambda: ctx.conn.EnumerateClassNames(namespace=MISSING_NAMESPACE),
    )
    expect_error(
        3, "EnumerateQualifiers in a missing namespace",
        lambda: ctx.conn.EnumerateQualifiers(namespace=MISSING_NAMESPACE),
    )
    expect_error(
        3, "GetQualifier in a missing namespace",
        lambda: ctx.conn.GetQualifier("Key", namespace=MISSING_NAMESPACE),
    )


@check("classes")
def schema_is_read_only(ctx):
    new_class = CIMClass("CIMGUARD_TestClass", superclass="CIM_ManagedElement")
    expect_error(7, "CreateClass", lambda: ctx.conn.CreateClass(new_class, namespace=INTEROP))
    existing = ctx.conn.GetClass("CIM_Namespace", namespace=INTEROP, LocalOnly=False)
    expect_error(7, "ModifyClass", lambda: ctx.conn.ModifyClass(existing, namespace=INTEROP))
    expect_error(
        7, "DeleteClass", lambda: ctx.conn.DeleteClass("CIM_Namespace", namespace=INTEROP)
    )
    declaration = CIMQualifierDeclaration(
        "CimguardTest", "string", scopes={"CLASS": True}, overridable=True, tosubclass=True
    )
    expect_error(
        7, "SetQualifier", lambda: ctx.conn.SetQualifier(declaration, namespace=INTEROP)
    )
    expect_error(
        7, "DeleteQualifier",
        lambda: ctx.conn.DeleteQualifier("Description", namespace=INTEROP),
    )
    # A refused change leaves the schema as it was.
    ctx.conn.GetClass("CIM_Namespace", namespace=INTEROP)
    ctx.conn.GetQualifier("Description", namespace=INTEROP)
    expect_error(
        6, "GetClass of the class CreateClass was refused",
        lambda: ctx.conn.GetClass("CIMGUARD_TestClass", namespace=INTEROP),
    )


# --- instances -----------------------------------------------------------------------------

INTEROP_CLASSES = (
    "CIM_ObjectManager",
    "CIM_Namespace",
    "CIM_RegisteredProfile",
    "CIM_ObjectManagerCommunicationMechanism",
)


@check("instances")
def object_manager(ctx):
    for namespace in (INTEROP, INTEROP_ALIAS):
        instances = ctx.conn.EnumerateInstances("CIM_ObjectManager", namespace=namespace)
        expect(len(instances) == 1, f"{namespace}: {len(instances)} CIM_ObjectManager instances")
        manager = instances[0]
        expect(
            manager.get("ElementName") == "cimguard",
            f"{namespace}: ElementName {manager.get('ElementName')!r}",
        )
        keys = sorted(k.lower() for k in manager.path.keybindings)
        expect(
            keys == ["creationclassname", "name", "systemcreationclassname", "systemname"],
            f"{namespace}: CIM_ObjectManager keys {keys}",
        )
        expect(manager.classname == "CIM_ObjectManager", f"classname {manager.classname}")


@check("instances")
def namespaces(ctx):
    """One CIM_Namespace per namespace: the interop namespace's named as the request named
    it, in its property and in its path, so that a client listing the namespaces through
    either name finds each once; a path naming it by the other name finds it too."""
    for spelling in (INTEROP, INTEROP_ALIAS):
        instances = ctx.conn.EnumerateInstances("CIM_Namespace", namespace=spelling)
        names = sorted(i["Name"] for i in instances)
        expect(names == sorted([CIMV2, spelling]), f"CIM_Namespace through {spelling}: {names}")
        keys = sorted(i.path["Name"] for i in instances)
        expect(keys == names, f"CIM_Namespace paths through {spelling}: {keys}")
    other = next(p for p in all_paths(ctx, "CIM_Namespace") if p["Name"] == INTEROP)
    other["Name"] = INTEROP_ALIAS
    got = ctx.conn.GetInstance(other)
    expect(got["Name"] == INTEROP, f"GetInstance of Name={INTEROP_ALIAS} gave {got['Name']}")
    # A query or a pull filter compares the Name as the response shows it.
    for spelling in (INTEROP, INTEROP_ALIAS):
        found = ctx.conn.ExecQuery(
            "WQL", f"SELECT Name FROM CIM_Namespace WHERE Name = '{spelling}'", spelling)
        expect([i["Name"] for i in found] == [spelling],
               f"ExecQuery of Name = '{spelling}' through {spelling}: {short(found)}")
        pulled = ctx.conn.OpenEnumerateInstances(
            "CIM_Namespace", namespace=spelling, FilterQueryLanguage="DMTF:FQL",
            FilterQuery=f"Name = '{spelling}'", MaxObjectCount=100)
        expect([i["Name"] for i in pulled.instances] == [spelling] and pulled.eos,
               f"FQL Name = '{spelling}' through {spelling}: {short(pulled.instances)}")
    # GetProperty (which pywbem has no method for) spells it as GetInstance does.
    for spelling in (INTEROP, INTEROP_ALIAS):
        path = other.copy()
        path.namespace = None
        answer = ctx.conn._imethodcall("GetProperty", spelling, InstanceName=path,
                                       PropertyName="Name")
        text = str(answer)
        expect(f"'{spelling}'" in text and (spelling == INTEROP or INTEROP not in text),
               f"GetProperty(Name) through {spelling} gave {text}")


@check("instances")
def registered_profiles(ctx):
    instances = ctx.conn.EnumerateInstances("CIM_RegisteredProfile", namespace=INTEROP)
    registration = [i for i in instances if i.get("RegisteredName") == "Profile Registration"]
    expect(len(registration) == 1, f"Profile Registration profiles: {short(registration)}")
    profile = registration[0]
    expect(profile["RegisteredOrganization"] == 2, "RegisteredOrganization is not 2 (DMTF)")
    expect(profile["RegisteredVersion"] == "1.0.0", f"version {profile['RegisteredVersion']}")


@check("instances")
def communication_mechanism(ctx):
    instances = ctx.conn.EnumerateInstances(
        "CIM_ObjectManagerCommunicationMechanism", namespace=INTEROP
    )
    expect(len(instances) == 1, f"{len(instances)} communication mechanisms")
    expect(instances[0]["CommunicationMechanism"] == 2, "CommunicationMechanism is not 2 (CIM-XML)")


@check("instances")
def names_and_get_agree(ctx):
    for namespace in (INTEROP, INTEROP_ALIAS):
        for class_name in INTEROP_CLASSES:
            instances = ctx.conn.EnumerateInstances(class_name, namespace=namespace)
            paths = ctx.conn.EnumerateInstanceNames(class_name, namespace=namespace)
            expect(
                len(paths) == len(instances) and len(paths) > 0,
                f"{namespace}:{class_name}: {len(paths)} names, {len(instances)} instances",
            )
            for instance in instances:
                expect(
                    contains_path(paths, instance.path),
                    f"{namespace}: {local(instance.path)} is not among the instance names",
                )
            for path in paths:
                got = ctx.conn.GetInstance(path)
                expect(
                    got.classname.lower() == path.classname.lower(),
                    f"GetInstance({local(path)}) gave a {got.classname}",
                )
                for key, value in path.keybindings.items():
                    expect(
                        got.get(key) == value,
                        f"GetInstance({local(path)}): {key} is {got.get(key)!r}",
                    )


@check("instances")
def deep_inheritance(ctx):
    everything = ctx.conn.EnumerateInstances("CIM_ManagedElement", namespace=INTEROP)
    classes = {i.classname for i in everything}
    for class_name in INTEROP_CLASSES:
        expect(class_name in classes, f"CIM_ManagedElement's instances lack a {class_name}")
    names = ctx.conn.EnumerateInstanceNames("CIM_WBEMService", namespace=INTEROP)
    expect(
        contains_path(names, ctx.object_manager_path()),
        f"CIM_WBEMService's instance names lack the object manager: {short(names)}",
    )
    deep = ctx.conn.EnumerateInstances("CIM_WBEMService", namespace=INTEROP, DeepInheritance=True)
    shallow = ctx.conn.EnumerateInstances(
        "CIM_WBEMService", namespace=INTEROP, DeepInheritance=False
    )
    expect(len(deep) == 1 and len(shallow) == 1, f"{len(deep)} deep, {len(shallow)} shallow")
    expect(
        "GatherStatisticalData" in deep[0].properties,
        "DeepInheritance=True lacks the subclass's GatherStatisticalData",
    )
    expect(
        "GatherStatisticalData" not in shallow[0].properties,
        "DeepInheritance=False keeps the subclass's GatherStatisticalData",
    )
    expect(
        shallow[0].classname == "CIM_ObjectManager",
        f"DeepInheritance=False changed the class to {shallow[0].classname}",
    )


@check("instances")
def property_list(ctx):
    listed = ctx.conn.EnumerateInstances(
        "CIM_ObjectManager", namespace=INTEROP, PropertyList=["Name", "ElementName"]
    )[0]
    expect(
        sorted(listed.properties) == ["ElementName", "Name"],
        f"PropertyList=[Name, ElementName] gave {sorted(listed.properties)}",
    )
    expect(len(listed.path.keybindings) == 4, "PropertyList must not shorten the path's keys")
    empty = ctx.conn.EnumerateInstances("CIM_ObjectManager", namespace=INTEROP, PropertyList=[])
    expect(len(empty[0].properties) == 0, f"PropertyList=[] gave {sorted(empty[0].properties)}")
    got = ctx.conn.GetInstance(ctx.object_manager_path(), PropertyList=["ElementName"])
    expect(sorted(got.properties) == ["ElementName"], f"GetInstance: {sorted(got.properties)}")


@check("instances")
def include_class_origin(ctx):
    declared = ctx.conn.GetClass(
        "CIM_ObjectManager", namespace=INTEROP, LocalOnly=False, IncludeClassOrigin=True
    )
    for instance in (
        ctx.conn.EnumerateInstances(
            "CIM_ObjectManager", namespace=INTEROP, IncludeClassOrigin=True
        )[0],
        ctx.conn.GetInstance(ctx.object_manager_path(), IncludeClassOrigin=True),
    ):
        for prop in instance.properties.values():
            origin = declared.properties[prop.name].class_origin
            expect(
                prop.class_origin == origin,
                f"{prop.name}: class origin {prop.class_origin}, the class says {origin}",
            )
    plain = ctx.conn.GetInstance(ctx.object_manager_path())
    present = [p.name for p in plain.properties.values() if p.class_origin is not None]
    expect(not present, f"IncludeClassOrigin defaults to false, yet origins on {present}")


@check("instances")
def instance_errors(ctx):
    missing = ctx.object_manager_path()
    missing.keybindings["Name"] = "no such object manager"
    expect_error(6, "GetInstance of a missing instance", lambda: ctx.conn.GetInstance(missing))
    partial = CIMInstanceName("CIM_ObjectManager", namespace=INTEROP, keybindings={
        "Name": ctx.object_manager_path().keybindings["Name"]})
    # A name without all its keys names no instance: the request is wrong (4), not the object
    # gone (6), as with a property that is not a key among the keys.
    error = expect_error(4, "GetInstance with one key of four",
                         lambda: ctx.conn.GetInstance(partial))
    expect("lacks the keys" in error.status_description
           and "SystemName" in error.status_description,
           f"the error does not name the missing keys: {error.status_description}")
    keyless = CIMInstanceName("CIM_ObjectManager", namespace=INTEROP)
    expect_error(4, "GetInstance with none of the keys",
                 lambda: ctx.conn.GetInstance(keyless))
    extra = ctx.object_manager_path()
    extra.keybindings["ElementName"] = "cmwbemd"
    error = expect_error(4, "GetInstance with a property that is not a key among the keys",
                         lambda: ctx.conn.GetInstance(extra))
    expect("ElementName" in error.status_description,
           f"the error does not name the property: {error.status_description}")
    expect_error(
        5, "EnumerateInstances of a missing class",
        lambda: ctx.conn.EnumerateInstances(MISSING_CLASS, namespace=INTEROP),
    )
    expect_error(
        5, "EnumerateInstanceNames of a missing class",
        lambda: ctx.conn.EnumerateInstanceNames(MISSING_CLASS, namespace=INTEROP),
    )
    unknown_class = CIMInstanceName(MISSING_CLASS, keybindings={"Name": "x"}, namespace=INTEROP)
    expect_error(
        5, "GetInstance of a missing class", lambda: ctx.conn.GetInstance(unknown_class)
    )
    bad_key = ctx.object_manager_path()
    bad_key.keybindings["NoSuchKey"] = "x"
    expect_error(4, "GetInstance with a bad key name", lambda: ctx.conn.GetInstance(bad_key))
    expect_error(
        3, "EnumerateInstances in a missing namespace",
        lambda: ctx.conn.EnumerateInstances("CIM_Namespace", namespace=MISSING_NAMESPACE),
    )


# --- associations --------------------------------------------------------------------------

CONFORMS = "CIM_ElementConformsToProfile"


@check("associations")
def manager_to_profile(ctx):
    manager = ctx.object_manager_path()
    profile = ctx.profile_path()
    variants = [
        {},
        {"AssocClass": CONFORMS},
        {"ResultClass": "CIM_RegisteredProfile"},
        {"Role": "ManagedElement"},
        {"ResultRole": "ConformantStandard"},
        {
            "AssocClass": CONFORMS,
            "ResultClass": "CIM_RegisteredProfile",
            "Role": "ManagedElement",
            "ResultRole": "ConformantStandard",
        },
    ]
    for filters in variants:
        names = ctx.conn.AssociatorNames(manager, **filters)
        expect(
            contains_path(names, profile),
            f"AssociatorNames(object manager, {filters}) lacks the profile: {short(names)}",
        )
        for name in names:
            expect(
                name.namespace == INTEROP,
                f"AssociatorNames gave {name} without the namespace {INTEROP}",
            )
        instances = ctx.conn.Associators(manager, **filters)
        expect(
            any(i.get("RegisteredName") == "Profile Registration" for i in instances),
            f"Associators(object manager, {filters}) lacks the profile: {short(instances)}",
        )


@check("associations")
def profile_to_manager(ctx):
    manager = ctx.object_manager_path()
    profile = ctx.profile_path()
    for filters in (
        {},
        {"AssocClass": CONFORMS, "ResultRole": "ManagedElement"},
        {"Role": "ConformantStandard", "ResultClass": "CIM_ObjectManager"},
        {"ResultClass": "CIM_WBEMService"},
    ):
        names = ctx.conn.AssociatorNames(profile, **filters)
        expect(
            contains_path(names, manager),
            f"AssociatorNames(profile, {filters}) lacks the object manager: {short(names)}",
        )
        instances = ctx.conn.Associators(profile, **filters)
        expect(
            any(i.classname == "CIM_ObjectManager" for i in instances),
            f"Associators(profile, {filters}) lacks the object manager",
        )


@check("associations")
def references(ctx):
    manager = ctx.object_manager_path()
    profile = ctx.profile_path()
    for target, role, other_role, other in (
        (manager, "ManagedElement", "ConformantStandard", profile),
        (profile, "ConformantStandard", "ManagedElement", manager),
    ):
        for filters in ({}, {"ResultClass": CONFORMS}, {"Role": role}):
            names = ctx.conn.ReferenceNames(target, **filters)
            links = [n for n in names if n.classname == CONFORMS]
            expect(links, f"ReferenceNames({local(target)}, {filters}) gave {short(names)}")
            instances = ctx.conn.References(target, **filters)
            pointing = [
                i for i in instances
                if i.classname == CONFORMS and same_path(i[other_role], other)
            ]
            expect(
                pointing,
                f"References({local(target)}, {filters}): no {CONFORMS} whose {other_role} "
                f"is {local(other)}: {short(instances)}",
            )
            for instance in pointing:
                expect(
                    contains_path(names, instance.path),
                    f"References and ReferenceNames disagree on {local(instance.path)}",
                )


@check("associations")
def filters_that_exclude_everything(ctx):
    manager = ctx.object_manager_path()
    for filters in (
        {"AssocClass": "CIM_ReferencedProfile"},
        {"ResultClass": "CIM_Namespace"},
        {"Role": "ConformantStandard"},
        {"ResultRole": "ManagedElement"},
    ):
        names = ctx.conn.AssociatorNames(manager, **filters)
        expect(not names, f"AssociatorNames(object manager, {filters}) gave {short(names)}")
        instances = ctx.conn.Associators(manager, **filters)
        expect(not instances, f"Associators(object manager, {filters}) gave {short(instances)}")
    for filters in ({"ResultClass": "CIM_ReferencedProfile"}, {"Role": "ConformantStandard"}):
        names = ctx.conn.ReferenceNames(manager, **filters)
        expect(not names, f"ReferenceNames(object manager, {filters}) gave {short(names)}")
        instances = ctx.conn.References(manager, **filters)
        expect(not instances, f"References(object manager, {filters}) gave {short(instances)}")


def respelt(path, namespace):
    """A copy of instance path `path` whose references among its keys name `namespace`."""
    copy = path.copy()
    for key, value in copy.keybindings.items():
        if isinstance(value, CIMInstanceName):
            inner = value.copy()
            inner.namespace = namespace
            copy.keybindings[key] = inner
    return copy


@check("associations")
def association_paths_get_back(ctx):
    """Every association instance's own path, as the server gave it, gets it back, through
    `root/interop` and through `interop`, and with its references spelt either way."""
    for namespace in (INTEROP, INTEROP_ALIAS):
        for class_name in (CONFORMS, "CIM_ReferencedProfile", "CIM_ElementCapabilities"):
            paths = ctx.conn.EnumerateInstanceNames(class_name, namespace=namespace)
            expect(paths, f"{namespace}: no {class_name} instances")
            for path in paths:
                for spelling in (None, INTEROP, INTEROP_ALIAS, "ROOT/INTEROP"):
                    wanted = path if spelling is None else respelt(path, spelling)
                    try:
                        got = ctx.conn.GetInstance(wanted)
                    except pywbem.CIMError as error:
                        raise Failure(f"{namespace}: GetInstance({wanted}): {error}") from None
                    expect(got.classname.lower() == class_name.lower(),
                           f"GetInstance({wanted}) gave a {got.classname}")
        profile = ctx.profile_path().copy()
        profile.namespace = namespace
        for path in ctx.conn.ReferenceNames(profile, ResultClass=CONFORMS):
            try:
                ctx.conn.GetInstance(path)
            except pywbem.CIMError as error:
                raise Failure(f"{namespace}: GetInstance of ReferenceNames' {path}: "
                              f"{error}") from None


@check("associations")
def class_level(ctx):
    profile_class = CIMClassName("CIM_RegisteredProfile", namespace=INTEROP)
    names = ctx.conn.AssociatorNames(profile_class, AssocClass=CONFORMS)
    classes = [n.classname for n in names]
    expect(
        "CIM_ManagedElement" in classes,
        f"class AssociatorNames(CIM_RegisteredProfile) via {CONFORMS} gave {classes}",
    )
    expect(
        all(isinstance(n, CIMClassName) for n in names),
        f"class-level AssociatorNames gave non-class paths: {short(names)}",
    )
    associated = ctx.conn.Associators(profile_class, AssocClass=CONFORMS)
    expect(
        any(c.classname == "CIM_ManagedElement" for _, c in associated),
        f"class Associators(CIM_RegisteredProfile) gave {short(associated)}",
    )
    references = ctx.conn.ReferenceNames(profile_class)
    expect(
        CONFORMS in [n.classname for n in references],
        f"class ReferenceNames(CIM_RegisteredProfile) gave {short(references)}",
    )
    manager_class = CIMClassName("CIM_ObjectManager", namespace=INTEROP)
    names = ctx.conn.AssociatorNames(manager_class, AssocClass=CONFORMS)
    expect(
        "CIM_RegisteredProfile" in [n.classname for n in names],
        f"class AssociatorNames(CIM_ObjectManager) via {CONFORMS} gave {short(names)}: "
        "a subclass of the referenced CIM_ManagedElement takes part in the association",
    )
    nothing = ctx.conn.AssociatorNames(profile_class, AssocClass="CIM_ReferencedProfile",
                                       ResultClass="CIM_Namespace")
    expect(not nothing, f"class AssociatorNames that excludes everything gave {short(nothing)}")


@check("associations")
def association_errors(ctx):
    manager = ctx.object_manager_path()
    expect_error(
        4, "Associators with an AssocClass that is not a class",
        lambda: ctx.conn.AssociatorNames(manager, AssocClass=MISSING_CLASS),
    )
    expect_error(
        4, "Associators with an AssocClass that is not an association",
        lambda: ctx.conn.AssociatorNames(manager, AssocClass="CIM_Namespace"),
    )
    expect_error(
        4, "Associators (the instances) with an AssocClass that is not an association",
        lambda: ctx.conn.Associators(manager, AssocClass="CIM_ObjectManager"),
    )
    expect_error(
        4, "References with a ResultClass that is not a class",
        lambda: ctx.conn.ReferenceNames(manager, ResultClass=MISSING_CLASS),
    )
    elsewhere = manager.copy()
    elsewhere.namespace = MISSING_NAMESPACE
    expect_error(
        3, "AssociatorNames in a missing namespace",
        lambda: ctx.conn.AssociatorNames(elsewhere),
    )
    # An ObjectName of a class that does not exist: DSP0200 lists no INVALID_CLASS here.
    nothing = manager.copy()
    nothing.classname = MISSING_CLASS
    for name, call in (("Associators", ctx.conn.Associators),
                       ("AssociatorNames", ctx.conn.AssociatorNames),
                       ("References", ctx.conn.References),
                       ("ReferenceNames", ctx.conn.ReferenceNames)):
        expect_error(4, f"{name} of an instance of a class that does not exist",
                     lambda call=call: call(nothing))
    expect_error(4, "OpenAssociatorInstances of an instance of a class that does not exist",
                 lambda: ctx.conn.OpenAssociatorInstances(nothing))
    expect_error(4, "class-level ReferenceNames of a class that does not exist",
                 lambda: ctx.conn.ReferenceNames(CIMClassName(MISSING_CLASS, namespace=INTEROP)))


@check("class_result_class")
def class_associators_result_class(ctx):
    """DSP0200: each class returned by a class-level Associators MUST be ResultClass or one of
    its subclasses."""
    manager_class = CIMClassName("CIM_ObjectManager", namespace=INTEROP)
    for result_class in ("CIM_ObjectManager", "CIM_RegisteredProfile"):
        names = ctx.conn.AssociatorNames(manager_class, ResultClass=result_class)
        subclasses = {result_class.lower()} | {
            n.lower() for n in ctx.conn.EnumerateClassNames(
                namespace=INTEROP, ClassName=result_class, DeepInheritance=True)
        }
        outside = [n.classname for n in names if n.classname.lower() not in subclasses]
        expect(
            not outside,
            f"class AssociatorNames(CIM_ObjectManager, ResultClass={result_class}) gave "
            f"{outside}, which are not {result_class} or its subclasses",
        )
        classes = ctx.conn.Associators(manager_class, ResultClass=result_class)
        outside = [c.classname for _, c in classes if c.classname.lower() not in subclasses]
        expect(not outside, f"class Associators(ResultClass={result_class}) gave {outside}")


@check("reference_keys")
def reference_keys_relative(ctx):
    """An association's instance name whose reference keys leave out the namespace (meaning:
    this namespace), or name a host (as sblim wbemcli writes them, with the host it was given),
    names the same instance."""
    names = ctx.conn.EnumerateInstanceNames(CONFORMS, namespace=INTEROP)
    expect(names, f"no {CONFORMS} instances")
    ctx.conn.GetInstance(names[0])
    for host, drop_namespace in ((None, True), ("127.0.0.1", False), ("localhost", True)):
        relative = names[0].copy()
        for key, value in list(relative.keybindings.items()):
            value = value.copy()
            value.host = host
            if drop_namespace:
                value.namespace = None
            relative.keybindings[key] = value
        what = f"host {host}" + (" and no namespace" if drop_namespace else "")
        try:
            got = ctx.conn.GetInstance(relative)
        except CIMError as error:
            raise Failure(
                f"GetInstance of {CONFORMS} with the reference keys' {what} left out: "
                f"{error.status_code} ({error.status_code_name}): {error.status_description}"
            ) from None
        expect(got.classname == CONFORMS, f"got a {got.classname}")


@check("reference_keys")
def reference_values_are_local(ctx):
    """References to this server's objects, in reference properties and in reference keys,
    name their namespace and no host (as SFCB and pywbem's mock server write them), so a client
    matches them with the paths AssociatorNames gives without host: pywbemcli `instance shrub`
    does exactly that."""
    manager = ctx.object_manager_path()
    instances = ctx.conn.EnumerateInstances(CONFORMS, namespace=INTEROP)
    expect(instances, f"no {CONFORMS} instances")
    for instance in instances:
        for holder, where in ((instance, "property"), (instance.path.keybindings, "key")):
            for role in ("ConformantStandard", "ManagedElement"):
                value = holder[role]
                expect(
                    value.host is None and value.namespace is not None,
                    f"{CONFORMS} {where} {role} is {value!r}: expected a namespace and no host",
                )
    profiles = ctx.conn.AssociatorNames(
        manager, AssocClass=CONFORMS, ResultRole="ConformantStandard"
    )
    expect(profiles, "the object manager conforms to no profile")
    for name in profiles:
        bare = name.copy()
        bare.host = None
        expect(
            any(i["ConformantStandard"] == bare for i in instances),
            f"no {CONFORMS} has ConformantStandard equal to {bare}, as AssociatorNames named it",
        )


# --- pull ----------------------------------------------------------------------------------


def all_paths(ctx, class_name):
    return ctx.conn.EnumerateInstanceNames(class_name, namespace=INTEROP)


@check("pull")
def open_enumerate_instances_in_steps(ctx):
    expected = all_paths(ctx, "CIM_Namespace")
    expect(len(expected) >= 2, f"expected two namespaces at least, found {len(expected)}")
    result = ctx.conn.OpenEnumerateInstances(
        "CIM_Namespace", namespace=INTEROP, MaxObjectCount=0
    )
    expect(len(result.instances) == 0, f"MaxObjectCount=0 gave {len(result.instances)}")
    expect(not result.eos and result.context is not None, "MaxObjectCount=0 ended the sequence")
    got = []
    one = ctx.conn.PullInstancesWithPath(result.context, MaxObjectCount=1)
    expect(len(one.instances) == 1, f"Pull MaxObjectCount=1 gave {len(one.instances)}")
    got += one.instances
    rest = ctx.conn.PullInstancesWithPath(one.context, MaxObjectCount=1000)
    expect(rest.eos and rest.context is None, "a large Pull did not end the sequence")
    got += rest.instances
    expect(
        len(got) == len(expected) and all(contains_path(expected, i.path) for i in got),
        f"pulled {[local(i.path) for i in got]}, enumerated {[local(p) for p in expected]}",
    )
    for instance in got:
        expect(instance.path.namespace == INTEROP, f"{instance.path} lacks its namespace")
    expect_error(
        21, "Pull after the end of the sequence",
        lambda: ctx.conn.PullInstancesWithPath(one.context, MaxObjectCount=1),
    )


@check("pull")
def open_enumerate_instances_at_once(ctx):
    expected = all_paths(ctx, "CIM_Namespace")
    result = ctx.conn.OpenEnumerateInstances(
        "CIM_Namespace", namespace=INTEROP, MaxObjectCount=1000
    )
    expect(result.eos and result.context is None, "MaxObjectCount=1000 did not end at once")
    expect(len(result.instances) == len(expected), f"{len(result.instances)} instances")
    listed = ctx.conn.OpenEnumerateInstances(
        "CIM_ObjectManager", namespace=INTEROP, MaxObjectCount=10, PropertyList=["ElementName"],
        IncludeClassOrigin=True,
    )
    manager = listed.instances[0]
    expect(sorted(manager.properties) == ["ElementName"], f"{sorted(manager.properties)}")
    expect(
        manager.properties["ElementName"].class_origin is not None,
        "IncludeClassOrigin=True gave no class origin",
    )
    deep = ctx.conn.OpenEnumerateInstances(
        "CIM_ManagedElement", namespace=INTEROP, MaxObjectCount=1000
    )
    expect(
        {"CIM_ObjectManager", "CIM_Namespace"} <= {i.classname for i in deep.instances},
        "OpenEnumerateInstances(CIM_ManagedElement) lacks subclasses' instances",
    )


@check("pull")
def open_enumerate_instance_paths(ctx):
    expected = all_paths(ctx, "CIM_Namespace")
    result = ctx.conn.OpenEnumerateInstancePaths(
        "CIM_Namespace", namespace=INTEROP, MaxObjectCount=1
    )
    expect(len(result.paths) == 1 and not result.eos, "MaxObjectCount=1 gave no single path")
    zero = ctx.conn.PullInstancePaths(result.context, MaxObjectCount=0)
    expect(len(zero.paths) == 0 and not zero.eos, "PullInstancePaths(0) was not empty and open")
    rest = ctx.conn.PullInstancePaths(zero.context, MaxObjectCount=1000)
    expect(rest.eos, "PullInstancePaths(1000) did not end")
    paths = result.paths + rest.paths
    expect(
        len(paths) == len(expected) and all(contains_path(expected, p) for p in paths),
        f"paths {[local(p) for p in paths]}",
    )


@check("pull")
def close_enumeration(ctx):
    result = ctx.conn.OpenEnumerateInstancePaths(
        "CIM_Namespace", namespace=INTEROP, MaxObjectCount=1
    )
    expect(result.context is not None, "no context to close")
    ctx.conn.CloseEnumeration(result.context)
    expect_error(
        21, "PullInstancePaths on a closed context",
        lambda: ctx.conn.PullInstancePaths(result.context, MaxObjectCount=1),
    )
    expect_error(
        21, "CloseEnumeration of a closed context",
        lambda: ctx.conn.CloseEnumeration(result.context),
    )


@check("pull")
def associator_and_reference_pulls(ctx):
    manager = ctx.object_manager_path()
    profile = ctx.profile_path()
    opened = ctx.conn.OpenAssociatorInstances(manager, AssocClass=CONFORMS, MaxObjectCount=0)
    expect(not opened.eos and not opened.instances, "MaxObjectCount=0 was not empty and open")
    pulled = ctx.conn.PullInstancesWithPath(opened.context, MaxObjectCount=100)
    expect(pulled.eos, "the associator pull did not end")
    expect(
        any(same_path(i.path, profile) for i in pulled.instances),
        f"OpenAssociatorInstances lacks the profile: {short(pulled.instances)}",
    )
    paths = ctx.conn.OpenAssociatorInstancePaths(
        manager, ResultClass="CIM_RegisteredProfile", ResultRole="ConformantStandard",
        MaxObjectCount=100,
    )
    expect(paths.eos and contains_path(paths.paths, profile), f"{short(paths.paths)}")
    none = ctx.conn.OpenAssociatorInstancePaths(
        manager, ResultClass="CIM_Namespace", MaxObjectCount=100
    )
    expect(none.eos and not none.paths, f"a filter that excludes all gave {short(none.paths)}")
    back = ctx.conn.OpenAssociatorInstances(profile, ResultRole="ManagedElement", MaxObjectCount=1)
    found = list(back.instances)
    if not back.eos:
        found += ctx.conn.PullInstancesWithPath(back.context, MaxObjectCount=100).instances
    expect(any(same_path(i.path, manager) for i in found), "profile to manager: not found")
    references = ctx.conn.OpenReferenceInstances(manager, Role="ManagedElement", MaxObjectCount=1)
    expect(
        references.instances and references.instances[0].classname == CONFORMS,
        f"OpenReferenceInstances gave {short(references.instances)}",
    )
    if not references.eos:
        ctx.conn.CloseEnumeration(references.context)
    reference_paths = ctx.conn.OpenReferenceInstancePaths(
        profile, ResultClass=CONFORMS, MaxObjectCount=0
    )
    expect(not reference_paths.eos, "OpenReferenceInstancePaths(0) ended")
    rest = ctx.conn.PullInstancePaths(reference_paths.context, MaxObjectCount=10)
    expect(rest.eos and rest.paths and all(p.classname == CONFORMS for p in rest.paths),
           f"reference paths {short(rest.paths)}")


@check("pull")
def iter_operations(ctx):
    conn = ctx.pull_conn
    manager = ctx.object_manager_path()
    profile = ctx.profile_path()
    expected = all_paths(ctx, "CIM_Namespace")
    instances = list(conn.IterEnumerateInstances("CIM_Namespace", namespace=INTEROP,
                                                 MaxObjectCount=1))
    expect(len(instances) == len(expected), f"IterEnumerateInstances: {len(instances)}")
    paths = list(conn.IterEnumerateInstancePaths("CIM_Namespace", namespace=INTEROP,
                                                 MaxObjectCount=2))
    expect(all(contains_path(expected, p) for p in paths) and len(paths) == len(expected),
           f"IterEnumerateInstancePaths: {short(paths)}")
    associated = list(conn.IterAssociatorInstances(manager, AssocClass=CONFORMS,
                                                   MaxObjectCount=1))
    expect(any(same_path(i.path, profile) for i in associated), "IterAssociatorInstances")
    associated_paths = list(conn.IterAssociatorInstancePaths(profile, MaxObjectCount=1))
    expect(contains_path(associated_paths, manager), "IterAssociatorInstancePaths")
    referencing = list(conn.IterReferenceInstances(manager, MaxObjectCount=1))
    expect(any(i.classname == CONFORMS for i in referencing), "IterReferenceInstances")
    referencing_paths = list(conn.IterReferenceInstancePaths(profile, MaxObjectCount=1))
    expect(any(p.classname == CONFORMS for p in referencing_paths),
           "IterReferenceInstancePaths")
    expect(conn.use_pull_operations is True, "pywbem fell back to the traditional operations")


@check("pull")
def unknown_context(ctx):
    bogus = ("no-such-context", INTEROP)
    expect_error(21, "PullInstancesWithPath on an unknown context",
                 lambda: ctx.conn.PullInstancesWithPath(bogus, MaxObjectCount=1))
    expect_error(21, "PullInstancePaths on an unknown context",
                 lambda: ctx.conn.PullInstancePaths(bogus, MaxObjectCount=1))
    expect_error(21, "CloseEnumeration of an unknown context",
                 lambda: ctx.conn.CloseEnumeration(bogus))


@check("pull")
def mismatched_pull_closes_the_context(ctx):
    opened = ctx.conn.OpenEnumerateInstancePaths(
        "CIM_Namespace", namespace=INTEROP, MaxObjectCount=0
    )
    expect_error(21, "PullInstancesWithPath on a context of OpenEnumerateInstancePaths",
                 lambda: ctx.conn.PullInstancesWithPath(opened.context, MaxObjectCount=1))
    expect_error(21, "PullInstancePaths after a mismatched Pull closed the context",
                 lambda: ctx.conn.PullInstancePaths(opened.context, MaxObjectCount=1))


@check("pull")
def context_of_another_namespace(ctx):
    opened = ctx.conn.OpenEnumerateInstancePaths(
        "CIM_Namespace", namespace=INTEROP, MaxObjectCount=0
    )
    moved = (opened.context[0], CIMV2)
    expect_error(21, "PullInstancePaths naming another namespace than the Open",
                 lambda: ctx.conn.PullInstancePaths(moved, MaxObjectCount=1))
    # The context itself is untouched by the misdirected Pull.
    rest = ctx.conn.PullInstancePaths(opened.context, MaxObjectCount=1000)
    expect(rest.eos and rest.paths, "the context did not survive a misdirected Pull")


@check("pull")
def expired_context(ctx):
    opened = ctx.conn.OpenEnumerateInstancePaths(
        "CIM_Namespace", namespace=INTEROP, MaxObjectCount=0, OperationTimeout=1
    )
    expect(opened.context is not None, "no context opened")
    # Every successful Pull restarts the inactivity timer, so each try waits longer than
    # the timeout before it pulls.
    deadline = time.monotonic() + EXPIRY_DEADLINE
    context = opened.context
    while True:
        time.sleep(1.5)
        try:
            result = ctx.conn.PullInstancePaths(context, MaxObjectCount=0)
        except CIMError as error:
            expect(
                error.status_code == 21,
                f"an expired context gave {error.status_code} ({error.status_code_name}): "
                f"{error.status_description}",
            )
            return
        context = result.context
        expect(
            time.monotonic() < deadline,
            f"a context opened with OperationTimeout=1 was still open after "
            f"{EXPIRY_DEADLINE} s of 1.5 s pauses",
        )


@check("pull")
def open_errors(ctx):
    expect_error(22, "OperationTimeout above the server's maximum",
                 lambda: ctx.conn.OpenEnumerateInstances(
                     "CIM_Namespace", namespace=INTEROP, OperationTimeout=100000))
    expect_error(22, "OperationTimeout 0 (a context that never expires)",
                 lambda: ctx.conn.OpenEnumerateInstances(
                     "CIM_Namespace", namespace=INTEROP, OperationTimeout=0))
    expect_error(26, "ContinueOnError=True",
                 lambda: ctx.conn.OpenEnumerateInstances(
                     "CIM_Namespace", namespace=INTEROP, ContinueOnError=True))
    expect_error(5, "OpenEnumerateInstances of a missing class",
                 lambda: ctx.conn.OpenEnumerateInstances(MISSING_CLASS, namespace=INTEROP))
    expect_error(3, "OpenEnumerateInstancePaths in a missing namespace",
                 lambda: ctx.conn.OpenEnumerateInstancePaths(
                     "CIM_Namespace", namespace=MISSING_NAMESPACE))


@check("pull_limits")
def open_contexts_per_principal(ctx):
    """Run against an agent started with --open-contexts-per-principal-max 2."""

    def open_one():
        result = ctx.conn.OpenEnumerateInstancePaths(
            "CIM_Namespace", namespace=INTEROP, MaxObjectCount=0
        )
        expect(result.context is not None, "MaxObjectCount=0 opened no context")
        return result.context

    first = open_one()
    second = open_one()
    expect_error(27, "a third open context for one principal", open_one)
    ctx.conn.CloseEnumeration(first)
    third = open_one()
    expect_error(27, "a third open context after one was closed and another opened", open_one)
    # A sequence pulled to its end frees its context.
    rest = ctx.conn.PullInstancePaths(second, MaxObjectCount=1000)
    expect(rest.eos, "the pull did not end")
    fourth = open_one()
    for context in (third, fourth):
        ctx.conn.CloseEnumeration(context)
    # Enumerations that end in their Open hold no context.
    for _ in range(3):
        done = ctx.conn.OpenEnumerateInstancePaths(
            "CIM_Namespace", namespace=INTEROP, MaxObjectCount=1000
        )
        expect(done.eos, "a complete Open left a context")
    for context in (open_one(), open_one()):
        ctx.conn.CloseEnumeration(context)


# --- queries -------------------------------------------------------------------------------

PROFILE_QUERY = "SELECT * FROM CIM_RegisteredProfile WHERE RegisteredName = 'Profile Registration'"
NAMESPACE_QUERY = "SELECT Name FROM CIM_Namespace WHERE Name LIKE 'root%'"
PROFILE_FILTER = "RegisteredName = 'Profile Registration'"


def expect_profile_registration(instances, what):
    names = [i.get("RegisteredName") for i in instances]
    expect(names == ["Profile Registration"], f"{what} gave {names}")


@check("queries")
def exec_query_wql(ctx):
    found = ctx.conn.ExecQuery("WQL", PROFILE_QUERY, namespace=INTEROP)
    expect_profile_registration(found, "ExecQuery WQL")


@check("queries")
def exec_query_cql(ctx):
    found = ctx.conn.ExecQuery("DMTF:CQL", PROFILE_QUERY, namespace=INTEROP)
    expect_profile_registration(found, "ExecQuery DMTF:CQL")


@check("queries")
def exec_query_projection_and_like(ctx):
    found = ctx.conn.ExecQuery("WQL", NAMESPACE_QUERY, namespace=INTEROP)
    names = sorted(i.get("Name") for i in found)
    expect(names == sorted([INTEROP, CIMV2]), f"{NAMESPACE_QUERY} gave {names}")
    extra = [sorted(i.properties) for i in found if sorted(i.properties) != ["Name"]]
    expect(not extra, f"SELECT Name gave other properties too: {extra}")


@check("queries")
def open_query_instances(ctx):
    opened = ctx.conn.OpenQueryInstances("WQL", PROFILE_QUERY, namespace=INTEROP,
                                         MaxObjectCount=0)
    found = list(opened.instances)
    context = opened.context
    eos = opened.eos
    while not eos:
        pulled = ctx.conn.PullInstances(context, MaxObjectCount=10)
        found += pulled.instances
        context, eos = pulled.context, pulled.eos
    expect_profile_registration(found, "OpenQueryInstances + PullInstances")
    iterated = list(ctx.pull_conn.IterQueryInstances("DMTF:CQL", PROFILE_QUERY,
                                                     namespace=INTEROP,
                                                     MaxObjectCount=1).generator)
    expect_profile_registration(iterated, "IterQueryInstances")


@check("queries")
def fql_filters(ctx):
    opened = ctx.conn.OpenEnumerateInstances(
        "CIM_RegisteredProfile", namespace=INTEROP, FilterQueryLanguage="DMTF:FQL",
        FilterQuery=PROFILE_FILTER, MaxObjectCount=100,
    )
    expect(opened.eos, "the filtered enumeration did not end")
    expect_profile_registration(opened.instances, "OpenEnumerateInstances with FQL")
    nothing = ctx.conn.OpenEnumerateInstancePaths(
        "CIM_RegisteredProfile", namespace=INTEROP, FilterQueryLanguage="DMTF:FQL",
        FilterQuery="RegisteredName = 'no such profile'", MaxObjectCount=100,
    )
    expect(nothing.eos and not nothing.paths, f"a filter matching nothing gave {nothing.paths}")
    like = ctx.conn.OpenEnumerateInstances(
        "CIM_Namespace", namespace=INTEROP, FilterQueryLanguage="DMTF:FQL",
        FilterQuery="Name = 'root/cimv2' OR Name = 'root/interop'", MaxObjectCount=100,
    )
    expect(sorted(i["Name"] for i in like.instances) == [CIMV2, INTEROP],
           f"FQL OR gave {[i['Name'] for i in like.instances]}")
    associated = ctx.conn.OpenAssociatorInstances(
        ctx.object_manager_path(), FilterQueryLanguage="DMTF:FQL",
        FilterQuery=PROFILE_FILTER, MaxObjectCount=100,
    )
    expect_profile_registration(associated.instances, "OpenAssociatorInstances with FQL")
    iterated = list(ctx.pull_conn.IterEnumerateInstances(
        "CIM_RegisteredProfile", namespace=INTEROP, FilterQueryLanguage="DMTF:FQL",
        FilterQuery=PROFILE_FILTER, MaxObjectCount=1,
    ))
    expect_profile_registration(iterated, "IterEnumerateInstances with FQL")
    # The filter chooses among whole instances: a PropertyList without the filtered property,
    # or DeepInheritance=False from a superclass, trims the chosen instances only.
    trimmed = ctx.conn.OpenEnumerateInstances(
        "CIM_RegisteredProfile", namespace=INTEROP, FilterQueryLanguage="DMTF:FQL",
        FilterQuery=PROFILE_FILTER, PropertyList=["InstanceID"], MaxObjectCount=100,
    )
    expect([sorted(i.keys()) for i in trimmed.instances] == [["InstanceID"]],
           f"FQL with PropertyList=['InstanceID'] gave {trimmed.instances}")
    shallow = ctx.conn.OpenEnumerateInstancePaths(
        "CIM_ManagedElement", namespace=INTEROP, FilterQueryLanguage="DMTF:FQL",
        FilterQuery=PROFILE_FILTER, MaxObjectCount=100,
    )
    expect([p.classname for p in shallow.paths] == ["CIM_RegisteredProfile"],
           f"FQL on the subclasses of CIM_ManagedElement gave {shallow.paths}")
    shallow = ctx.conn.OpenEnumerateInstances(
        "CIM_ManagedElement", namespace=INTEROP, DeepInheritance=False,
        FilterQueryLanguage="DMTF:FQL", FilterQuery=PROFILE_FILTER, MaxObjectCount=100,
    )
    expect(len(shallow.instances) == 1 and "RegisteredName" not in shallow.instances[0],
           f"FQL with DeepInheritance=False gave {shallow.instances}")


@check("queries")
def query_errors(ctx):
    expect_error(15, "ExecQuery WQL with a bad query",
                 lambda: ctx.conn.ExecQuery("WQL", "SELECT FROM WHERE", namespace=INTEROP))
    expect_error(15, "ExecQuery DMTF:CQL with a bad query",
                 lambda: ctx.conn.ExecQuery("DMTF:CQL", "SELEKT * FROM", namespace=INTEROP))
    expect_error(14, "ExecQuery in an unknown language",
                 lambda: ctx.conn.ExecQuery("XQL", PROFILE_QUERY, namespace=INTEROP))
    expect_error(15, "ExecQuery WQL with a WHERE property the class lacks",
                 lambda: ctx.conn.ExecQuery(
                     "WQL", "SELECT * FROM CIM_RegisteredProfile WHERE NoSuchName = 'x'",
                     namespace=INTEROP))
    expect_error(15, "ExecQuery DMTF:CQL with an ISA of an unknown class",
                 lambda: ctx.conn.ExecQuery(
                     "DMTF:CQL", "SELECT * FROM CIM_RegisteredProfile "
                     "WHERE CIM_RegisteredProfile ISA No_Such_Class",
                     namespace=INTEROP))
    expect_error(15, "OpenQueryInstances with a WHERE property the class lacks",
                 lambda: ctx.conn.OpenQueryInstances(
                     "WQL", "SELECT * FROM CIM_RegisteredProfile WHERE NoSuchName = 'x'",
                     namespace=INTEROP))
    expect_error(15, "OpenQueryInstances with a bad query",
                 lambda: ctx.conn.OpenQueryInstances("WQL", "SELECT * FROM",
                                                     namespace=INTEROP))
    expect_error(14, "OpenQueryInstances in an unknown language",
                 lambda: ctx.conn.OpenQueryInstances("XQL", PROFILE_QUERY,
                                                     namespace=INTEROP))
    expect_error(15, "an FQL filter with a bad query",
                 lambda: ctx.conn.OpenEnumerateInstances(
                     "CIM_RegisteredProfile", namespace=INTEROP,
                     FilterQueryLanguage="DMTF:FQL", FilterQuery="RegisteredName = = 'x'"))
    expect_error(14, "a filter in an unknown query language",
                 lambda: ctx.conn.OpenEnumerateInstances(
                     "CIM_RegisteredProfile", namespace=INTEROP,
                     FilterQueryLanguage="XQL", FilterQuery=PROFILE_FILTER))
    # A misspelt property is an invalid filter, as it is an invalid query: not one that quietly
    # matches nothing (or, with IS NULL, everything).
    for misspelt in ("RegisteredNmae = 'Profile Registration'", "RegisteredNmae IS NULL"):
        expect_error(15, f"an FQL filter on a property no class has: {misspelt}",
                     lambda: ctx.conn.OpenEnumerateInstancePaths(
                         "CIM_RegisteredProfile", namespace=INTEROP,
                         FilterQueryLanguage="DMTF:FQL", FilterQuery=misspelt))
    expect_error(15, "an FQL filter on a property of another class",
                 lambda: ctx.conn.OpenEnumerateInstances(
                     "CIM_Namespace", namespace=INTEROP, FilterQueryLanguage="DMTF:FQL",
                     FilterQuery=PROFILE_FILTER))
    expect_error(15, "an FQL filter on a property that ResultClass does not have",
                 lambda: ctx.conn.OpenAssociatorInstances(
                     ctx.object_manager_path(), ResultClass="CIM_Namespace",
                     FilterQueryLanguage="DMTF:FQL", FilterQuery=PROFILE_FILTER))
    expect_error(15, "an FQL filter, without ResultClass, on a property no class has",
                 lambda: ctx.conn.OpenAssociatorInstancePaths(
                     ctx.object_manager_path(), FilterQueryLanguage="DMTF:FQL",
                     FilterQuery="RegisteredNmae = 'Profile Registration'"))
    expect_error(15, "an FQL filter stepping into a reference",
                 lambda: ctx.conn.OpenReferenceInstances(
                     ctx.object_manager_path(), ResultClass=CONFORMS,
                     FilterQueryLanguage="DMTF:FQL",
                     FilterQuery="ManagedElement.Name = 'x'"))


# --- instance manipulation -----------------------------------------------------------------


@check("instance_writes")
def create_refused(ctx):
    namespace = CIMInstance("CIM_Namespace", properties={
        "SystemCreationClassName": "CIM_ComputerSystem",
        "SystemName": ctx.system_name(),
        "ObjectManagerCreationClassName": "CIM_ObjectManager",
        "ObjectManagerName": "x",
        "CreationClassName": "CIM_Namespace",
        "Name": "root/created",
    })
    expect_error(7, "CreateInstance of a CIM_Namespace (no writable provider)",
                 lambda: ctx.conn.CreateInstance(namespace, namespace=INTEROP))
    names = [i["Name"] for i in ctx.conn.EnumerateInstances("CIM_Namespace", namespace=INTEROP)]
    expect("root/created" not in names, "the refused CIM_Namespace exists after all")
    abstract = CIMInstance("CIM_ListenerDestination", properties={
        "Name": "abstract", "Destination": "http://127.0.0.1:5999",
    })
    expect_error((4, 7), "CreateInstance of an abstract class",
                 lambda: ctx.conn.CreateInstance(abstract, namespace=INTEROP))
    unknown = CIMInstance(MISSING_CLASS, properties={"Name": "x"})
    expect_error(5, "CreateInstance of a missing class",
                 lambda: ctx.conn.CreateInstance(unknown, namespace=INTEROP))


@check("instance_writes")
def create_with_unknown_property(ctx):
    for class_name in ("CIM_IndicationFilter", "CIM_Namespace"):
        instance = CIMInstance(class_name, properties={
            "Name": "with-unknown-property", "NoSuchProperty": "x",
        })
        expect_error(12, f"CreateInstance of a {class_name} with a property not in the class",
                     lambda: ctx.conn.CreateInstance(instance, namespace=INTEROP))


@check("instance_writes")
def modify_and_delete_refused(ctx):
    manager = ctx.conn.GetInstance(ctx.object_manager_path())
    manager["ElementName"] = "renamed"
    expect_error(7, "ModifyInstance of the CIM_ObjectManager",
                 lambda: ctx.conn.ModifyInstance(manager, PropertyList=["ElementName"]))
    expect_error(7, "DeleteInstance of the CIM_ObjectManager",
                 lambda: ctx.conn.DeleteInstance(ctx.object_manager_path()))
    after = ctx.conn.GetInstance(ctx.object_manager_path())
    expect(after["ElementName"] == "cimguard", "a refused ModifyInstance changed the instance")
    manager["NoSuchProperty"] = "x"
    expect_error(12, "ModifyInstance with a property not in the class",
                 lambda: ctx.conn.ModifyInstance(manager))


def filter_instance(ctx, name, query="SELECT * FROM CIM_AlertIndication", language="WQL"):
    return CIMInstance("CIM_IndicationFilter", properties={
        "SystemCreationClassName": "CIM_ComputerSystem",
        "SystemName": ctx.system_name(),
        "CreationClassName": "CIM_IndicationFilter",
        "Name": name,
        "Query": query,
        "QueryLanguage": language,
        "SourceNamespaces": [CIMV2],
    })


def destination_instance(ctx, name, url="http://127.0.0.1:5999"):
    return CIMInstance("CIM_ListenerDestinationCIMXML", properties={
        "SystemCreationClassName": "CIM_ComputerSystem",
        "SystemName": ctx.system_name(),
        "CreationClassName": "CIM_ListenerDestinationCIMXML",
        "Name": name,
        "Destination": url,
        "PersistenceType": Uint16(2),
    })


def subscription_instance(filter_path, destination_path):
    return CIMInstance("CIM_IndicationSubscription", properties={
        "Filter": CIMProperty("Filter", filter_path, type="reference"),
        "Handler": CIMProperty("Handler", destination_path, type="reference"),
        "SubscriptionState": Uint16(2),
    })


def expect_gone(ctx, path, what):
    expect_error(6, f"GetInstance of the deleted {what}", lambda: ctx.conn.GetInstance(path))


@check("subscriptions")
def filter_lifecycle(ctx):
    for language in ("WQL", "DMTF:CQL"):
        name = f"cimguard-test-filter-{language.replace(':', '-')}"
        path = ctx.conn.CreateInstance(filter_instance(ctx, name, language=language),
                                       namespace=INTEROP)
        expect(path.classname == "CIM_IndicationFilter", f"created path {path}")
        got = ctx.conn.GetInstance(path)
        expect(got["Name"] == name and got["QueryLanguage"] == language, f"got {short(got)}")
        expect(got["SourceNamespaces"] == [CIMV2], f"SourceNamespaces {got['SourceNamespaces']}")
        expect(contains_path(all_paths(ctx, "CIM_IndicationFilter"), path),
               "the new filter is not enumerated")
        changed = got.copy()
        changed["Query"] = "SELECT * FROM CIM_InstModification"
        ctx.conn.ModifyInstance(changed, PropertyList=["Query"])
        after = ctx.conn.GetInstance(path)
        expect(after["Query"] == "SELECT * FROM CIM_InstModification",
               f"ModifyInstance left Query {after['Query']!r}")
        expect_error(11, "a second CreateInstance of the same filter",
                     lambda: ctx.conn.CreateInstance(filter_instance(ctx, name, language=language),
                                                     namespace=INTEROP))
        ctx.conn.DeleteInstance(path)
        expect_gone(ctx, path, "filter")
        expect_error(6, "DeleteInstance of the deleted filter",
                     lambda: ctx.conn.DeleteInstance(path))


@check("subscriptions")
def filter_on_a_class_that_is_no_indication(ctx):
    # It would select nothing, ever: refused, and the query's syntax still comes first.
    for language, query in (("WQL", "SELECT * FROM CIM_ObjectManager"),
                            ("DMTF:CQL", "SELECT * FROM HP_SGPackage")):
        expect_error(4, f"a {language} filter on {query.split()[-1]}",
                     lambda: ctx.conn.CreateInstance(
                         filter_instance(ctx, "cimguard-test-no-indication", query, language),
                         namespace=INTEROP))
    expect_error(15, "a filter with a bad query",
                 lambda: ctx.conn.CreateInstance(
                     filter_instance(ctx, "cimguard-test-no-indication", "SELECT FROM"),
                     namespace=INTEROP))
    # An indication class's subclass, and the class named in another case, are taken.
    path = ctx.conn.CreateInstance(
        filter_instance(ctx, "cimguard-test-indication", "SELECT * FROM cim_instmodification"),
        namespace=INTEROP)
    ctx.conn.DeleteInstance(path)


@check("subscriptions")
def destination_lifecycle(ctx):
    path = ctx.conn.CreateInstance(destination_instance(ctx, "cimguard-test-destination"),
                                   namespace=INTEROP)
    got = ctx.conn.GetInstance(path)
    expect(got["Destination"] == "http://127.0.0.1:5999", f"Destination {got['Destination']!r}")
    expect_error(11, "a second CreateInstance of the same destination",
                 lambda: ctx.conn.CreateInstance(
                     destination_instance(ctx, "cimguard-test-destination"), namespace=INTEROP))
    changed = got.copy()
    changed["Destination"] = "http://127.0.0.1:5998"
    ctx.conn.ModifyInstance(changed, PropertyList=["Destination"])
    expect(ctx.conn.GetInstance(path)["Destination"] == "http://127.0.0.1:5998",
           "ModifyInstance of Destination did not take")
    ctx.conn.DeleteInstance(path)
    expect_gone(ctx, path, "destination")


@check("subscriptions")
def names_as_the_class_spells_them(ctx):
    """An instance whose class and property names a client spelt in lower case is stored,
    and shown to everyone, as the class spells them, in the class's order; a ModifyInstance
    in lower case does not rename the property."""
    given = destination_instance(ctx, "cimguard-test-spelling")
    lower = CIMInstance(given.classname.lower(), properties=[
        CIMProperty(p.name.lower(), p.value, type=p.type) for p in given.properties.values()])
    path = ctx.conn.CreateInstance(lower, namespace=INTEROP)
    try:
        declared = list(ctx.conn.GetClass(given.classname, namespace=INTEROP,
                                          LocalOnly=False).properties)

        def check_spelling(what):
            got = ctx.conn.GetInstance(path)
            names = [p.name for p in got.properties.values()]
            expect(got.classname == given.classname, f"{what}: class {got.classname}")
            expect(set(given.properties) <= set(names),
                   f"{what}: properties {names}, expected {list(given.properties)}")
            expect(names == [n for n in declared if n in names],
                   f"{what}: properties {names} not in the class's order")
            return got

        check_spelling("created in lower case")
        changed = CIMInstance(given.classname, path=path, properties=[
            CIMProperty("destination", "http://127.0.0.1:5998")])
        ctx.conn.ModifyInstance(changed, PropertyList=["destination"])
        got = check_spelling("modified in lower case")
        expect(got["Destination"] == "http://127.0.0.1:5998",
               f"the lower-case ModifyInstance did not take: {got['Destination']!r}")
    finally:
        ctx.conn.DeleteInstance(path)


@check("subscriptions")
def subscription_lifecycle(ctx):
    filter_path = ctx.conn.CreateInstance(filter_instance(ctx, "cimguard-test-subscribed"),
                                          namespace=INTEROP)
    destination_path = ctx.conn.CreateInstance(
        destination_instance(ctx, "cimguard-test-listener"), namespace=INTEROP)
    path = ctx.conn.CreateInstance(subscription_instance(filter_path, destination_path),
                                   namespace=INTEROP)
    expect(path.classname == "CIM_IndicationSubscription", f"created path {path}")
    got = ctx.conn.GetInstance(path)
    expect(same_path(got["Filter"], filter_path), f"Filter {got['Filter']}")
    expect(same_path(got["Handler"], destination_path), f"Handler {got['Handler']}")
    expect(got["SubscriptionState"] == 2, f"SubscriptionState {got['SubscriptionState']}")
    expect(contains_path(all_paths(ctx, "CIM_IndicationSubscription"), path),
           "the subscription is not enumerated")
    referencing = ctx.conn.ReferenceNames(filter_path, ResultClass="CIM_IndicationSubscription")
    expect(contains_path(referencing, path), f"ReferenceNames(filter) gave {short(referencing)}")
    handlers = ctx.conn.AssociatorNames(filter_path, AssocClass="CIM_IndicationSubscription")
    expect(contains_path(handlers, destination_path), f"AssociatorNames(filter) {handlers}")
    expect_error(11, "a second CreateInstance of the same subscription",
                 lambda: ctx.conn.CreateInstance(
                     subscription_instance(filter_path, destination_path), namespace=INTEROP))
    changed = got.copy()
    changed["SubscriptionState"] = Uint16(4)
    ctx.conn.ModifyInstance(changed, PropertyList=["SubscriptionState"])
    expect(ctx.conn.GetInstance(path)["SubscriptionState"] == 4,
           "SubscriptionState=4 (disabled) did not take")
    ctx.conn.DeleteInstance(path)
    expect_gone(ctx, path, "subscription")
    ctx.conn.DeleteInstance(destination_path)
    ctx.conn.DeleteInstance(filter_path)
    expect_gone(ctx, destination_path, "destination")
    expect_gone(ctx, filter_path, "filter")


@check("subscriptions")
def subscription_through_interop_is_followed_back(ctx):
    """A subscription whose references name `interop` and a host (as pywbem's subscription
    manager and sblim wbemcli write them) shows them as the server writes references, and
    References and Associators of its filter and destination find it in either spelling."""
    filter_path = ctx.conn.CreateInstance(filter_instance(ctx, "cimguard-test-spelt"),
                                          namespace=INTEROP_ALIAS)
    destination_path = ctx.conn.CreateInstance(
        destination_instance(ctx, "cimguard-test-spelt"), namespace=INTEROP_ALIAS)
    spelt = []
    for path in (filter_path, destination_path):
        path = path.copy()
        path.namespace = INTEROP_ALIAS
        path.host = "client.example:5989"
        spelt.append(path)
    path = ctx.conn.CreateInstance(subscription_instance(*spelt), namespace=INTEROP_ALIAS)
    try:
        got = ctx.conn.GetInstance(in_namespace(path, INTEROP))
        for role in ("Filter", "Handler"):
            expect(got[role].host is None and got[role].namespace == INTEROP,
                   f"{role} shown as {got[role]!r}")
        for namespace in (INTEROP, INTEROP_ALIAS):
            for target, other in ((filter_path, destination_path),
                                  (destination_path, filter_path)):
                target = in_namespace(target, namespace)
                names = ctx.conn.ReferenceNames(target, ResultClass="CIM_IndicationSubscription")
                expect(len(names) == 1, f"ReferenceNames({local(target)}) through {namespace} "
                                        f"gave {short(names)}")
                ends = ctx.conn.AssociatorNames(target, AssocClass="CIM_IndicationSubscription")
                expect(contains_path(ends, other),
                       f"AssociatorNames({local(target)}) through {namespace} gave {short(ends)}")
    finally:
        ctx.conn.DeleteInstance(in_namespace(path, INTEROP))
        ctx.conn.DeleteInstance(in_namespace(destination_path, INTEROP))
        ctx.conn.DeleteInstance(in_namespace(filter_path, INTEROP))


@check("subscriptions")
def subscription_errors(ctx):
    instance = filter_instance(ctx, "cimguard-test-unknown")
    instance["NoSuchProperty"] = "x"
    expect_error(12, "a filter with a property not in the class",
                 lambda: ctx.conn.CreateInstance(instance, namespace=INTEROP))
    expect_error((14, 4), "a filter in an unknown query language",
                 lambda: ctx.conn.CreateInstance(
                     filter_instance(ctx, "cimguard-test-xql", language="XQL"),
                     namespace=INTEROP))
    expect_error((15, 4), "a filter with a bad query",
                 lambda: ctx.conn.CreateInstance(
                     filter_instance(ctx, "cimguard-test-bad", query="SELECT FROM WHERE"),
                     namespace=INTEROP))
    missing_filter = CIMInstanceName("CIM_IndicationFilter", namespace=INTEROP, keybindings={
        "SystemCreationClassName": "CIM_ComputerSystem", "SystemName": ctx.system_name(),
        "CreationClassName": "CIM_IndicationFilter", "Name": "no such filter"})
    missing_destination = CIMInstanceName(
        "CIM_ListenerDestinationCIMXML", namespace=INTEROP, keybindings={
            "SystemCreationClassName": "CIM_ComputerSystem", "SystemName": ctx.system_name(),
            "CreationClassName": "CIM_ListenerDestinationCIMXML", "Name": "no such listener"})
    expect_error((4, 6), "a subscription to a missing filter and destination",
                 lambda: ctx.conn.CreateInstance(
                     subscription_instance(missing_filter, missing_destination),
                     namespace=INTEROP))
    expect(not all_paths(ctx, "CIM_IndicationFilter"), "a refused filter was stored")
    expect(not all_paths(ctx, "CIM_IndicationSubscription"), "a refused subscription was stored")
    # A reference to a filter or destination in another namespace names nothing: refused,
    # rather than stored as a second subscription of the pair that no client can follow.
    filter_path = ctx.conn.CreateInstance(filter_instance(ctx, "cimguard-test-namespaced"),
                                          namespace=INTEROP)
    destination_path = ctx.conn.CreateInstance(
        destination_instance(ctx, "cimguard-test-namespaced"), namespace=INTEROP)
    try:
        for namespace in ("root/cimv2", "root/nowhere"):
            elsewhere = destination_path.copy()
            elsewhere.namespace = namespace
            expect_error(4, f"a subscription whose Handler names namespace {namespace}",
                         lambda: ctx.conn.CreateInstance(
                             subscription_instance(filter_path, elsewhere), namespace=INTEROP))
        expect(not all_paths(ctx, "CIM_IndicationSubscription"),
               "a subscription naming another namespace was stored")
    finally:
        ctx.conn.DeleteInstance(destination_path)
        ctx.conn.DeleteInstance(filter_path)


@check("subscriptions")
def subscription_manager_finds_what_it_owns(ctx):
    """pywbemcli runs a new WBEMSubscriptionManager in each command: it must recognise the
    subscriptions it made earlier, in whichever name of the interop namespace it uses, and
    remove them with their filters and destinations."""
    first = WBEMSubscriptionManager("cimguardtest")
    first_id = first.add_server(WBEMServer(ctx.connection()))
    destination = first.add_destination(first_id, "http://127.0.0.1:5999", owned=True,
                                        destination_id="owned")
    expect(destination["Protocol"] == 2,
           f"Protocol {destination['Protocol']!r}: the class default (CIM-XML) was not given")
    indication_filter = first.add_filter(first_id, CIMV2, "SELECT * FROM CIM_AlertIndication",
                                         owned=True, filter_id="owned")
    made = first.add_subscriptions(first_id, indication_filter.path, [destination.path],
                                   owned=True)
    expect(len(made) == 1, f"add_subscriptions gave {short(made)}")
    for namespace in (INTEROP, INTEROP_ALIAS):
        paths = ctx.conn.EnumerateInstanceNames("CIM_IndicationSubscription",
                                                namespace=namespace)
        expect(len(paths) == 1, f"{namespace}: {short(paths)}")
        for role in ("Filter", "Handler"):
            reference = paths[0].keybindings[role]
            expect(reference.namespace.lower() == namespace,
                   f"enumerated in {namespace}, the {role} reference names {reference.namespace}")
    second = WBEMSubscriptionManager("cimguardtest")
    second_id = second.add_server(WBEMServer(ctx.connection()))
    owned = second.get_owned_subscriptions(second_id)
    expect([s.path for s in owned] == [made[0].path],
           f"a new manager owns {short([s.path for s in owned])}, made {made[0].path}")
    expect(len(second.get_owned_filters(second_id)) == 1, "a new manager lost its filter")
    expect(len(second.get_owned_destinations(second_id)) == 1,
           "a new manager lost its destination")
    second.remove_server(second_id)
    for class_name in ("CIM_IndicationSubscription", "CIM_IndicationFilter",
                       "CIM_ListenerDestinationCIMXML"):
        expect(not all_paths(ctx, class_name), f"remove_server left {class_name}")


# --- methods -------------------------------------------------------------------------------


@check("methods")
def method_without_provider(ctx):
    manager = ctx.object_manager_path()
    expect_error((7, 16), "StopService on the object manager (no method provider)",
                 lambda: ctx.conn.InvokeMethod("StopService", manager))
    # On an object manager that does not exist, that it does not exist is the answer.
    missing = manager.copy()
    missing.keybindings["Name"] = "no-such-object-manager"
    expect_error(6, "StopService on an object manager that does not exist",
                 lambda: ctx.conn.InvokeMethod("StopService", missing))
    system = CIMInstanceName("CIM_ComputerSystem", namespace=CIMV2, keybindings={
        "CreationClassName": "CIM_ComputerSystem", "Name": "no-such-system"})
    expect_error((6, 7, 16), "RequestStateChange on a class without a provider",
                 lambda: ctx.conn.InvokeMethod("RequestStateChange", system,
                                               [("RequestedState", Uint16(3))]))


@check("methods")
def method_not_found(ctx):
    expect_error(17, "an unknown method",
                 lambda: ctx.conn.InvokeMethod("NoSuchMethod", ctx.object_manager_path()))


@check("methods")
def method_bad_parameter(ctx):
    expect_error(4, "a parameter the method does not declare",
                 lambda: ctx.conn.InvokeMethod("StopService", ctx.object_manager_path(),
                                               [("NoSuchParameter", Uint16(1))]))


# --- statistics ----------------------------------------------------------------------------

STATISTICS = "CIM_CIMOMStatisticalData"


def statistics_by_operation(ctx):
    """CIM_CIMOMStatisticalData by operation name (OtherOperationType for Other); reading
    them is itself one EnumerateInstances."""
    rows = {}
    for instance in ctx.conn.EnumerateInstances(STATISTICS, namespace=INTEROP):
        name = instance["ElementName"]
        if instance["OperationType"] == 1:
            expect(instance["OtherOperationType"] == name,
                   f"{name}: OtherOperationType {instance['OtherOperationType']!r}")
        else:
            expect(instance["OtherOperationType"] is None,
                   f"{name}: OtherOperationType {instance['OtherOperationType']!r} is not NULL")
        rows[name] = instance
    return rows


def set_gathering(ctx, on):
    manager = ctx.conn.GetInstance(ctx.object_manager_path())
    manager["GatherStatisticalData"] = on
    ctx.conn.ModifyInstance(manager, PropertyList=["GatherStatisticalData"])


def elapsed_seconds(instance, prop):
    value = instance[prop]
    expect(value.is_interval, f"{prop} is not an interval: {value}")
    return value.timedelta.total_seconds()


@check("statistics")
def statistics_off_at_start(ctx):
    manager = ctx.conn.GetInstance(ctx.object_manager_path())
    expect(manager["GatherStatisticalData"] is False,
           f"GatherStatisticalData {manager['GatherStatisticalData']!r} at start")
    expect(ctx.conn.last_server_response_time is None,
           "WBEMServerResponseTime was sent while statistics are off")
    rows = statistics_by_operation(ctx)
    expect(rows.get("GetInstance") is not None and rows["GetInstance"]["OperationType"] == 4,
           f"no GetInstance (4) row: {sorted(rows)}")
    expect("OpenEnumerateInstances" in rows and "InvokeMethod" in rows,
           f"no rows for the pull operations and methods: {sorted(rows)}")
    busy = [n for n, i in rows.items() if i["NumberOfOperations"] != 0]
    expect(busy == [], f"operations counted while statistics are off: {busy}")


@check("statistics")
def statistics_count_each_operation(ctx):
    set_gathering(ctx, True)
    try:
        path = ctx.object_manager_path()
        request_bodies = reply_bodies = 0
        for _ in range(3):
            ctx.conn.GetInstance(path)
            expect(ctx.conn.last_server_response_time is not None
                   and ctx.conn.last_server_response_time > 0,
                   "no WBEMServerResponseTime while statistics are gathered")
            request_bodies += ctx.conn.last_request_len
            reply_bodies += ctx.conn.last_reply_len
        ctx.pull_conn.OpenEnumerateInstances("CIM_Namespace", namespace=INTEROP,
                                             MaxObjectCount=10)
        rows = statistics_by_operation(ctx)
        get = rows["GetInstance"]
        expect(get["NumberOfOperations"] == 3,
               f"GetInstance counted {get['NumberOfOperations']} times, 3 were made")
        # The bodies, and the HTTP heads (a few hundred bytes each); the responses went out
        # gzipped (pywbem accepts it), so their size is at most that of the bodies.
        expect(request_bodies + 3 * 50 < get["RequestSize"] < request_bodies + 3 * 1000,
               f"RequestSize {get['RequestSize']} bytes for 3 bodies of {request_bodies} "
               f"bytes in all")
        expect(3 * 50 < get["ResponseSize"] < reply_bodies + 3 * 1000,
               f"ResponseSize {get['ResponseSize']} bytes for 3 bodies of {reply_bodies} "
               f"bytes in all")
        expect(elapsed_seconds(get, "CimomElapsedTime")
               + elapsed_seconds(get, "ProviderElapsedTime") > 0, "no time counted")
        expect(rows["OpenEnumerateInstances"]["NumberOfOperations"] == 1,
               "OpenEnumerateInstances not counted as Other")
        expect(rows["ModifyInstance"]["NumberOfOperations"] == 0,
               "the ModifyInstance that turned gathering on was counted")
        started = get["StartStatisticTime"].datetime
        expect(get["StatisticTime"].datetime >= started, "StatisticTime before the start")
        # ResetSelectedStats of one figure, then of all.
        result, _ = ctx.conn.InvokeMethod("ResetSelectedStats", get.path,
                                          SelectedStatistics=["NumberOfOperations"])
        expect(result == 0, f"ResetSelectedStats returned {result}")
        rows = statistics_by_operation(ctx)
        expect(rows["GetInstance"]["NumberOfOperations"] == 0
               and rows["GetInstance"]["RequestSize"] == get["RequestSize"],
               "ResetSelectedStats(NumberOfOperations) reset the wrong figures")
        expect(rows["InvokeMethod"]["NumberOfOperations"] == 1
               and rows["InvokeMethod"]["OperationType"] == 1,
               "the method call was not counted as Other/InvokeMethod")
        expect(rows["OpenEnumerateInstances"]["NumberOfOperations"] == 1,
               "resetting GetInstance's figures reset another operation's")
        result, _ = ctx.conn.InvokeMethod("ResetSelectedStats", get.path,
                                          SelectedStatistics=["All"])
        expect(result == 0, f"ResetSelectedStats(All) returned {result}")
        after = statistics_by_operation(ctx)["GetInstance"]
        expect(after["RequestSize"] == 0 and after["ResponseSize"] == 0,
               "ResetSelectedStats(All) left figures")
        expect_error(4, "ResetSelectedStats of a property that is no statistic",
                     lambda: ctx.conn.InvokeMethod("ResetSelectedStats", get.path,
                                                   SelectedStatistics=["ElementName"]))
        expect_error(4, "ResetSelectedStats with no statistic named",
                     lambda: ctx.conn.InvokeMethod("ResetSelectedStats", get.path,
                                                   SelectedStatistics=[]))
        shown = ctx.conn.GetInstance(path)["GatherStatisticalData"]
        expect(shown is True, f"GatherStatisticalData {shown!r} while gathering is on")
        listed = [i["GatherStatisticalData"]
                  for i in ctx.conn.EnumerateInstances("CIM_ObjectManager", namespace=INTEROP)]
        expect(listed == [True], f"EnumerateInstances shows GatherStatisticalData {listed}")
    finally:
        set_gathering(ctx, False)
    manager = ctx.conn.GetInstance(ctx.object_manager_path())
    expect(manager["GatherStatisticalData"] is False, "gathering is still on")
    listed = [i["GatherStatisticalData"]
              for i in ctx.conn.EnumerateInstances("CIM_ObjectManager", namespace=INTEROP)]
    expect(listed == [False], f"EnumerateInstances shows GatherStatisticalData {listed}")
    expect(ctx.conn.last_server_response_time is None,
           "WBEMServerResponseTime was sent after statistics were turned off")
    busy = [n for n, i in statistics_by_operation(ctx).items() if i["NumberOfOperations"]]
    expect(busy == [], f"figures shown while statistics are off: {busy}")


@check("statistics")
def statistics_modify_errors(ctx):
    manager = ctx.conn.GetInstance(ctx.object_manager_path())
    manager["GatherStatisticalData"] = CIMProperty("GatherStatisticalData", None, type="boolean")
    expect_error(4, "ModifyInstance setting GatherStatisticalData to NULL",
                 lambda: ctx.conn.ModifyInstance(manager,
                                                 PropertyList=["GatherStatisticalData"]))
    row = ctx.conn.EnumerateInstances(STATISTICS, namespace=INTEROP)[0]
    row["NumberOfOperations"] = pywbem.Uint64(5)
    expect_error(7, "ModifyInstance of a statistics instance",
                 lambda: ctx.conn.ModifyInstance(row, PropertyList=["NumberOfOperations"]))


# --- WBEMServer ----------------------------------------------------------------------------


@check("wbemserver")
def server_identity(ctx):
    server = WBEMServer(ctx.conn)
    expect(server.interop_ns.lower() in (INTEROP, INTEROP_ALIAS),
           f"interop namespace {server.interop_ns}")
    namespaces = sorted(n.lower() for n in server.namespaces)
    expect(namespaces == sorted([server.interop_ns.lower(), CIMV2]),
           f"WBEMServer.namespaces {namespaces}: each namespace once, the interop one as "
           f"{server.interop_ns}")
    expect(server.brand == "cimguard", f"brand {server.brand!r}")
    expect(server.version == ctx.arguments.version,
           f"version {server.version!r}, expected {ctx.arguments.version!r}")
    expect(server.cimom_inst.classname == "CIM_ObjectManager", "no CIM_ObjectManager")


@check("wbemserver")
def server_profiles(ctx):
    server = WBEMServer(ctx.conn)
    names = [p["RegisteredName"] for p in server.profiles]
    expect("Profile Registration" in names, f"profiles {names}")
    selected = server.get_selected_profiles("DMTF", "Profile Registration")
    expect(len(selected) == 1, f"get_selected_profiles gave {short(selected)}")
    central = server.get_central_instances(selected[0].path)
    expect(len(central) == 1 and same_path(central[0], ctx.object_manager_path()),
           f"get_central_instances gave {short(central)}")
    none = server.get_selected_profiles("DMTF", "No Such Profile")
    expect(none == [], f"an unregistered profile was selected: {short(none)}")


# --- access --------------------------------------------------------------------------------


@check("access")
def wrong_password(ctx):
    for creds, what in (((ctx.arguments.user, "wrong password"), "a wrong password"),
                        (("no-such-user", "x"), "an unknown user")):
        conn = ctx.connection(creds=creds)
        try:
            conn.EnumerateInstanceNames("CIM_ObjectManager", namespace=INTEROP)
        except pywbem.AuthError:
            continue
        except pywbem.Error as error:
            raise Failure(f"{what}: expected pywbem.AuthError (HTTP 401), got "
                          f"{type(error).__name__}: {error}") from None
        raise Failure(f"{what}: the request succeeded")


@check("access")
def monitor_reads_but_does_not_write(ctx):
    admin = ctx.conn
    monitor = ctx.connection(creds=(ctx.arguments.monitor_user, ctx.arguments.monitor_password))
    filter_path = admin.CreateInstance(filter_instance(ctx, "cimguard-admin-filter"),
                                       namespace=INTEROP)
    destination_path = admin.CreateInstance(destination_instance(ctx, "cimguard-admin-dest"),
                                            namespace=INTEROP)
    subscription_path = admin.CreateInstance(
        subscription_instance(filter_path, destination_path), namespace=INTEROP)
    try:
        instances = monitor.EnumerateInstances("CIM_ObjectManager", namespace=INTEROP)
        expect(len(instances) == 1, "MONITOR cannot read the object manager")
        manager = instances[0]
        manager["GatherStatisticalData"] = True
        expect_error(2, "ModifyInstance of GatherStatisticalData by a MONITOR user",
                     lambda: monitor.ModifyInstance(manager,
                                                    PropertyList=["GatherStatisticalData"]))
        statistics = monitor.EnumerateInstanceNames("CIM_CIMOMStatisticalData",
                                                    namespace=INTEROP)
        expect(statistics, "MONITOR cannot read the server's statistics")
        expect_error(2, "ResetSelectedStats by a MONITOR user",
                     lambda: monitor.InvokeMethod("ResetSelectedStats", statistics[0],
                                                  SelectedStatistics=["All"]))
        expect(admin.GetInstance(manager.path)["GatherStatisticalData"] is False,
               "a refused ModifyInstance turned statistics on")
        # A method the class does not have is not found, for a MONITOR user as for anyone:
        # not "access denied".
        expect_error(17, "a MONITOR user's InvokeMethod of a method the class lacks",
                     lambda: monitor.InvokeMethod("NoSuchMethod", statistics[0]))
        expect_error(17, "an administrator's InvokeMethod of a method the class lacks",
                     lambda: admin.InvokeMethod("NoSuchMethod", statistics[0]))
        monitor.GetInstance(subscription_path)
        # MONITOR manages its own subscriptions: it may create, change and delete its own
        # filter, and only its own.
        own_filter = monitor.CreateInstance(filter_instance(ctx, "cimguard-monitor-filter"),
                                            namespace=INTEROP)
        own = monitor.GetInstance(own_filter)
        own["Query"] = "SELECT * FROM CIM_InstCreation"
        monitor.ModifyInstance(own, PropertyList=["Query"])
        expect(monitor.GetInstance(own_filter)["Query"] == "SELECT * FROM CIM_InstCreation",
               "a MONITOR user could not change its own filter")
        monitor.DeleteInstance(own_filter)
        expect_error(2, "DeleteInstance of another user's filter by a MONITOR user",
                     lambda: monitor.DeleteInstance(filter_path))
        expect_error(2, "DeleteInstance of another user's subscription by a MONITOR user",
                     lambda: monitor.DeleteInstance(subscription_path))
        changed = monitor.GetInstance(subscription_path)
        changed["SubscriptionState"] = Uint16(4)
        expect_error(2, "ModifyInstance of another user's subscription by a MONITOR user",
                     lambda: monitor.ModifyInstance(changed,
                                                    PropertyList=["SubscriptionState"]))
        expect(admin.GetInstance(subscription_path)["SubscriptionState"] == 2,
               "a refused ModifyInstance changed the subscription")
        names = [i["Name"] for i in admin.EnumerateInstances("CIM_IndicationFilter",
                                                             namespace=INTEROP)]
        expect("cimguard-monitor-filter" not in names, "the deleted filter is still stored")
        expect("cimguard-admin-filter" in names, "a refused DeleteInstance removed the filter")
    finally:
        admin.DeleteInstance(subscription_path)
        admin.DeleteInstance(destination_path)
        admin.DeleteInstance(filter_path)


# --- runner --------------------------------------------------------------------------------


def run(group, ctx):
    failures = 0
    for function in CHECKS[group]:
        name = f"{group}/{function.__name__}"
        try:
            function(ctx)
        except Failure as failure:
            failures += 1
            print(f"FAIL {name}: {failure}", flush=True)
        except pywbem.CIMError as error:
            failures += 1
            print(f"FAIL {name}: unexpected CIM error {error.status_code} "
                  f"({error.status_code_name}): {error.status_description}", flush=True)
        except Exception as error:  # pylint: disable=broad-except
            failures += 1
            where = traceback.extract_tb(error.__traceback__)[-1]
            print(f"FAIL {name}: {type(error).__name__}: {error} "
                  f"(at {where.filename.rsplit('/', 1)[-1]}:{where.lineno})", flush=True)
        else:
            print(f"ok {name}", flush=True)
    total = len(CHECKS[group])
    print(f"{group}: {total - failures} passed, {failures} failed", flush=True)
    return failures == 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("group", choices=sorted(CHECKS))
    parser.add_argument("--url", required=True)
    parser.add_argument("--ca-certs", required=True)
    parser.add_argument("--version", default=None, help="the server version WBEMServer expects")
    parser.add_argument("--user", default=None)
    parser.add_argument("--password", default=None)
    parser.add_argument("--monitor-user", default=None)
    parser.add_argument("--monitor-password", default=None)
    arguments = parser.parse_args()
    # A tolerated server issue is still an issue: fail on it.
    warnings.simplefilter("error", pywbem.ToleratedServerIssueWarning)
    return 0 if run(arguments.group, Context(arguments)) else 1


if __name__ == "__main__":
    sys.exit(main())
