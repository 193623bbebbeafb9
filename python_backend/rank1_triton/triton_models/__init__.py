"""The code behind the Triton models: request parsing, tensor conversion, BLS, metrics."""
