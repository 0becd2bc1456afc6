//! The MOF compiler (DSP0221).
