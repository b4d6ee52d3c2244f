"""loan-notify domain: plain Python, ports passed in. Shared by every function through the layer."""
