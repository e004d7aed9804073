"""The command line: a thin click layer, the reports it prints, and `status`.
The top of the stack: it may import any package of renewd."""
