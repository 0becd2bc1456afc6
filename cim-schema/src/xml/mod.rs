//! The CIM-XML codec (DSP0201).
