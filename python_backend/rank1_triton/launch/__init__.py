"""Assembling a runnable model repository and running tritonserver."""
