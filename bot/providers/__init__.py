"""HTTP clients of the outside world. Nothing else in the project does HTTP."""
