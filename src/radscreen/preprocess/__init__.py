"""Pure preprocessing functions (arrays in, arrays out) and the CXR pipeline that chains them."""
