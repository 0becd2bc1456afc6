//! WBEM URIs (DSP0207): the text form of object paths, parsed and formatted.
