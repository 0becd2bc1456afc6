//! Decoding of values, qualifiers, properties, methods, classes, instances and the
//! objects-with-path elements.

use std::borrow::Cow;

use crate::model::{
    CimType, EmbeddedKind, Flavor, Name, Qualifier, QualifierDeclaration, Scope, Value,
};

use super::parser::{Element, Parser, Result};
use crate::xml::error::Limit;
use crate::xml::message::Untyped;
use crate::xml::text;

/// The type a `VALUE` is to be read as: its CIM type and whether it holds embedded objects.
#[derive(Clone, Copy)]
pub(crate) struct Typing<'t> {
    pub cim_type: &'t CimType,
    pub embedded: Option<EmbeddedKind>,
}

impl<'a> Parser<'a> {
    /// Parses the `TYPE` attribute of an element.
    pub fn cim_type(&self, element: &Element<'_>, value: Option<Cow<'_, str>>) -> Result<CimType> {
        let value = self.required(value, element, "TYPE")?;
        text::type_keyword(&value).ok_or_else(|| self.not_valid(format!("unknown TYPE {value:?}")))
    }

    /// The `EmbeddedObject` attribute (or its legacy spelling `EMBEDDEDOBJECT`).
    pub fn embedded_kind(
        &self,
        modern: Option<Cow<'_, str>>,
        legacy: Option<Cow<'_, str>>,
    ) -> Result<Option<EmbeddedKind>> {
        match modern.or(legacy).as_deref() {
            None => Ok(None),
            Some(kind) if kind.eq_ignore_ascii_case("object") => Ok(Some(EmbeddedKind::Object)),
            Some(kind) if kind.eq_ignore_ascii_case("instance") => Ok(Some(EmbeddedKind::Instance)),
            Some(other) => Err(self.not_valid(format!("unknown EmbeddedObject {other:?}"))),
        }
    }

    /// A scalar from the text of an opened `VALUE`, which this closes.
    pub fn typed_scalar(&mut self, typing: Typing<'_>) -> Result<Value> {
        let text = self.text()?;
        if let Some(kind) = typing.embedded {
            return self.embedded(&text, kind);
        }
        text::parse_scalar(&text, typing.cim_type).map_err(|reason| self.not_valid(reason))
    }

    /// Decodes the XML text of an embedded object (an `INSTANCE`, or with
    /// [`EmbeddedKind::Object`] also a `CLASS`) within this parser's limits.
    pub fn embedded(&mut self, text: &str, kind: EmbeddedKind) -> Result<Value> {
        if self.embedded_depth >= self.limits.embedded_depth_max {
            return Err(self.limit(Limit::EmbeddedDepth));
        }
        let carrier = self.location();
        // The request around it is well-formed: an embedded object that is not is a string
        // value of the wrong form, so the request is not valid.
        let mut inner = Parser::new(text.as_bytes(), self.limits)
            .map_err(|error| error.nested_in(&carrier).not_well_formed_as_not_valid())?;
        inner.elements = self.elements;
        inner.embedded_depth = self.embedded_depth + 1;
        let value = inner
            .embedded_root(kind)
            .map_err(|error| error.nested_in(&carrier).not_well_formed_as_not_valid())?;
        self.elements = inner.elements;
        Ok(value)
    }

    fn embedded_root(&mut self, kind: EmbeddedKind) -> Result<Value> {
        let root = self.root()?;
        let value = match (root.name, kind) {
            (b"INSTANCE", _) => Value::Instance(Box::new(self.instance(&root)?)),
            (b"CLASS", EmbeddedKind::Object) => Value::Class(Box::new(self.class(&root)?)),
            _ => {
                return Err(self.not_valid(format!(
                    "an embedded {} cannot be a {}",
                    if kind == EmbeddedKind::Object {
                        "object"
                    } else {
                        "instance"
                    },
                    root.name_str()
                )))
            }
        };
        self.end_document()?;
        Ok(value)
    }

    /// An opened `VALUE.ARRAY` with typed elements, which this closes.
    pub fn typed_array(&mut self, typing: Typing<'_>) -> Result<Value> {
        let mut items = Vec::new();
        while let Some(child) = self.child()? {
            match child.name {
                b"VALUE" => items.push(Some(self.typed_scalar(typing)?)),
                b"VALUE.NULL" => {
                    self.end_empty()?;
                    items.push(None);
                }
                _ => return Err(self.unexpected(&child)),
            }
        }
        Ok(Value::Array(items))
    }

    /// An opened `VALUE.REFARRAY`, which this closes.
    pub fn reference_array(&mut self) -> Result<Value> {
        let mut items = Vec::new();
        while let Some(child) = self.child()? {
            match child.name {
                b"VALUE.REFERENCE" => {
                    items.push(Some(Value::Reference(Box::new(self.value_reference()?))));
                }
                b"VALUE.NULL" => {
                    self.end_empty()?;
                    items.push(None);
                }
                _ => return Err(self.unexpected(&child)),
            }
        }
        Ok(Value::Array(items))
    }

    /// An opened `VALUE.ARRAY` kept as text, which this closes.
    pub fn untyped_array(&mut self) -> Result<Untyped> {
        let mut items = Vec::new();
        while let Some(child) = self.child()? {
            match child.name {
                b"VALUE" => items.push(Some(self.text()?.into_owned())),
                b"VALUE.NULL" => {
                    self.end_empty()?;
                    items.push(None);
                }
                _ => return Err(self.unexpected(&child)),
            }
        }
        Ok(Untyped::Array(items))
    }

    /// An opened `QUALIFIER`, which this closes.
    pub fn qualifier(&mut self, element: &Element<'a>) -> Result<Qualifier> {
        let [name, cim_type, propagated, overridable, to_subclass, to_instance, translatable] =
            self.attributes(
                element,
                [
                    b"NAME",
                    b"TYPE",
                    b"PROPAGATED",
                    b"OVERRIDABLE",
                    b"TOSUBCLASS",
                    b"TOINSTANCE",
                    b"TRANSLATABLE",
                ],
            )?;
        let name = Name::new(self.required(name, element, "NAME")?);
        let cim_type = self.cim_type(element, cim_type)?;
        let propagated = self.flag(propagated.as_deref(), "PROPAGATED", false)?;
        let flavor = self.flavor([overridable, to_subclass, to_instance, translatable])?;
        let (value, is_array) = self.qualifier_value(&cim_type)?;
        Ok(Qualifier {
            name,
            cim_type,
            is_array,
            value,
            flavor,
            propagated,
        })
    }

    /// OVERRIDABLE, TOSUBCLASS, TOINSTANCE, TRANSLATABLE with the DTD defaults.
    fn flavor(
        &self,
        [overridable, to_subclass, to_instance, translatable]: [Option<Cow<'_, str>>; 4],
    ) -> Result<Flavor> {
        Ok(Flavor {
            overridable: self.flag(overridable.as_deref(), "OVERRIDABLE", true)?,
            to_subclass: self.flag(to_subclass.as_deref(), "TOSUBCLASS", true)?,
            to_instance: self.flag(to_instance.as_deref(), "TOINSTANCE", false)?,
            translatable: self.flag(translatable.as_deref(), "TRANSLATABLE", false)?,
        })
    }

    /// The optional `VALUE` or `VALUE.ARRAY` of a qualifier; closes the qualifier.
    fn qualifier_value(&mut self, cim_type: &CimType) -> Result<(Option<Value>, bool)> {
        let typing = Typing {
            cim_type,
            embedded: None,
        };
        let Some(child) = self.child()? else {
            return Ok((None, false));
        };
        let result = match child.name {
            b"VALUE" => (Some(self.typed_scalar(typing)?), false),
            b"VALUE.ARRAY" => (Some(self.typed_array(typing)?), true),
            _ => return Err(self.unexpected(&child)),
        };
        self.end_empty()?;
        Ok(result)
    }

    /// An opened `QUALIFIER.DECLARATION`, which this closes.
    pub fn qualifier_declaration(&mut self, element: &Element<'a>) -> Result<QualifierDeclaration> {
        let [name, cim_type, is_array, array_size, overridable, to_subclass, to_instance, translatable] =
            self.attributes(
                element,
                [
                    b"NAME",
                    b"TYPE",
                    b"ISARRAY",
                    b"ARRAYSIZE",
                    b"OVERRIDABLE",
                    b"TOSUBCLASS",
                    b"TOINSTANCE",
                    b"TRANSLATABLE",
                ],
            )?;
        let name = Name::new(self.required(name, element, "NAME")?);
        let cim_type = self.cim_type(element, cim_type)?;
        let mut is_array = self.flag(is_array.as_deref(), "ISARRAY", false)?;
        let array_size = self.array_size(array_size.as_deref())?;
        let flavor = self.flavor([overridable, to_subclass, to_instance, translatable])?;
        let mut scope = Scope::default();
        let mut default = None;
        let typing = Typing {
            cim_type: &cim_type,
            embedded: None,
        };
        while let Some(child) = self.child()? {
            match child.name {
                b"SCOPE" if default.is_none() && scope == Scope::default() => {
                    scope = self.scope(&child)?;
                }
                b"VALUE" if default.is_none() => default = Some(self.typed_scalar(typing)?),
                b"VALUE.ARRAY" if default.is_none() => {
                    default = Some(self.typed_array(typing)?);
                    is_array = true;
                }
                _ => return Err(self.unexpected(&child)),
            }
        }
        Ok(QualifierDeclaration {
            name,
            cim_type,
            is_array,
            array_size,
            default,
            scope,
            flavor,
        })
    }

    fn scope(&mut self, element: &Element<'a>) -> Result<Scope> {
        let [class, association, reference, property, method, parameter, indication] = self
            .attributes(
                element,
                [
                    b"CLASS",
                    b"ASSOCIATION",
                    b"REFERENCE",
                    b"PROPERTY",
                    b"METHOD",
                    b"PARAMETER",
                    b"INDICATION",
                ],
            )?;
        let scope = Scope {
            class: self.flag(class.as_deref(), "CLASS", false)?,
            association: self.flag(association.as_deref(), "ASSOCIATION", false)?,
            reference: self.flag(reference.as_deref(), "REFERENCE", false)?,
            property: self.flag(property.as_deref(), "PROPERTY", false)?,
            method: self.flag(method.as_deref(), "METHOD", false)?,
            parameter: self.flag(parameter.as_deref(), "PARAMETER", false)?,
            indication: self.flag(indication.as_deref(), "INDICATION", false)?,
        };
        self.end_empty()?;
        Ok(scope)
    }

    pub fn array_size(&self, value: Option<&str>) -> Result<Option<u32>> {
        value
            .map(|text| {
                text.trim()
                    .parse::<u32>()
                    .map_err(|_| self.not_valid(format!("ARRAYSIZE={text:?} is not a size")))
            })
            .transpose()
    }
}
