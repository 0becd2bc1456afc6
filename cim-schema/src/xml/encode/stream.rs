//! Streaming an intrinsic response: the envelope first, then one item at a time, the buffer
//! taken in chunks as it fills, then the closing elements with the output parameters.

use crate::model::{Class, Instance, InstancePath, Name, ObjectPath, QualifierDeclaration};

use super::Encoder;
use crate::xml::error::EncodeError;
use crate::xml::message::{Data, Object, ParamValue, PROTOCOL_VERSION};

/// Writes `IMETHODRESPONSE` with an `IRETURNVALUE` item by item. Start it with
/// [`begin_imethod_response`].
///
/// ```
/// use cim_schema::model::{Instance, InstancePath};
/// use cim_schema::xml::begin_imethod_response;
///
/// let mut writer = begin_imethod_response("1001", "EnumerateInstances");
/// let path = InstancePath::new("HP_SGPackage").with_key("Name", "dbpkg");
/// writer.write_named_instance(&path, &Instance::new("HP_SGPackage")).unwrap();
/// let mut body = writer.take_chunk(); // send it, keep going
/// body.extend(writer.finish(&[]).unwrap());
/// assert!(body.ends_with(b"</IRETURNVALUE></IMETHODRESPONSE></SIMPLERSP></MESSAGE></CIM>"));
/// ```
#[derive(Debug)]
pub struct IMethodResponseWriter {
    encoder: Encoder,
}

/// Starts a streamed `IMETHODRESPONSE NAME=method` answering message `message_id`: writes
/// the XML declaration, `CIM`, `MESSAGE`, `SIMPLERSP`, `IMETHODRESPONSE` and `IRETURNVALUE`.
/// An error found before the first item is better sent as a whole [`super::encode`]d message;
/// one found after chunks went out goes in the HTTP trailer (DSP0200).
pub fn begin_imethod_response(message_id: &str, method: &str) -> IMethodResponseWriter {
    // Small to start: most responses are a few kilobytes, and a streamed one grows to its
    // chunk size in a few doublings.
    let mut encoder = Encoder::with_capacity(4 * 1024);
    encoder.begin_message(message_id, PROTOCOL_VERSION);
    encoder.raw(b"<SIMPLERSP>");
    encoder.start_named(b"IMETHODRESPONSE", method);
    encoder.raw(b"><IRETURNVALUE>");
    IMethodResponseWriter { encoder }
}

impl IMethodResponseWriter {
    /// Writes the names of one namespace in the paths of the items as `spelling` says.
    pub fn spell_namespace(&mut self, spelling: super::NamespaceSpelling) {
        self.encoder.spell_namespace(spelling);
    }

    /// Runs one item writer; on failure, removes what it wrote so the output stays well formed.
    fn item(
        &mut self,
        write: impl FnOnce(&mut Encoder) -> Result<(), EncodeError>,
    ) -> Result<(), EncodeError> {
        let mark = self.encoder.out.len();
        let result = write(&mut self.encoder);
        if result.is_err() {
            self.encoder.out.truncate(mark);
        }
        result
    }

    /// Appends a `VALUE.NAMEDINSTANCE` (EnumerateInstances).
    pub fn write_named_instance(
        &mut self,
        path: &InstancePath,
        instance: &Instance,
    ) -> Result<(), EncodeError> {
        self.item(|e| e.named_instance(path, instance))
    }

    /// Appends a `VALUE.INSTANCEWITHPATH` (pull operations).
    pub fn write_instance_with_path(
        &mut self,
        path: &InstancePath,
        instance: &Instance,
    ) -> Result<(), EncodeError> {
        self.item(|e| e.instance_with_path(path, instance))
    }

    /// Appends a `VALUE.OBJECTWITHPATH` (Associators, References).
    pub fn write_object_with_path(
        &mut self,
        path: &ObjectPath,
        object: &Object,
    ) -> Result<(), EncodeError> {
        self.item(|e| e.object_with_path(path, object))
    }

    /// Appends an `INSTANCENAME` (EnumerateInstanceNames).
    pub fn write_instance_name(&mut self, path: &InstancePath) -> Result<(), EncodeError> {
        self.item(|e| e.instance_name(path))
    }

    /// Appends an `INSTANCEPATH` (OpenEnumerateInstancePaths).
    pub fn write_instance_path(&mut self, path: &InstancePath) -> Result<(), EncodeError> {
        self.item(|e| e.instance_path(path))
    }

    /// Appends an `OBJECTPATH` (AssociatorNames, ReferenceNames).
    pub fn write_object_path(&mut self, path: &ObjectPath) -> Result<(), EncodeError> {
        self.item(|e| e.object_path(path))
    }

    /// Appends an `INSTANCE`.
    pub fn write_instance(&mut self, instance: &Instance) -> Result<(), EncodeError> {
        self.item(|e| e.instance(instance))
    }

    /// Appends a `CLASS` (EnumerateClasses).
    pub fn write_class(&mut self, class: &Class) -> Result<(), EncodeError> {
        self.item(|e| e.class(class))
    }

    /// Appends a `CLASSNAME` (EnumerateClassNames).
    pub fn write_class_name(&mut self, name: &Name) {
        self.encoder.class_name(name);
    }

    /// Appends a `QUALIFIER.DECLARATION` (EnumerateQualifiers).
    pub fn write_qualifier_declaration(
        &mut self,
        declaration: &QualifierDeclaration,
    ) -> Result<(), EncodeError> {
        self.item(|e| e.qualifier_declaration(declaration))
    }

    /// Appends any item.
    pub fn write_data(&mut self, data: &Data) -> Result<(), EncodeError> {
        self.item(|e| e.data(data, "IRETURNVALUE"))
    }

    /// How many bytes are buffered (to decide when to send a chunk).
    pub fn buffered_len(&self) -> usize {
        self.encoder.len()
    }

    /// Takes the buffered bytes; the writer goes on with an empty buffer.
    pub fn take_chunk(&mut self) -> Vec<u8> {
        self.encoder.take()
    }

    /// Closes `IRETURNVALUE`, writes the output parameters (`EnumerationContext`,
    /// `EndOfSequence`) and closes the message; returns the last bytes.
    pub fn finish(mut self, params: &[ParamValue]) -> Result<Vec<u8>, EncodeError> {
        self.encoder.raw(b"</IRETURNVALUE>");
        for param in params {
            self.encoder.param_value(param)?;
        }
        self.encoder
            .raw(b"</IMETHODRESPONSE></SIMPLERSP></MESSAGE></CIM>");
        Ok(self.encoder.into_bytes())
    }
}
