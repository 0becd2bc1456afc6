//! Decoding of namespace, class and instance paths and of references.

use crate::model::{CimType, ClassPath, InstancePath, KeyBinding, Name, ObjectPath, Value};

use super::parser::{Element, Parser, Result};
use crate::xml::text;

impl<'a> Parser<'a> {
    /// `LOCALNAMESPACEPATH` (opened): its `NAMESPACE` segments joined with `/`.
    pub fn local_namespace_path(&mut self) -> Result<String> {
        // `root/cimv2`, `root/interop` and the like fit without growing.
        let mut namespace = String::with_capacity(16);
        let mut any = false;
        while let Some(child) = self.child()? {
            if child.name != b"NAMESPACE" {
                return Err(self.unexpected(&child));
            }
            let [name] = self.attributes(&child, [b"NAME"])?;
            let name = self.required(name, &child, "NAME")?;
            // An empty segment (`NAME=""`, `NAME="a//b"`) names no namespace, and would not
            // come back the same when the path is written again.
            if name.split('/').any(str::is_empty) {
                return Err(self.not_valid(format!("NAMESPACE NAME={name:?} has an empty segment")));
            }
            self.end_empty()?;
            if any {
                namespace.push('/');
            }
            namespace.push_str(&name);
            any = true;
        }
        if !any {
            return Err(self.not_valid("LOCALNAMESPACEPATH has no NAMESPACE"));
        }
        Ok(namespace)
    }

    /// An expected child element, opened.
    fn expect(&mut self, name: &[u8]) -> Result<Element<'a>> {
        let what = String::from_utf8_lossy(name).into_owned();
        let child = self.required_child(&what)?;
        if child.name != name {
            return Err(self.unexpected(&child));
        }
        Ok(child)
    }

    /// `NAMESPACEPATH` (opened): host and namespace.
    pub fn namespace_path(&mut self) -> Result<(String, String)> {
        self.expect(b"HOST")?;
        let host = self.text()?.into_owned();
        self.expect(b"LOCALNAMESPACEPATH")?;
        let namespace = self.local_namespace_path()?;
        self.end_empty()?;
        Ok((host, namespace))
    }

    /// `CLASSNAME NAME=..` (opened).
    pub fn class_name(&mut self, element: &Element<'a>) -> Result<Name> {
        let [name] = self.attributes(element, [b"NAME"])?;
        let name = self.required(name, element, "NAME")?;
        self.end_empty()?;
        Ok(Name::new(name))
    }

    fn expect_class_name(&mut self) -> Result<Name> {
        let child = self.expect(b"CLASSNAME")?;
        self.class_name(&child)
    }

    /// `CLASSPATH` (opened).
    pub fn class_path(&mut self) -> Result<ClassPath> {
        self.expect(b"NAMESPACEPATH")?;
        let (host, namespace) = self.namespace_path()?;
        let class_name = self.expect_class_name()?;
        self.end_empty()?;
        Ok(ClassPath {
            host: Some(host),
            namespace: Some(namespace),
            class_name,
        })
    }

    /// `LOCALCLASSPATH` (opened).
    pub fn local_class_path(&mut self) -> Result<ClassPath> {
        self.expect(b"LOCALNAMESPACEPATH")?;
        let namespace = self.local_namespace_path()?;
        let class_name = self.expect_class_name()?;
        self.end_empty()?;
        Ok(ClassPath {
            host: None,
            namespace: Some(namespace),
            class_name,
        })
    }

    /// `INSTANCENAME CLASSNAME=..` (opened) with its `KEYBINDING`s.
    pub fn instance_name(&mut self, element: &Element<'a>) -> Result<InstancePath> {
        let [class_name] = self.attributes(element, [b"CLASSNAME"])?;
        let mut path = InstancePath::new(Name::new(self.required(
            class_name,
            element,
            "CLASSNAME",
        )?));
        while let Some(child) = self.child()? {
            match child.name {
                b"KEYBINDING" => path.keybindings.push(self.keybinding(&child)?),
                // DSP0201 `(KEYBINDING* | KEYVALUE? | VALUE.REFERENCE?)`: the one key of a
                // class with a single key, unnamed. It is kept with an empty name; the server
                // names it from the class (see `KeyBinding`).
                b"KEYVALUE" | b"VALUE.REFERENCE" if path.keybindings.is_empty() => {
                    let value = if child.name == b"KEYVALUE" {
                        self.keyvalue(&child)?
                    } else {
                        Value::Reference(Box::new(self.value_reference()?))
                    };
                    path.keybindings.push(KeyBinding {
                        name: Name::new(""),
                        value,
                    });
                    if let Some(next) = self.child()? {
                        return Err(self.unexpected(&next));
                    }
                    break;
                }
                _ => return Err(self.unexpected(&child)),
            }
        }
        Ok(path)
    }

    fn expect_instance_name(&mut self) -> Result<InstancePath> {
        let child = self.expect(b"INSTANCENAME")?;
        self.instance_name(&child)
    }

    /// `KEYBINDING NAME=..` (opened).
    fn keybinding(&mut self, element: &Element<'a>) -> Result<KeyBinding> {
        let [name] = self.attributes(element, [b"NAME"])?;
        let name = Name::new(self.required(name, element, "NAME")?);
        let child = self.required_child("KEYVALUE")?;
        let value = match child.name {
            b"KEYVALUE" => self.keyvalue(&child)?,
            b"VALUE.REFERENCE" => Value::Reference(Box::new(self.value_reference()?)),
            _ => return Err(self.unexpected(&child)),
        };
        self.end_empty()?;
        Ok(KeyBinding { name, value })
    }

    /// `KEYVALUE VALUETYPE=.. TYPE=..` (opened). Without `TYPE`, the value gets the widest
    /// type of its `VALUETYPE` (see [`crate::model::KeyBinding`]).
    fn keyvalue(&mut self, element: &Element<'a>) -> Result<Value> {
        let [value_type, cim_type] = self.attributes(element, [b"VALUETYPE", b"TYPE"])?;
        let text = self.text()?;
        let typed = match (value_type.as_deref(), cim_type.as_deref()) {
            (_, Some(type_name)) => match text::type_keyword(type_name) {
                Some(cim_type) => text::parse_scalar(&text, &cim_type),
                None => Err(format!("unknown TYPE {type_name:?}")),
            },
            (None | Some("string"), None) => Ok(Value::String(text.into_owned())),
            (Some("boolean"), None) => text::parse_scalar(&text, &CimType::Boolean),
            (Some("numeric"), None) => text::parse_untyped_numeric(&text),
            (Some(other), None) => Err(format!("unknown VALUETYPE {other:?}")),
        };
        typed.map_err(|reason| self.not_valid(reason))
    }

    /// `INSTANCEPATH` (opened).
    pub fn instance_path(&mut self) -> Result<InstancePath> {
        self.expect(b"NAMESPACEPATH")?;
        let (host, namespace) = self.namespace_path()?;
        let mut path = self.expect_instance_name()?;
        self.end_empty()?;
        path.host = Some(host);
        path.namespace = Some(namespace);
        Ok(path)
    }

    /// `LOCALINSTANCEPATH` (opened).
    pub fn local_instance_path(&mut self) -> Result<InstancePath> {
        self.expect(b"LOCALNAMESPACEPATH")?;
        let namespace = self.local_namespace_path()?;
        let mut path = self.expect_instance_name()?;
        self.end_empty()?;
        path.namespace = Some(namespace);
        Ok(path)
    }

    /// `OBJECTPATH` (opened).
    pub fn object_path(&mut self) -> Result<ObjectPath> {
        let child = self.required_child("INSTANCEPATH or CLASSPATH")?;
        let path = match child.name {
            b"INSTANCEPATH" => ObjectPath::Instance(self.instance_path()?),
            b"CLASSPATH" => ObjectPath::Class(self.class_path()?),
            _ => return Err(self.unexpected(&child)),
        };
        self.end_empty()?;
        Ok(path)
    }

    /// Any path element (opened, named by `element`) as an object path, or `None` (element
    /// still open) when `element` is not a path.
    pub fn any_path(&mut self, element: &Element<'a>) -> Result<Option<ObjectPath>> {
        Ok(Some(match element.name {
            b"CLASSPATH" => ObjectPath::Class(self.class_path()?),
            b"LOCALCLASSPATH" => ObjectPath::Class(self.local_class_path()?),
            b"CLASSNAME" => ObjectPath::Class(ClassPath::new(self.class_name(element)?)),
            b"INSTANCEPATH" => ObjectPath::Instance(self.instance_path()?),
            b"LOCALINSTANCEPATH" => ObjectPath::Instance(self.local_instance_path()?),
            b"INSTANCENAME" => ObjectPath::Instance(self.instance_name(element)?),
            _ => return Ok(None),
        }))
    }

    /// `VALUE.REFERENCE` (opened): one path of any of the six kinds.
    pub fn value_reference(&mut self) -> Result<ObjectPath> {
        let child = self.required_child("a path")?;
        let Some(path) = self.any_path(&child)? else {
            return Err(self.unexpected(&child));
        };
        self.end_empty()?;
        Ok(path)
    }
}
